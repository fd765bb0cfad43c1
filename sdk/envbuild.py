"""`ptsdk env create/list/remove`: managed virtual environments, one per backend.

What goes into an environment is the backend's own declaration, ``Backend.environment()`` (see
:mod:`ptsdk.plugins.environment`): a venv is created, then each install step runs in order.
An environment counts as ready only once its marker file is written, which happens last, with the
hash of the spec it was built from; a failed or interrupted build is removed, so nothing half-made
is ever used, and a changed spec makes a ready environment stale.

The install steps run with uv when it is there (on PATH, or the ``uv`` package in ptsdk's own
interpreter), else with the venv's pip; ``PTSDK_INSTALLER=pip|uv`` forces one. uv does not read
pip's configuration, and on many machines that configuration is what makes the pins resolve (a
find-links folder with torch's CPU build, extra indexes, a constraint file, a CA bundle), so the
effective pip configuration is translated into uv's flags and environment (:func:`uv_install`). A
step or a configuration uv cannot honour exactly builds with pip instead. The venv keeps its pip
either way.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ptsdk.envs import READY_MARKER, managed_env_dir, ptsdk_home
from ptsdk.errors import PtsdkError, RunFailed

if TYPE_CHECKING:
    from ptsdk.plugins.backend import Backend
    from ptsdk.plugins.environment import EnvironmentSpec, InstallStep

#: Added to every install step's environment (a step's own env wins).
#: DS_BUILD_OPS=0: DeepSpeed (an sdist) installs without compiling CUDA ops.
DEFAULT_BUILD_ENV = {"DS_BUILD_OPS": "0"}

#: Forces the installer: "pip" or "uv" (unset or empty: uv when present, else pip).
INSTALLER_ENV = "PTSDK_INSTALLER"
INSTALLERS = ("pip", "uv")

# How pip's install options map onto `uv pip install`. Names are pip's long option names, as `pip config list`
# and the PIP_* variables spell them (PIP_EXTRA_INDEX_URL -> extra-index-url).
#: Given several times; a configuration value holds several, split on whitespace.
_UV_LISTS = {
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
    "requirement": "--requirement",
    "trusted-host": "--allow-insecure-host",
    "only-binary": "--only-binary",
    "no-binary": "--no-binary",
}
#: One value: a later layer, or the command line, replaces it.
_UV_VALUES = {"index-url": "--index-url"}
#: Switches (a configuration value is a boolean: "true", "1", "yes", "on").
_UV_FLAGS: dict[str, tuple[str, ...]] = {
    "no-index": ("--no-index",),
    "no-deps": ("--no-deps",),
    "no-build-isolation": ("--no-build-isolation",),
    "pre": ("--prerelease", "allow"),
    "upgrade": ("--upgrade",),
    "force-reinstall": ("--reinstall",),
    "no-cache-dir": ("--no-cache",),
    "quiet": ("--quiet",),
    "verbose": ("--verbose",),
    "no-compile": (),  # pip byte-compiles unless told not to; uv only when asked (--compile-bytecode, below)
}
#: Taken by uv from environment variables. uv bundles its own CA roots: pip's cert must reach it.
_UV_ENVIRON = {
    "cert": ("SSL_CERT_FILE",),
    "client-cert": ("SSL_CLIENT_CERT",),
    "timeout": ("UV_HTTP_TIMEOUT",),
    "proxy": ("HTTPS_PROXY", "HTTP_PROXY"),
}
#: pip's own business (its cache, output, self-check): nothing to tell uv.
_PIP_ONLY_FLAGS = frozenset(
    {"disable-pip-version-check", "no-warn-script-location", "no-color", "no-input", "require-virtualenv"}
)
_PIP_ONLY_VALUES = frozenset({"cache-dir", "progress-bar", "retries", "root-user-action", "log", "exists-action"})
#: Change what gets installed, or where, in ways uv cannot match exactly: set in pip's configuration, they make
#: the build use pip. (Any other configuration key is pip-only or not an install option, and pip ignores those too.)
_NO_UV_EQUIVALENT = frozenset(
    {
        "prefer-binary",
        "upgrade-strategy",
        "ignore-installed",
        "user",
        "target",
        "prefix",
        "root",
        "src",
        "editable",
        "require-hashes",
        "use-feature",
        "use-deprecated",
        "config-settings",
        "global-option",
        "build-option",
    }
)
_ALIASES = {"default-timeout": "timeout", "pypi-url": "index-url"}
_SHORT = {
    "-i": "index-url",
    "-f": "find-links",
    "-c": "constraint",
    "-r": "requirement",
    "-U": "upgrade",
    "-q": "quiet",
    "-v": "verbose",
}


class Untranslatable(ValueError):
    """A pip option or argument that uv has no exact equivalent for."""


def _pip_name(name: str) -> str:
    name = name.strip().lower().replace("_", "-")
    return _ALIASES.get(name, name)


def _truthy(value: str) -> bool:
    value = value.strip().lower()
    return value in ("1", "true", "yes", "on", "y", "t") or (value.isdigit() and int(value) > 0)


def effective_pip_config(listing: str, environ: Mapping[str, str], command: str = "install") -> dict[str, str]:
    """The options pip's configuration gives ``pip <command>``: option name -> value.

    ``listing`` is the output of ``pip config list`` (lines ``global.find-links='/opt/wheels'``); ``environ``
    supplies the PIP_* variables. As in pip, the ``[<command>]`` section overrides ``[global]``, and a PIP_*
    variable overrides both; ``:env:`` lines of the listing are skipped (``environ`` is the one source of those).
    """
    layers: dict[str, dict[str, str]] = {"global": {}, command: {}}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        section, dot, name = key.strip().rpartition(".")
        if not sep or not dot or section not in layers:
            continue
        try:
            value = ast.literal_eval(raw.strip())  # pip prints repr(value)
        except (ValueError, SyntaxError):
            value = raw.strip()
        layers[section][_pip_name(name)] = str(value)
    from_env = {_pip_name(k[4:]): v for k, v in environ.items() if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"}
    return {**layers["global"], **layers[command], **from_env}


def _parse_pip_args(args: Sequence[str]) -> list[tuple[str, str]]:
    """A step's pip arguments as (option name, value) pairs; a switch's value is "1"."""
    out: list[tuple[str, str]] = []
    queue = list(args)
    while queue:
        arg = queue.pop(0)
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
        elif arg[:2] in _SHORT:
            name, value = _SHORT[arg[:2]], arg[2:]
            eq = "=" if value else ""
        else:
            raise Untranslatable(f"pip argument {arg!r} has no uv equivalent")
        name = _pip_name(name)
        if name in _UV_FLAGS or name in _PIP_ONLY_FLAGS:
            if eq:
                raise Untranslatable(f"pip argument {arg!r} has no uv equivalent")
            out.append((name, "1"))
        elif name in _UV_LISTS or name in _UV_VALUES or name in _UV_ENVIRON or name in _PIP_ONLY_VALUES:
            if not eq:
                if not queue:
                    raise Untranslatable(f"pip argument {arg!r} needs a value")
                value = queue.pop(0)
            out.append((name, value))
        else:
            raise Untranslatable(f"pip argument {arg!r} has no uv equivalent")
    return out


def uv_install(
    uv: Sequence[str], python: str, pip_args: Sequence[str], packages: Iterable[str], config: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The ``uv pip install`` that does what ``pip install *pip_args *packages`` does under pip's ``config``.

    Returns the command and the environment variables to add. ``config`` is :func:`effective_pip_config`'s.
    uv is told to read no configuration of its own (``--no-config``: the pip configuration is the one truth),
    to pick the best version across all indexes as pip does (``--index-strategy unsafe-best-match``; uv's
    default stops at the first index that has the name), and to byte-compile what it installs as pip does
    (most of uv's time on a large environment; without it the first imports would compile). The constraint
    files also constrain build dependencies, since pip's isolated builds read the same configuration.
    Raises :class:`Untranslatable` when uv cannot do exactly that.
    """
    options: dict[str, list[str]] = {}
    for name, value in config.items():
        if name in _UV_LISTS:
            options[name] = value.split()
        elif name in _UV_VALUES or name in _UV_FLAGS or name in _UV_ENVIRON:
            options[name] = [value]
        elif name in _NO_UV_EQUIVALENT:
            raise Untranslatable(f"pip's configuration sets {name}={value!r}, which uv has no equivalent for")
    for name, value in _parse_pip_args(pip_args):
        if name in _UV_LISTS:
            options.setdefault(name, []).append(value)  # as in pip: the command line adds to the configuration
        else:
            options[name] = [value]
    indexes = 0 if _truthy(options.get("no-index", ["0"])[-1]) else 1 + len(options.get("extra-index-url", []))
    sources = indexes + len(options.get("find-links", []))
    if sources > 1:
        # pip chooses among every file of the chosen version in all sources; uv takes a version's files from the
        # first source that has it, so it can install another wheel of the same version (measured here: the
        # py310 build of multiprocess 0.70.19 from the first index where pip takes the py311 one from the second,
        # which breaks datasets' workers on Python 3.11).
        raise Untranslatable(
            f"pip reads {sources} package sources (index, extra-index-url, find-links) and picks a version's best "
            "wheel among all of them; uv takes a version's files from the first source that has it"
        )
    argv = [*uv, "pip", "install", "--python", python, "--no-config", "--index-strategy", "unsafe-best-match"]
    environ: dict[str, str] = {}
    for name, values in options.items():
        if name in _UV_LISTS:
            for value in values:
                argv += [_UV_LISTS[name], value]
            if name == "constraint":
                for value in values:
                    argv += ["--build-constraint", value]
        elif name in _UV_VALUES:
            argv += [_UV_VALUES[name], values[-1]]
        elif name in _UV_FLAGS:
            argv += _UV_FLAGS[name] if _truthy(values[-1]) else ()
        elif name in _UV_ENVIRON:
            value = values[-1]
            if name == "timeout":  # uv wants whole seconds
                try:
                    value = str(max(1, round(float(value))))
                except ValueError:
                    raise Untranslatable(f"pip timeout {value!r} is not a number of seconds") from None
            environ.update(dict.fromkeys(_UV_ENVIRON[name], value))
    if not _truthy(options.get("no-compile", ["0"])[-1]):
        argv.append("--compile-bytecode")
    return [*argv, *packages], environ


