"""Building the plugin manager and the backend registry.

Built-in backends are ordinary plugins listed in DEFAULT_PLUGINS; third-party plugins
arrive through the ``ptsdk`` entry-point group and are registered the same way.

The registry (backend name -> Backend class, and which plugin and distribution supplied it) is
built once per process per plugin configuration by :func:`get_registry`; tests that install
plugins in-process call :func:`clear_registry_cache`.

A broken plugin is a :class:`PluginError` (exit 2, no traceback) that names the plugin, the
distribution that installed it with its version, and how to run without it.

Environment variables:
- ``PTSDK_DISABLE_PLUGINS``: comma-separated plugin names (entry-point names or built-in
  module names such as ``ptsdk.backends.axolotl``) not to load.
- ``PTSDK_LOAD_PLUGINS``: if set, load only these third-party entry points ("" = none).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pluggy
from ptsdk.errors import PtsdkError
from ptsdk.plugins import hookspecs

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from ptsdk.plugins.backend import Backend
    from ptsdk.plugins.launcher import RunLauncher

ENTRY_POINT_GROUP = "ptsdk"
DEFAULT_PLUGINS = (
    "ptsdk.backends.trl",
    "ptsdk.backends.axolotl",
    "ptsdk.backends.verl",
    "ptsdk.backends.openrlhf",
    "ptsdk.plugins.slurm",
    "ptsdk.plugins.ray_jobs",
)
DISABLE_VAR = "PTSDK_DISABLE_PLUGINS"
LOAD_VAR = "PTSDK_LOAD_PLUGINS"


class PluginError(PtsdkError):
    """A plugin is broken: it fails to import, has a bad or unknown hook, raises while registering,
    registers a bad backend class or a name that is taken."""


@dataclass(frozen=True)
class PluginOrigin:
    """Where a plugin came from: its name (entry-point name, or module name for a built-in) and the
    distribution that installed it. ``distribution`` is None for a plugin registered at runtime."""

    plugin: str
    distribution: str | None
    distribution_version: str | None
    built_in: bool
    #: The entry point's target (``module:attr``) for a third-party plugin.
    entry_point: str | None = None

    @property
    def source(self) -> str:
        """'ptsdk-acme 1.0'; 'ptsdk 0.1.0' for a built-in."""
        if self.distribution is None:
            return "registered at runtime, no distribution"
        return f"{self.distribution} {self.distribution_version or '(unknown version)'}"

    def describe(self) -> str:
        return f"plugin {self.plugin!r} ({self.source})"

    def way_out(self) -> str:
        """How to get past this plugin being broken."""
        disabled = os.environ.get(DISABLE_VAR, "").strip().rstrip(",")
        disable = f"{DISABLE_VAR}={disabled + ',' if disabled else ''}{self.plugin}"
        if self.built_in:
            return f"this is a bug in ptsdk itself (please report it); to run without this backend set {disable}"
        if self.distribution is None:
            return f"unregister the plugin, or set {disable}"
        return (
            f"to run without it set {disable}; or upgrade the package (pip install -U {self.distribution}) "
            f"or remove it (pip uninstall {self.distribution})"
        )

    def error(self, message: str, *lines: str) -> PluginError:
        where = [f"entry point: {self.plugin} = {self.entry_point}"] if self.entry_point else []
        return PluginError(f"{self.describe()}: {message}", lines=[*lines, *where, self.way_out()])


@dataclass(frozen=True)
class Registry:
    """The installed backends (name -> class), the plugin that supplied each one, and the launchers."""

    backends: Mapping[str, type[Backend]]
    origins: Mapping[str, PluginOrigin]
    #: Where runs execute (``ptsdk run --launcher``): ptsdk's ``local`` and the plugins' launchers.
    launchers: Mapping[str, type[RunLauncher]] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, name: str) -> type[Backend]:
        if name not in self.backends:
            raise PtsdkError(
                f"--backend {name}: no such backend; installed backends: {', '.join(sorted(self.backends))}"
            )
        return self.backends[name]


class PtsdkPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, PluginOrigin] = {}


def _names(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _origin(pm: pluggy.PluginManager, plugin_name: str) -> PluginOrigin:
    known = pm.origins.get(plugin_name) if isinstance(pm, PtsdkPluginManager) else None
    return known or PluginOrigin(plugin_name, None, None, built_in=False)


def _builtin_origin(module_name: str) -> PluginOrigin:
    import ptsdk

    return PluginOrigin(module_name, "ptsdk", ptsdk.__version__, built_in=True)


def _entry_point_origin(ep: EntryPoint) -> PluginOrigin:
    dist = ep.dist
    name = dist.name if dist is not None else None
    version = dist.version if dist is not None else None
    return PluginOrigin(ep.name, name, version, built_in=False, entry_point=ep.value)


def _raised_at(exc: BaseException) -> str:
    """'ValueError: boom (at ptsdk_acme.py:12)': the innermost frame, in place of a traceback."""
    import traceback

    machinery = os.path.dirname(importlib.__file__ or "")  # frames of the import system say nothing about the plugin
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(("<frozen", machinery)) and f.filename != __file__
    ]
    at = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames and not isinstance(exc, SyntaxError) else ""
    return f"{type(exc).__name__}: {exc}{at}"


def _hook_signatures() -> str:
    specs = [
        f"{name}({', '.join(inspect.signature(fn).parameters)})"
        for name, fn in vars(hookspecs).items()
        if name.startswith("ptsdk_")
    ]
    return "the hooks are: " + "; ".join(specs)


def _load_and_register(pm: PtsdkPluginManager, origin: PluginOrigin, load: Callable[[], object]) -> None:
    """Import one plugin and register it; every way this fails is a PluginError naming the plugin."""
    try:
        plugin = load()
    except (Exception, SystemExit) as exc:  # a broken third-party plugin must not take the CLI down with a traceback
        if origin.built_in:
            raise  # a bug in ptsdk itself: keep the traceback (see ptsdk.errors)
        raise origin.error(f"failed to import: {_raised_at(exc)}") from None
    if origin.plugin in pm.origins:
        first = pm.origins[origin.plugin]
        raise origin.error(
            f"the plugin name {origin.plugin!r} is also used by {first.source}; plugin names must be unique"
        )
    if plugin is None or pm.is_registered(plugin):
        other = pm.get_name(plugin) if plugin is not None else None
        what = f"the same object as plugin {other!r}" if other else "None"
        raise origin.error(f"the entry point loads {what}; it must name a module or object with ptsdk hooks")
    pm.origins[origin.plugin] = origin
    try:
        pm.register(plugin, name=origin.plugin)
    except pluggy.PluginValidationError as exc:  # e.g. an argument the hookspec does not have
        raise origin.error("invalid hook implementation", *str(exc).splitlines()[1:], _hook_signatures()) from None
    except Exception as exc:
        raise origin.error(f"could not be registered: {_raised_at(exc)}") from None
    callers = pm.get_hookcallers(plugin) or []
    for caller in callers:
        optional = all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin)
        if not caller.has_spec() and not optional:
            import difflib

            known = [name for name in vars(hookspecs) if name.startswith("ptsdk_")]
            close = difflib.get_close_matches(caller.name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known hooks: {', '.join(known)}"
            raise origin.error(f"implements unknown hook {caller.name!r}; {hint}")
    if not callers:
        raise origin.error(
            "implements no ptsdk hook; decorate its ptsdk_register_backends (or ptsdk_register_launchers) with "
            "@ptsdk.plugins.hookimpl",
            _hook_signatures(),
        )


def get_plugin_manager(*, load_entry_points: bool = True) -> PtsdkPluginManager:
    """A fresh manager with the built-in backends and (optionally) installed plugins."""
    from importlib.metadata import entry_points

    pm = PtsdkPluginManager()
    disabled = _names(DISABLE_VAR) or set()
    for module_name in DEFAULT_PLUGINS:
        if module_name in disabled or module_name.rsplit(".", 1)[-1] in disabled:
            continue
        _load_and_register(pm, _builtin_origin(module_name), functools.partial(importlib.import_module, module_name))
    if load_entry_points:
        only = _names(LOAD_VAR)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled or (only is not None and ep.name not in only):
                continue
            _load_and_register(pm, _entry_point_origin(ep), ep.load)
    try:
        pm.check_pending()  # already checked plugin by plugin; this catches anything pluggy adds
    except pluggy.PluginValidationError as exc:
        raise _origin(pm, pm.get_name(exc.plugin) or repr(exc.plugin)).error(str(exc)) from None
    return pm


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Ask every plugin for its backends and launchers; refuse bad classes and duplicate names in one place."""
    from ptsdk.plugins.backend import Backend
    from ptsdk.plugins.launcher import LocalLauncher, RunLauncher

    backends, origins = _collect(pm, "ptsdk_register_backends", Backend, "backend")
    launchers, _ = _collect(pm, "ptsdk_register_launchers", RunLauncher, "launcher", {"local": LocalLauncher})
    return Registry(
        backends=MappingProxyType(backends), origins=MappingProxyType(origins), launchers=MappingProxyType(launchers)
    )


