"""PipelineRL backend plugin (see backend.py)."""

from __future__ import annotations

from collections.abc import Callable

from ptsdk.plugins import Backend, hookimpl

from ptsdk_pipelinerl.backend import PipelineRLBackend

__all__ = ["PipelineRLBackend"]


@hookimpl
def ptsdk_register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(PipelineRLBackend)