def pip_install(python: str, pip_args: Sequence[str], packages: Iterable[str]) -> list[str]:
    return [python, "-m", "pip", "install", "--disable-pip-version-check", *pip_args, *packages]


def find_uv() -> tuple[str, ...] | None:
    """How to run uv: on PATH, else the ``uv`` package of ptsdk's own interpreter (None: neither)."""
    on_path = shutil.which("uv")
    if on_path:
        return (on_path,)
    if importlib.util.find_spec("uv") is not None:
        return (sys.executable, "-m", "uv")
    return None


@dataclass(frozen=True)
class Installer:
    """What runs the install steps: ``pip`` (the venv's own) or ``uv`` (run as ``command``), and why."""

    name: str
    reason: str
    command: tuple[str, ...] = ()
    forced: bool = False  # by $PTSDK_INSTALLER: no falling back


def choose_installer(
    spec: EnvironmentSpec,
    environ: Mapping[str, str] | None = None,
    uv: Callable[[], tuple[str, ...] | None] | None = None,
) -> Installer:
    """uv when present and every step translates, else pip; ``$PTSDK_INSTALLER`` forces one.

    Forcing uv when it is missing, or for a step it cannot run as pip would, is a :class:`PtsdkError`.
    (pip's configuration is checked once the venv exists: :func:`install_commands`.) ``uv`` finds uv
    (default :func:`find_uv`).
    """
    environ = os.environ if environ is None else environ
    wanted = environ.get(INSTALLER_ENV, "").strip().lower()
    if wanted not in ("", *INSTALLERS):
        raise PtsdkError(f"{INSTALLER_ENV}={environ[INSTALLER_ENV]!r}: use pip or uv, or unset it (uv when present)")
    if wanted == "pip":
        return Installer("pip", f"{INSTALLER_ENV}=pip", forced=True)
    command = (uv or find_uv)()
    if command is None:
        if wanted == "uv":
            raise PtsdkError(
                f"{INSTALLER_ENV}=uv, but uv is not on PATH nor importable by {sys.executable}: "
                f"pip install uv, or unset {INSTALLER_ENV} to build with pip"
            )
        return Installer("pip", "uv not found")
    for step in spec.steps:
        try:
            uv_install(command, "python", step.pip_args, step.packages, {})
        except Untranslatable as exc:
            if wanted == "uv":
                raise PtsdkError(f"{INSTALLER_ENV}=uv, but step {step.label!r}: {exc}") from None
            return Installer("pip", f"step {step.label!r}: {exc}")
    return Installer("uv", f"{INSTALLER_ENV}=uv" if wanted else "found", command, forced=bool(wanted))


