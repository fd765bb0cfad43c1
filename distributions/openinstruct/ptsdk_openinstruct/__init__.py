"""OpenInstruct backend plugin (a distribution of its own, registered through the `ptsdk` entry-point group)."""

from __future__ import annotations

from collections.abc import Callable

from ptsdk.plugins import Backend, hookimpl

from ptsdk_openinstruct.backend import OpenInstructBackend


@hookimpl
def ptsdk_register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(OpenInstructBackend)
