"""ptsdk's plugin system: hookspecs, the plugin manager, the backend contract."""

from ptsdk.plugins.backend import Backend, Command, Note, Plan, PlanFile
from ptsdk.plugins.hookspecs import hookimpl, hookspec
from ptsdk.plugins.manager import get_backends, get_plugin_manager

__all__ = [
    "Backend", "Command", "Note", "Plan", "PlanFile",
    "hookimpl", "hookspec", "get_backends", "get_plugin_manager",
]  # fmt: skip
