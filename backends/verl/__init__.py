"""vERL backend plugin (see backend.py)."""

from __future__ import annotations

from collections.abc import Callable

from ptsdk.backends.verl.backend import VerlBackend
from ptsdk.plugins import Backend, hookimpl

__all__ = ["VerlBackend"]


@hookimpl
def ptsdk_register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(VerlBackend)
