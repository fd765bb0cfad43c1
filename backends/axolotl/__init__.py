"""Axolotl backend plugin."""

from ptsdk.backends.axolotl.backend import AxolotlBackend
from ptsdk.plugins import hookimpl


@hookimpl
def ptsdk_register_backends(register):  # type: ignore[no-untyped-def]
    register(AxolotlBackend)
