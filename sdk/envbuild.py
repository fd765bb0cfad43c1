"""`ptsdk env create/list/remove`: managed virtual environments, one per backend.

An environment counts as ready only once its marker file is written, which happens last;
a failed or interrupted build is removed, so nothing half-made is ever used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from ptsdk.envs import READY_MARKER, managed_env_dir, ptsdk_home
from ptsdk.errors import PtsdkError, RunFailed


def requirements_for(backend: str) -> list[str]:
    try:
        text = resources.files(f"ptsdk.backends.{backend}").joinpath("requirements.txt").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        raise PtsdkError(
            f"backend {backend}: ptsdk has no known-good requirement set for it yet; "
            f"install the framework yourself and set PTSDK_{backend.upper()}_PYTHON"
        ) from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def requirements_sha(reqs: list[str]) -> str:
    return hashlib.sha256("\n".join(reqs).encode()).hexdigest()[:16]


def built_from(target: Path) -> str | None:
    """The requirements hash a ready environment was built from (None: not ready, or built by hand)."""
    try:
        return json.loads((target / READY_MARKER).read_text()).get("requirements_sha")
    except (OSError, ValueError):
        return None


def create_env(backend: str, *, python: str = sys.executable, force: bool = False,
               say: Callable[[str], None] = print) -> Path:  # fmt: skip
    reqs = requirements_for(backend)
    target = managed_env_dir(backend)
    if (target / READY_MARKER).exists() and not force:
        if built_from(target) == requirements_sha(reqs):
            say(f"{backend}: environment already ready at {target} (use --force to rebuild)")
            return target
        say(f"{backend}: environment at {target} was built from other requirements; rebuilding")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    log_path = target.parent / f"{backend}.build.log"
    torch_first = [r for r in reqs if r.split("==")[0].lower() == "torch"]
    rest = [r for r in reqs if r not in torch_first]
    steps = [
        ("create venv", [python, "-m", "venv", str(target)]),
        ("install torch (first, so no CUDA build is pulled)", None),
        (f"install {len(rest)} pinned packages", None),
    ]
    started = time.monotonic()
    try:
        with log_path.open("w") as log:
            for i, (label, argv) in enumerate(steps, 1):
                if argv is None:
                    pkgs = torch_first if i == 2 else rest
                    if not pkgs:
                        continue
                    argv = [str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", *pkgs]
                say(f"[{i}/{len(steps)}] {backend}: {label} ({time.monotonic() - started:.0f}s)")
                log.write(f"$ {' '.join(argv)}\n")
                log.flush()
                try:
                    # DS_BUILD_OPS=0: DeepSpeed (an sdist) installs without compiling CUDA ops.
                    rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "DS_BUILD_OPS": "0"}).returncode
                except OSError as exc:
                    raise RunFailed(f"{backend}: '{label}' could not start: {exc}") from None
                if rc != 0:
                    raise RunFailed(f"{backend}: '{label}' failed (exit {rc}); log: {log_path}")
        versions = subprocess.run(
            [str(target / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
        ).stdout.split()
        marker = {"backend": backend, "created": time.time(), "requirements_sha": requirements_sha(reqs), "packages": versions}
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
