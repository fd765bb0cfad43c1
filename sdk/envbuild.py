"""`ptsdk env create/list/remove`: managed virtual environments, one per backend.

What goes into an environment is the backend's own declaration, ``Backend.environment()`` (see
:mod:`ptsdk.plugins.environment`): a venv is created, then each install step runs in order.
An environment counts as ready only once its marker file is written, which happens last, with the
hash of the spec it was built from; a failed or interrupted build is removed, so nothing half-made
is ever used, and a changed spec makes a ready environment stale.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ptsdk.envs import READY_MARKER, managed_env_dir, ptsdk_home
from ptsdk.errors import PtsdkError, RunFailed

if TYPE_CHECKING:
    from ptsdk.plugins.backend import Backend
    from ptsdk.plugins.environment import EnvironmentSpec

#: Added to every install step's environment (a step's own env wins).
#: DS_BUILD_OPS=0: DeepSpeed (an sdist) installs without compiling CUDA ops.
DEFAULT_BUILD_ENV = {"DS_BUILD_OPS": "0"}


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
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    log_path = target.parent / f"{backend}.build.log"
    venv_python = str(target / "bin" / "python")
    pip = [venv_python, "-m", "pip", "install", "--disable-pip-version-check"]
    steps: list[tuple[str, list[str], dict[str, str]]] = [("create venv", [python, "-m", "venv", str(target)], {})]
    steps += [(s.label, [*pip, *s.pip_args, *s.packages], s.environ) for s in spec.steps if s.packages]
    started = time.monotonic()
    try:
        with log_path.open("w") as log:
            for i, (label, argv, extra) in enumerate(steps, 1):
                say(f"[{i}/{len(steps)}] {backend}: {label} ({time.monotonic() - started:.0f}s)")
                log.write(f"$ {' '.join(f'{k}={v}' for k, v in extra.items())}{' ' if extra else ''}{' '.join(argv)}\n")
                log.flush()
                try:
                    rc = subprocess.run(
                        argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **DEFAULT_BUILD_ENV, **extra}
                    ).returncode
                except OSError as exc:
                    raise RunFailed(f"{backend}: '{label}' could not start: {exc}") from None
                if rc != 0:
                    raise RunFailed(f"{backend}: '{label}' failed (exit {rc}); log: {log_path}")
        versions = subprocess.run(
            [venv_python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True
        ).stdout.splitlines()  # one line per package ("name==1.0", or "name @ file:///..." for a local one)
        marker = {"backend": backend, "created": time.time(), "requirements_sha": spec.sha, "packages": versions}
        (target / READY_MARKER).write_text(json.dumps(marker, indent=1))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    say(f"{backend}: ready at {target} in {time.monotonic() - started:.0f}s")
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
