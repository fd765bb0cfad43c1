"""The capability matrix: derived from what backends declare, never kept by hand."""

from ptsdk.matrix.capability import Capability, Verified
from ptsdk.matrix.check import CheckResult, Requirement, Unmet, check, feasibility, requirements_of

__all__ = ["Capability", "Verified", "CheckResult", "Requirement", "Unmet", "check", "feasibility", "requirements_of"]
