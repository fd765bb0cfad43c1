"""The run directory: the only place a run writes, complete even after a crash.

`RunDir` owns the layout; every other module takes the names from here."""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator
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
    RANKS = runtime.RANKS_DIR  # one <global rank>.json per training process, written inside it

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
    def saved_model(self) -> Path | None:
        """The trained model (or adapter) folder, when the run saved one (not empty)."""
        model = self.model_path
        return model if model.is_dir() and any(model.iterdir()) else None

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
        """The recorded status, except `lost` for a run recorded as `running` whose ptsdk process is gone
        (checked on the same host only: from another one a `running` run stays `running`)."""
        status = self.manifest.get("status") or "unknown"
        return "lost" if status == "running" and _process_gone(self.manifest.get("process")) else status

    def job(self) -> Job:
        """The validated job the run was started with (paths already resolved)."""
        from ptsdk.spec import validate_job
        from ptsdk.spec.load import default_name

        data = dict(self.manifest["job"])
        if isinstance(data.get("name"), str):  # runs made before names were restricted to file-name characters
            data["name"] = default_name(data["name"])
        return validate_job(data, source=str(self.manifest_path))

    def metrics(self) -> list[MetricRecord]:
        """The normalized metric records; none when the run wrote no metrics.jsonl."""
        from ptsdk.metrics import read_metrics

        if not self.metrics_path.exists():
            return []
        try:
            return list(read_metrics(self.metrics_path))
        except (ValueError, TypeError) as exc:
            raise self._error(f"{self.METRICS} is not valid ({exc.__class__.__name__}: {exc})") from None


def _process_gone(process: Any) -> bool:
    """Whether the ptsdk process a manifest records (pid, host, start time) is known to have ended."""
    from ptsdk.launch import process_state

    return isinstance(process, dict) and process_state(process) == "gone"


MANIFEST = RunDir.MANIFEST
LOG = RunDir.LOG
METRICS = RunDir.METRICS


LOCK = ".ptsdk.lock"  # inside a folder ptsdk is writing; flock'ed while a process owns the folder

_FS_WORDS = {
    errno.EROFS: "the filesystem is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "the path is too long for the filesystem",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EBUSY: "the folder is busy (a mount point, or in use)",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ELOOP: "too many symbolic links in the path",
    errno.EEXIST: "it already exists",
}


def fs_error(option: str, path: Path, exc: OSError | ValueError, hint: str = "choose another folder") -> PtsdkError:
    """An OSError met while creating or writing `path` as a message naming the option, the path and the fix."""
    if isinstance(exc, ValueError):  # os functions refuse paths with NUL bytes this way
        return PtsdkError(f"{option} {_short(path)}: not a usable path ({exc}); {hint}")
    words = _FS_WORDS.get(exc.errno or 0, exc.strerror or exc.__class__.__name__)
    # the file it failed on, unless that is the path itself or a temporary sibling of it (written, then renamed)
    other = exc.filename and str(exc.filename) != str(path) and Path(str(exc.filename)).parent != path.parent
    where = f" ({_short(Path(str(exc.filename)))})" if other else ""
    return PtsdkError(f"{option} {_short(path)}: cannot write there: {words}{where}; {hint}")


def os_error_words(exc: OSError) -> str:
    """'PATH: what went wrong' for any OSError, the path shortened."""
    words = _FS_WORDS.get(exc.errno or 0, exc.strerror or exc.__class__.__name__)
    return f"{_short(Path(str(exc.filename)))}: {words}" if exc.filename else words


def _short(path: Path, limit: int = 200) -> str:
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]} ({len(text)} characters)"


def require_new_dir(path: Path, option: str, hint: str = "choose a new folder") -> None:
    """The one guard for folders ptsdk creates: `path` must not exist, or be an empty folder.

    A lock file left by a ptsdk process that died before writing anything does not count."""
    try:
        if not path.exists():
            return
        if not path.is_dir():
            raise PtsdkError(f"{option} {_short(path)}: exists and is not a folder; {hint}")
        if any(p.name != LOCK for p in path.iterdir()):
            raise PtsdkError(f"{option} {_short(path)}: exists and is not empty; {hint}")
    except (OSError, ValueError) as exc:
        raise fs_error(option, path, exc, hint) from None


class DirLock:
    """An exclusive flock on FOLDER/.ptsdk.lock, held while one ptsdk process owns the folder.

    The kernel drops it when the process exits, however it dies (SIGKILL included), so a stale lock
    never blocks anyone; the holder's pid is written into the file for the error message."""

    def __init__(self, folder: Path, name: str = LOCK) -> None:
        self.path = folder / name
        self._fd: int | None = None

    def acquire(self, *, wait: bool = False) -> bool:
        """Take the lock; False when another process holds it (and `wait` is off)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds the lock, in words (its pid as written in the file)."""
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        return f"pid {pid}" if pid.isdigit() else "another process"

    def held_elsewhere(self) -> bool:
        """Whether some other process holds the lock now (a probe that takes and drops it)."""
        if self._fd is not None:
            return False
        if not self.path.exists():
            return False
        try:
            if self.acquire():
                self.release()
                return False
        except OSError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ClaimedDir:
    """A new folder this process owns: created (or taken while empty) and locked, so exactly one
    process can ever write into it. `discard()` removes what was written (and the folder when it was
    created here); `release()` keeps it."""

    def __init__(self, path: Path, lock: DirLock, created: bool) -> None:
        self.path, self.lock, self.created = path, lock, created

    def discard(self) -> None:
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
        else:  # an empty folder the user made (or a mount point): leave it empty, as it was
            for p in self.path.iterdir() if self.path.exists() else ():
                if p.name == LOCK:
                    continue
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            (self.path / LOCK).unlink(missing_ok=True)
        self.lock.release()

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> ClaimedDir:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            self.discard()
        else:
            self.release()


