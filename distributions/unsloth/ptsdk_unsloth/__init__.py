"""Unsloth backend plugin, registered through the ``ptsdk`` entry-point group."""

from __future__ import annotations

from collections.abc import Callable

from ptsdk.plugins import Backend, hookimpl

from ptsdk_unsloth.backend import UnslothBackend


@hookimpl
def ptsdk_register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(UnslothBackend)
