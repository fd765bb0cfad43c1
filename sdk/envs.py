"""Where each backend's framework lives: this interpreter, another one, a managed venv or a container.

Resolution order for backend NAME (first hit wins):
1. ``PTSDK_<NAME>_PYTHON``: path to a Python interpreter that has the framework.
2. The config file (``PTSDK_CONFIG`` or ``~/.config/ptsdk/config.yaml``)::

       backends:
         trl: {python: /opt/envs/trl/bin/python}
         axolotl: {container: {image: axolotlai/axolotl:0.19.0, runtime: docker}}

3. A managed environment built by ``ptsdk env create NAME`` under ``$PTSDK_HOME/envs/NAME``
   (default ``~/.cache/ptsdk``).
4. This interpreter, when the framework is importable here.

ptsdk never imports a framework itself: versions, validators and training all run in the
backend's interpreter as subprocesses speaking JSON.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from ptsdk.errors import BackendUnavailable, PtsdkError
from ptsdk.warm import home as ptsdk_home  # $PTSDK_HOME: stdlib-only there, read before ptsdk's libraries load

if TYPE_CHECKING:
    from ptsdk.plugins.backend import Backend

READY_MARKER = "ptsdk-env.json"


def config_path() -> Path:
    return Path(os.environ.get("PTSDK_CONFIG", Path.home() / ".config" / "ptsdk" / "config.yaml")).expanduser()


def managed_env_dir(name: str) -> Path:
    return ptsdk_home() / "envs" / name


def read_config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PtsdkError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise PtsdkError(f"{path}: expected a mapping with a `backends:` key")
    return data


@dataclass
class Container:
    image: str
    runtime: Literal["docker", "apptainer"] = "docker"
    python: str = "python"

    def wrap(self, argv: list[str], workdir: str, env: dict[str, str], inputs: Sequence[str] = ()) -> list[str]:
        """argv as run inside the image: the run directory read-write and the inputs read-only, at the same paths."""
        if self.runtime == "docker":
            mounts = [x for p in inputs for x in ("-v", f"{p}:{p}:ro")]
            envs = [x for k, v in sorted(env.items()) for x in ("-e", f"{k}={v}")]
            return [
                "docker",
                "run",
                "--rm",
                "--gpus",
                "all",
                "--ipc=host",
                "-v",
                f"{workdir}:{workdir}",
                *mounts,
                "-w",
                workdir,
                *envs,
                self.image,
                *argv,
            ]
        binds = [x for p in inputs for x in ("--bind", f"{p}:{p}:ro")]
        return [
            "apptainer",
            "exec",
            "--nv",
            "--bind",
            f"{workdir}:{workdir}",
            *binds,
            "--pwd",
            workdir,
            *[x for k, v in sorted(env.items()) for x in ("--env", f"{k}={v}")],
            self.image,
            *argv,
        ]


@dataclass
class BackendEnv:
    backend: str
    framework: str
    python: str | None
    source: str
    container: Container | None = None
    _versions: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def available(self) -> bool:
        return self.container is not None or self.python is not None

    def require(self, hint: str, *, managed: bool = True) -> str:
        """The interpreter, or BackendUnavailable saying how to get one (`managed`: ptsdk env create can build it;
        a framework installed only from git cannot be)."""
        if self.python is None:
            raise BackendUnavailable(
                f"backend {self.backend}: {self.framework} is not installed where ptsdk looks",
                lines=[
                    *([f"create a managed environment: ptsdk env create {self.backend}"] if managed else []),
                    f"{'or ' if managed else ''}point ptsdk at one: "
                    f"export PTSDK_{self.backend.upper()}_PYTHON=/path/to/bin/python",
                    *([f"or install it here: {hint}"] if hint else []),
                ],
            )
        return self.python

    def versions(self, dists: tuple[str, ...] = ()) -> dict[str, str | None]:
        """Installed versions of the framework and its main dependencies, read without importing them."""
        wanted = tuple(dict.fromkeys((self.framework, "torch", "transformers", *dists)))
        if self.python is None:
            return {d: None for d in wanted}
        missing = [d for d in wanted if d not in self._versions]
        site = venv_site_packages(self.python) if missing and self.container is None else None
        if site is not None:  # read the venv's metadata here: no interpreter start before each launch
            self._versions.update(_dist_versions(missing, site))
            missing = []
        if missing:
            code = (
                "import json,sys,importlib.metadata as m\n"
                "out={}\n"
                "for d in sys.argv[1:]:\n"
                "    try: out[d]=m.version(d)\n"
                "    except m.PackageNotFoundError: out[d]=None\n"
                "print(json.dumps(out))"
            )
            try:
                proc = subprocess.run([self.python, "-c", code, *missing], capture_output=True, text=True, timeout=60)
                self._versions.update(json.loads(proc.stdout))
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self._versions.update({d: None for d in missing})
        return {d: self._versions[d] for d in wanted}

    def run_json(self, script: Path, payload: dict[str, Any], *, timeout: float = 600) -> dict[str, Any]:
        """Run a helper script in the backend's interpreter: JSON on stdin, one JSON object on stdout's last line."""
        python = self.require("")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        try:
            proc = subprocess.run(
                [python, str(script)],
                input=json.dumps(payload),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise PtsdkError(f"backend {self.backend}: {script.name} did not answer within {timeout:.0f}s") from None
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise PtsdkError(
                f"backend {self.backend}: {script.name} failed (exit {proc.returncode})", lines=tail.splitlines()
            )
        return json.loads(lines[-1])


def resolve_env(backend: type[Backend] | Backend) -> BackendEnv:
    name, framework = backend.name, backend.framework
    var = f"PTSDK_{name.upper()}_PYTHON"
    if os.environ.get(var):
        return BackendEnv(name, framework, os.environ[var], f"${var}")
    entry = (read_config().get("backends") or {}).get(name) or {}
    if isinstance(entry, dict) and entry.get("container"):
        spec = entry["container"]
        container = Container(**spec) if isinstance(spec, dict) else Container(image=str(spec))
        return BackendEnv(name, framework, entry.get("python"), f"container {container.image}", container)
    if isinstance(entry, dict) and entry.get("python"):
        return BackendEnv(name, framework, str(entry["python"]), str(config_path()))
    managed = managed_env_dir(name)
    if (managed / READY_MARKER).exists():
        return BackendEnv(name, framework, str(managed / "bin" / "python"), "managed")
    if importlib.util.find_spec(framework) is not None:
        return BackendEnv(name, framework, sys.executable, "this interpreter")
    return BackendEnv(name, framework, None, "missing")


def venv_site_packages(python: str) -> Path | None:
    """The site-packages of the virtual environment `python` belongs to, when that is all it sees: a venv
    without system site-packages and exactly one lib/pythonX.Y, started without PYTHONPATH (which the
    framework's processes inherit from ptsdk's). None otherwise (ask the interpreter)."""
    if os.environ.get("PYTHONPATH"):
        return None
    prefix = Path(python).parent.parent
    try:
        cfg = (prefix / "pyvenv.cfg").read_text()
    except OSError:
        return None
    if re.search(r"^\s*include-system-site-packages\s*=\s*true", cfg, re.I | re.M):
        return None
    found = list(prefix.glob("lib/python3*/site-packages"))
    return found[0] if len(found) == 1 else None


def _dist_versions(names: Sequence[str], site: Path) -> dict[str, str | None]:
    """The versions of `names` installed in `site`: from their ``NAME-VERSION.dist-info`` folders' names (a wheel's
    install names them so; one listing of the folder), else from their metadata (an egg-info; parsing METADATA costs
    about 10 ms a package)."""
    try:
        entries = os.listdir(site)
    except OSError:
        entries = []
    listed: dict[str, str] = {}
    for entry in entries:
        if entry.endswith(".dist-info"):
            dist, sep, version = entry[: -len(".dist-info")].partition("-")
            if sep and version:
                listed.setdefault(_normal_name(dist), version)
    out: dict[str, str | None] = {}
    for name in names:
        out[name] = listed.get(_normal_name(name))
        if out[name] is None:
            out[name] = next((d.version for d in importlib.metadata.distributions(name=name, path=[str(site)])), None)
    return out


def _normal_name(name: str) -> str:
    """A distribution's name as the packaging specs compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()