def install_commands(
    installer: Installer, venv_python: str, steps: Sequence[InstallStep]
) -> tuple[Installer, list[tuple[list[str], dict[str, str]]]]:
    """Each step's command and environment; uv's from the venv pip's configuration, or pip where it cannot be."""
    environs = [{**os.environ, **DEFAULT_BUILD_ENV, **s.environ} for s in steps]
    if installer.name == "uv":
        # The configuration files the venv's pip reads; the PIP_* variables come from each step's environment.
        files_only = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CONFIG_FILE"}
        listed = subprocess.run(
            [venv_python, "-m", "pip", "config", "list"], capture_output=True, text=True, env=files_only
        )
        try:
            if listed.returncode != 0:
                raise Untranslatable(f"pip config list failed: {listed.stderr.strip()[-500:]}")
            return installer, [
                uv_install(
                    installer.command, venv_python, s.pip_args, s.packages, effective_pip_config(listed.stdout, env)
                )
                for s, env in zip(steps, environs, strict=True)
            ]
        except Untranslatable as exc:
            if installer.forced:
                raise PtsdkError(f"{INSTALLER_ENV}=uv, but {exc}") from None
            installer = Installer("pip", str(exc))
    return installer, [(pip_install(venv_python, s.pip_args, s.packages), {}) for s in steps]


