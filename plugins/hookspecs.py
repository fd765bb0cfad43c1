"""The hooks a ptsdk plugin may implement. Every hook is prefixed ``ptsdk_``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ptsdk.plugins.backend import Backend
    from ptsdk.plugins.launcher import RunLauncher

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


@hookspec
def ptsdk_register_launchers(register: Callable[[type[RunLauncher]], None]) -> None:
    """Register launchers: where a run's commands execute (``ptsdk run --launcher NAME``).

    Call ``register(LauncherClass)`` once per launcher, a :class:`ptsdk.plugins.launcher.RunLauncher` subclass
    with a unique ``name``; ``local`` is ptsdk's own. A site adds its scheduler (Kubernetes, LSF, a cloud's job
    API) this way without touching ptsdk.

    :param register: callback taking a RunLauncher subclass.
    """
