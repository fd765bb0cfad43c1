"""OpenRLHF backend plugin: jobs as command lines for OpenRLHF 0.11.2's own CLIs (see backend.py)."""

from ptsdk.backends.openrlhf.backend import OpenRLHFBackend
from ptsdk.plugins import hookimpl


@hookimpl
def ptsdk_register_backends(register):
    register(OpenRLHFBackend)