def _version(argv: list[str]) -> str:
    """The second word of `<tool> --version` ("pip 24.0 from ...", "uv 0.13.9 (...)"); "" if it fails."""
    try:
        words = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return ""
    return words[1] if len(words) > 1 else ""


def built_from(target: Path) -> str | None:
    """The spec hash a ready environment was built from (None: not ready, or built by hand)."""
    try:
        sha = json.loads((target / READY_MARKER).read_text()).get("requirements_sha")
    except (OSError, ValueError, AttributeError):
        return None
    return sha if isinstance(sha, str) else None


def is_stale(backend_cls: type[Backend]) -> bool:
    """A managed environment built from another spec than the one the backend declares now."""
    return built_from(managed_env_dir(backend_cls.name)) != backend_cls.environment().sha


def create_env(
    backend_cls: type[Backend], *, python: str = sys.executable, force: bool = False, say: Callable[[str], None] = print
) -> Path:
    """Build the backend's managed environment from its declared spec; returns the venv's folder."""
    backend = backend_cls.name
    spec = backend_cls.environment()
    target = managed_env_dir(backend)
    # One build of one environment at a time: a second `env create` waits for the first, then finds it ready.
    from ptsdk.rundir import DirLock

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = DirLock(target.parent, f".{backend}.lock")
        if not lock.acquire():
            say(f"{backend}: another ptsdk env create ({lock.holder()}) is building it; waiting")
            lock.acquire(wait=True)
    except OSError as exc:
        raise PtsdkError(f"cannot build environments under {target.parent}: {exc.strerror}; set PTSDK_HOME") from None
    with lock:
        return _create_locked(backend_cls, spec, target, python=python, force=force, say=say)