def _collect(
    pm: pluggy.PluginManager, hook: str, base: type[Any], kind: str, preset: Mapping[str, type[Any]] | None = None
) -> tuple[dict[str, type[Any]], dict[str, PluginOrigin]]:
    """Call every plugin's `hook` (``ptsdk_register_<kind>s``) with a `register` callback: the classes it registers
    (name -> class, after `preset`, ptsdk's own) and the plugin that supplied each. A class that is not a complete
    `base` subclass with an identifier for a name, or whose name is taken, is the plugin's error."""
    found: dict[str, type[Any]] = dict(preset or {})
    origins: dict[str, PluginOrigin] = {}

    for impl in getattr(pm.hook, hook).get_hookimpls():
        origin = _origin(pm, impl.plugin_name)
        if impl.hookwrapper or impl.wrapper:
            raise origin.error(f"{hook} cannot be a wrapper (wrapper=True / hookwrapper=True)")

        def register(cls: type[Any], _origin: PluginOrigin = origin) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise _origin.error(f"registered {cls!r}, which is not a ptsdk {base.__name__} subclass")
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name.isidentifier():
                raise _origin.error(f"{kind} {cls.__name__} needs a `name` that is an identifier (it has {name!r})")
            if inspect.isabstract(cls):
                missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
                raise _origin.error(f"{kind} {name!r} ({cls.__name__}) does not implement {missing}")
            if name in found:
                first = origins[name].describe() if name in origins else "ptsdk itself"
                raise _origin.error(f"{kind} name {name!r} is registered twice: by {first} and by {_origin.describe()}")
            found[name] = cls
            origins[name] = _origin

        try:
            impl.function(*[{"register": register}[arg] for arg in impl.argnames])
        except PluginError:
            raise
        except Exception as exc:
            raise origin.error(f"{hook} raised {_raised_at(exc)}") from None
    return found, origins


