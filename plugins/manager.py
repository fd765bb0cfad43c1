"""Building the plugin manager and the backend registry.

Built-in backends are ordinary plugins listed in DEFAULT_PLUGINS; third-party plugins
arrive through the ``ptsdk`` entry-point group and are registered the same way.

Environment variables:
- ``PTSDK_DISABLE_PLUGINS``: comma-separated plugin names (entry-point names or built-in
  module names such as ``ptsdk.backends.axolotl``) not to load.
- ``PTSDK_LOAD_PLUGINS``: if set, load only these third-party entry points ("" = none).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

import pluggy
from ptsdk.errors import PtsdkError
from ptsdk.plugins import hookspecs

if TYPE_CHECKING:
    from ptsdk.plugins.backend import Backend

ENTRY_POINT_GROUP = "ptsdk"
DEFAULT_PLUGINS = (
    "ptsdk.backends.trl",
    "ptsdk.backends.axolotl",
    "ptsdk.backends.verl",
    "ptsdk.backends.openrlhf",
)


class PluginError(PtsdkError):
    """A plugin is broken: a bad backend class, a duplicate name, an unknown hook."""


def _names(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def get_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh manager with the built-in backends and (optionally) installed plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    disabled = _names("PTSDK_DISABLE_PLUGINS") or set()
    for module_name in DEFAULT_PLUGINS:
        if module_name in disabled or module_name.rsplit(".", 1)[-1] in disabled:
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        only = _names("PTSDK_LOAD_PLUGINS")
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled or (only is not None and ep.name not in only):
                continue
            if pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not take the CLI down silently
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc.__class__.__name__}: {exc}") from None
            pm.register(plugin, name=ep.name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin_name!r}: {exc}") from None
    return pm


def collect_backends(pm: pluggy.PluginManager) -> dict[str, type[Backend]]:
    """Ask every plugin for its backends; refuse bad classes and duplicate names in one place."""
    from ptsdk.plugins.backend import Backend

    found: dict[str, type[Backend]] = {}
    origin: dict[str, str] = {}

    for impl in pm.hook.ptsdk_register_backends.get_hookimpls():
        plugin_name = impl.plugin_name

        def register(cls: type[Backend], _plugin: str = plugin_name) -> None:
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise PluginError(f"plugin {_plugin!r} registered {cls!r}, which is not a ptsdk Backend subclass")
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name.isidentifier():
                raise PluginError(f"plugin {_plugin!r}: backend {cls.__name__} needs a `name` that is an identifier")
            if name in found:
                raise PluginError(
                    f"backend name {name!r} is registered twice: by {origin[name]!r} and by {_plugin!r}; "
                    f"disable one with PTSDK_DISABLE_PLUGINS={_plugin}"
                )
            found[name] = cls
            origin[name] = _plugin

        impl.function(*[{"register": register}[arg] for arg in impl.argnames])
    return found


def get_backends(pm: pluggy.PluginManager | None = None) -> dict[str, type[Backend]]:
    return collect_backends(pm or get_plugin_manager())


def get_backend(name: str, pm: pluggy.PluginManager | None = None) -> type[Backend]:
    backends = get_backends(pm)
    if name not in backends:
        raise PtsdkError(f"--backend {name}: no such backend; installed backends: {', '.join(sorted(backends))}")
    return backends[name]
