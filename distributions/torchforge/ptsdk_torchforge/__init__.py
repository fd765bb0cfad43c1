"""TorchForge backend plugin (see backend.py)."""

from __future__ import annotations

from collections.abc import Callable

from ptsdk.plugins import Backend, hookimpl

from ptsdk_torchforge.backend import TorchForgeBackend

__all__ = ["TorchForgeBackend"]


@hookimpl
def ptsdk_register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(TorchForgeBackend)