def claim_new_dir(path: Path, option: str, hint: str = "choose a new folder", *, exclusive: bool = False) -> ClaimedDir:
    """Create `path` (or take it while it is empty) and lock it. Exactly one of several processes
    claiming one path at once wins; the others get a clear error. `exclusive`: only a folder created
    here will do (FileExistsError is raised, for callers that pick another name)."""
    require_new_dir(path, option, hint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
            created = True
        except FileExistsError:
            if exclusive:
                raise
            if not path.is_dir():
                raise PtsdkError(f"{option} {_short(path)}: exists and is not a folder; {hint}") from None
            created = False
        lock = DirLock(path)
        if not lock.acquire():
            raise PtsdkError(
                f"{option} {_short(path)}: another ptsdk process ({lock.holder()}) is writing it now; "
                "choose another folder"
            )
    except (FileExistsError, PtsdkError):
        raise
    except (OSError, ValueError) as exc:
        raise fs_error(option, path, exc, hint) from None
    claimed = ClaimedDir(path, lock, created)
    if any(p.name != LOCK for p in path.iterdir()):  # filled between the guard and the lock
        lock.release()
        raise PtsdkError(f"{option} {_short(path)}: exists and is not empty; {hint}")
    return claimed


def claim_run_dir(run_dir: Path | None, parent: str | Path, job_name: str, backend: str) -> ClaimedDir:
    """The run directory of a new run, claimed: `--run-dir` as given, or a fresh
    PARENT/NAME-BACKEND-TIME[-N] that no other run can pick, even one started in the same second."""
    if run_dir is not None:
        return claim_new_dir(run_dir, "--run-dir", f"use --resume {_short(run_dir)} to continue it")
    base = default_run_dir(parent, job_name, backend)
    for i in range(1, 10_000):
        candidate = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            return claim_new_dir(candidate, "output.dir", "set output.dir to a folder you can write", exclusive=True)
        except FileExistsError:
            continue
        except PtsdkError:
            if candidate.exists() and candidate != base:
                continue
            raise
    raise PtsdkError(f"output.dir {parent}: no free run directory name for {base.name}")


def lock_run_dir(run_dir: Path, option: str = "--resume") -> DirLock:
    """The lock of an existing run directory, for resuming it: refused while another process runs it."""
    lock = DirLock(run_dir)
    try:
        acquired = lock.acquire()
    except (OSError, ValueError) as exc:
        raise fs_error(option, run_dir, exc, "copy the run directory somewhere writable and resume the copy") from None
    if not acquired:
        raise PtsdkError(
            f"{option} {_short(run_dir)}: another ptsdk process ({lock.holder()}) is running it now; "
            "wait for it to finish or stop it first"
        )
    return lock


def write_new_file(
    path: Path, text: str, *, option: str = "--out", check: Callable[[Path], None] | None = None
) -> None:
    """Write a new file all or nothing, never over one that exists or appears meanwhile: the text goes to a
    temporary sibling first, `check` may refuse it there (raising), then it is linked into place."""
    if path.exists():
        raise PtsdkError(f"{option} {path}: exists; choose a new file")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.new{path.suffix}")
    try:
        tmp.write_text(text)
        if check is not None:
            check(tmp)
        os.link(tmp, path)
    except FileExistsError:
        raise PtsdkError(f"{option} {path}: exists; choose a new file") from None
    except OSError as exc:
        raise fs_error(option, path, exc, "choose a writable place") from None
    finally:
        tmp.unlink(missing_ok=True)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_finite(data), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _finite(value: Any) -> Any:
    """JSON has no Infinity or NaN: a non-finite float is written as null, as in metrics.jsonl."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_plan(plan: Plan, target: Path) -> None:
    for f in plan.files:
        dest = target / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f.content is not None:
            dest.write_text(f.content)
        elif f.copy_from is not None:  # a PlanFile has one or the other
            shutil.copyfile(f.copy_from, dest)


@contextmanager
def staged_dir(final: Path, option: str = "--out") -> Iterator[Path]:
    """Write a new folder all or nothing: claimed and locked first (one writer), removed again if
    the block fails. Yields the folder itself."""
    claimed = claim_new_dir(final, option)
    with claimed:
        try:
            yield final
        except OSError as exc:
            raise fs_error(option, final, exc) from None
    (final / LOCK).unlink(missing_ok=True)


def default_run_dir(parent: str | Path, job_name: str, backend: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{job_name}-{backend}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path
