"""ptsdk's plugin system: hookspecs, the plugin manager, the backend contract."""

from ptsdk.plugins.backend import Backend, Command, Launcher, Note, Plan, PlanFile
from ptsdk.plugins.hookspecs import hookimpl, hookspec
from ptsdk.plugins.manager import (
    PluginError,
    PluginOrigin,
    Registry,
    get_backend,
    get_backends,
    get_plugin_manager,
    get_registry,
)

__all__ = [
    "Backend",
    "Command",
    "Launcher",
    "Note",
    "Plan",
    "PlanFile",
    "hookimpl",
    "hookspec",
    "get_backends",
    "get_plugin_manager",
    "PluginError",
    "PluginOrigin",
    "Registry",
    "get_backend",
    "get_registry",
]
