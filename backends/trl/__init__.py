"""TRL backend plugin."""

from ptsdk.backends.trl.backend import TRLBackend
from ptsdk.plugins import hookimpl


@hookimpl
def ptsdk_register_backends(register):  # type: ignore[no-untyped-def]
    register(TRLBackend)
