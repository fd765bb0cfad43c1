"""The run directory: the only place a run writes, complete even after a crash.

`RunDir` owns the layout; every other module takes the names from here."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptsdk.errors import PtsdkError
from ptsdk.plugins import runtime
from ptsdk.plugins.backend import Plan

if TYPE_CHECKING:
    from ptsdk.metrics import MetricRecord
    from ptsdk.spec import Job


class RunDir:
    """One run directory: its file names, and reading and writing its manifest and metrics.

    `option` and `purpose` only word the errors: RunDir(d, option="--resume", purpose="resumed")
    says "--resume d: manifest.json is truncated (...); the run cannot be resumed"."""

    MANIFEST = "manifest.json"
    LOG = "logs/backend.log"
    METRICS = "metrics.jsonl"
    MODEL = "model"
    CHECKPOINTS = "checkpoints"
    COMMAND = "command.sh"
    TOKENIZED_DATA = runtime.FINGERPRINT  # written inside the framework's process

    def __init__(self, path: str | Path, *, option: str = "", purpose: str = "read") -> None:
        self.path = Path(path)
        self.option = option
        self.purpose = purpose
        self._manifest: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def manifest_path(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def log_path(self) -> Path:
        return self.path / self.LOG

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def model_path(self) -> Path:
        return self.path / self.MODEL

    @property
    def checkpoints_path(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def command_path(self) -> Path:
        return self.path / self.COMMAND

    @property
    def tokenized_data_path(self) -> Path:
        return self.path / self.TOKENIZED_DATA

    def _error(self, problem: str) -> PtsdkError:
        label = f"{self.option} {self.path}" if self.option else str(self.path)
        return PtsdkError(f"{label}: {problem}; the run cannot be {self.purpose}")

    def read_manifest(self) -> dict[str, Any]:
        """The manifest, read again from disk; anything that is not a usable manifest is a PtsdkError."""
        path = self.manifest_path
        if not self.path.is_dir():
            raise self._error("no such run directory")
        if not path.is_file():
            raise self._error(f"not a ptsdk run directory (no {self.MANIFEST})")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(f"{self.MANIFEST} cannot be read ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
            if not text.strip():
                raise self._error(f"{self.MANIFEST} is truncated (empty file)") from None
            if exc.pos >= len(text.rstrip()):
                raise self._error(f"{self.MANIFEST} is truncated ({where})") from None
            raise self._error(f"{self.MANIFEST} is not valid JSON ({where})") from None
        if not isinstance(data, dict):
            raise self._error(f"{self.MANIFEST} holds a JSON {type(data).__name__}, not an object")
        if not isinstance(data.get("job"), dict):
            raise self._error(f"{self.MANIFEST} has no `job` object")
        if not isinstance(data.get("backend"), str) or not data["backend"]:
            raise self._error(f"{self.MANIFEST} has no `backend` name")
        self._manifest = data
        return data

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest as last read or written (read on first use)."""
        return self._manifest if self._manifest is not None else self.read_manifest()

    def write_manifest(self, data: dict[str, Any]) -> None:
        """Atomic, as write_json: a reader sees the old manifest or the new one."""
        write_json(self.manifest_path, data)
        self._manifest = data

    @property
    def backend(self) -> str:
        return self.manifest["backend"]

    @property
    def status(self) -> str:
        return self.manifest.get("status") or "unknown"

    def job(self) -> Job:
        """The validated job the run was started with (paths already resolved)."""
        from ptsdk.spec import validate_job

        return validate_job(self.manifest["job"], source=str(self.manifest_path))

    def metrics(self) -> list[MetricRecord]:
        """The normalized metric records; none when the run wrote no metrics.jsonl."""
        from ptsdk.metrics import read_metrics

        if not self.metrics_path.exists():
            return []
        try:
            return list(read_metrics(self.metrics_path))
        except (ValueError, TypeError) as exc:
            raise self._error(f"{self.METRICS} is not valid ({exc.__class__.__name__}: {exc})") from None


MANIFEST = RunDir.MANIFEST
LOG = RunDir.LOG
METRICS = RunDir.METRICS


def require_new_dir(path: Path, option: str, hint: str = "choose a new folder") -> None:
    """The one guard for folders ptsdk creates: `path` must not exist, or be an empty folder."""
    if not path.exists():
        return
    if not path.is_dir():
        raise PtsdkError(f"{option} {path}: exists and is not a folder; {hint}")
    if any(path.iterdir()):
        raise PtsdkError(f"{option} {path}: exists and is not empty; {hint}")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def write_plan(plan: Plan, target: Path) -> None:
    for f in plan.files:
        dest = target / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f.content is not None:
            dest.write_text(f.content)
        elif f.copy_from is not None:  # a PlanFile has one or the other
            shutil.copyfile(f.copy_from, dest)


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Build a directory beside `final` and move it into place only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists() and not any(final.iterdir()):
        final.rmdir()
    os.replace(tmp, final)


def default_run_dir(parent: str | Path, job_name: str, backend: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{job_name}-{backend}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path
