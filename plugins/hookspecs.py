"""The hooks a ptsdk plugin may implement. Every hook is prefixed ``ptsdk_``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ptsdk.plugins.backend import Backend

PROJECT = "ptsdk"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ptsdk_register_backends(register: Callable[[type[Backend]], None]) -> None:
    """Register backend classes.

    Call ``register(BackendClass)`` once per backend. The core refuses a class that is not a
    :class:`ptsdk.plugins.Backend` subclass, has no ``name``, or whose name is already taken.
    The hook is called once per process (per plugin configuration); if it raises, ptsdk stops with
    an error naming the plugin and the distribution that installed it.

    :param register: callback taking a Backend subclass.
    """
