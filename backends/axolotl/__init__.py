"""Axolotl backend plugin."""

from __future__ import annotations

from collections.abc import Callable

from ptsdk.backends.axolotl.backend import AxolotlBackend
from ptsdk.plugins import Backend, hookimpl


@hookimpl
def ptsdk_register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(AxolotlBackend)