def _create_locked(
    backend_cls: type[Backend],
    spec: EnvironmentSpec,
    target: Path,
    *,
    python: str,
    force: bool,
    say: Callable[[str], None],
) -> Path:
    backend = backend_cls.name
    if (target / READY_MARKER).exists() and not force:
        if built_from(target) == spec.sha:
            say(f"{backend}: environment already ready at {target} (use --force to rebuild)")
            return target
        say(f"{backend}: environment at {target} was built from other requirements; rebuilding")
    installer = choose_installer(spec)  # before anything is removed: a bad PTSDK_INSTALLER changes nothing
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    log_path = target.parent / f"{backend}.build.log"
    venv_python = str(target / "bin" / "python")
    steps = [s for s in spec.steps if s.packages]
    started = time.monotonic()
    try:
        with log_path.open("w") as log:

            def run(i: int, label: str, argv: list[str], extra: Mapping[str, str]) -> None:
                via = f"{installer.name}, " if i > 1 else ""
                say(f"[{i}/{len(steps) + 1}] {backend}: {label} ({via}{time.monotonic() - started:.0f}s)")
                log.write(f"$ {' '.join(f'{k}={v}' for k, v in extra.items())}{' ' if extra else ''}{' '.join(argv)}\n")
                log.flush()
                try:
                    rc = subprocess.run(
                        argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **extra}
                    ).returncode
                except OSError as exc:
                    raise RunFailed(f"{backend}: '{label}' could not start: {exc}") from None
                if rc != 0:
                    raise RunFailed(f"{backend}: '{label}' failed (exit {rc}); log: {log_path}")

            run(1, "create venv", [python, "-m", "venv", str(target)], {})
            installer, commands = install_commands(installer, venv_python, steps)
            log.write(f"# installing with {installer.name} ({installer.reason})\n")
            fell_back: list[str] = []
            for i, (step, (argv, uv_env)) in enumerate(zip(steps, commands, strict=True), 2):
                try:
                    run(i, step.label, argv, {**DEFAULT_BUILD_ENV, **step.environ, **uv_env})
                except RunFailed:
                    if installer.name != "uv" or installer.forced:
                        raise
                    # uv and pip differ at the edges (an sdist's build, a resolver corner): the step again with pip
                    say(f"{backend}: '{step.label}' failed with uv; trying it with pip")
                    log.write(f"# '{step.label}' failed with uv: again with pip\n")
                    run(
                        i,
                        step.label + " (pip)",
                        pip_install(venv_python, step.pip_args, step.packages),
                        {**DEFAULT_BUILD_ENV, **step.environ},
                    )
                    fell_back.append(step.label)
        versions = subprocess.run(
            [venv_python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True
        ).stdout.splitlines()  # one line per package ("name==1.0", or "name @ file:///..." for a local one)
        tool = [*installer.command, "--version"] if installer.name == "uv" else [venv_python, "-m", "pip", "--version"]
        marker = {
            "backend": backend,
            "created": time.time(),
            "requirements_sha": spec.sha,
            "installer": installer.name,
            "pip_fallback_steps": fell_back,
            "installer_version": _version(tool),
            "packages": versions,
        }
        (target / READY_MARKER).write_text(json.dumps(marker, indent=1))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    say(f"{backend}: ready at {target} in {time.monotonic() - started:.0f}s (installed with {installer.name})")
    return target


def list_envs() -> list[dict[str, object]]:
    root = ptsdk_home() / "envs"
    out = []
    for d in sorted(root.iterdir()) if root.exists() else []:
        if d.is_dir():
            marker = d / READY_MARKER
            out.append({"backend": d.name, "path": str(d), "ready": marker.exists()})
    return out


def remove_env(backend: str) -> Path:
    target = managed_env_dir(backend)
    if not target.exists():
        raise PtsdkError(f"no managed environment for {backend} at {target}")
    shutil.rmtree(target)
    return target
