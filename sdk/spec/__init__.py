"""The ptsdk job spec (version 1)."""

from ptsdk.spec.job import SPEC_VERSION, Job
from ptsdk.spec.load import load_job, validate_job

__all__ = ["Job", "SPEC_VERSION", "load_job", "validate_job"]