def collect_backends(pm: pluggy.PluginManager) -> dict[str, type[Backend]]:
    """The backends of the plugins registered with ``pm`` (a fresh registry, not the cached one)."""
    return dict(build_registry(pm).backends)


_registries: dict[tuple[str | None, str | None], Registry] = {}


def get_registry() -> Registry:
    """The registry of this process, built once per value of PTSDK_DISABLE_PLUGINS / PTSDK_LOAD_PLUGINS."""
    key = (os.environ.get(DISABLE_VAR), os.environ.get(LOAD_VAR))
    registry = _registries.get(key)
    if registry is None:
        registry = _registries[key] = build_registry(get_plugin_manager())
    return registry


def clear_registry_cache() -> None:
    """Forget the cached registries (for tests that install or change plugins in-process)."""
    _registries.clear()


def get_backends(pm: pluggy.PluginManager | None = None) -> dict[str, type[Backend]]:
    """Backend name -> class; without ``pm``, from the cached registry (a copy: changing it changes nothing)."""
    return dict(get_registry().backends) if pm is None else collect_backends(pm)


def get_backend(name: str, pm: pluggy.PluginManager | None = None) -> type[Backend]:
    registry = get_registry() if pm is None else build_registry(pm)
    return registry.get(name)


def get_launchers() -> dict[str, type[RunLauncher]]:
    """Launcher name -> class: ptsdk's ``local`` and every plugin's (``ptsdk_register_launchers``), from the
    cached registry (a copy)."""
    return dict(get_registry().launchers)


def get_launcher(name: str) -> type[RunLauncher]:
    launchers = get_launchers()
    if name not in launchers:
        raise PtsdkError(f"--launcher {name}: no such launcher; installed launchers: {', '.join(sorted(launchers))}")
    return launchers[name]
