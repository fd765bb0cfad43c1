"""The one path from a job file to a run directory. Every CLI command is a prefix of it:
load -> check -> translate -> native check -> launch -> metrics."""

from __future__ import annotations

import getpass
import platform
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import ptsdk
from ptsdk.envs import BackendEnv
from ptsdk.errors import PtsdkError, SpecError, UnsupportedError, join_loc
from ptsdk.matrix.check import CheckResult, check
from ptsdk.plugins.backend import Backend, Plan
from ptsdk.plugins.launcher import Launch, LocalLauncher, RunLauncher
from ptsdk.plugins.manager import get_backend, get_backends
from ptsdk.rundir import (
    RunDir,
    claim_run_dir,
    fs_error,
    lock_run_dir,
    now,
    require_new_dir,
    staged_dir,
    write_plan,
)
from ptsdk.spec import Job, load_job


def load_checked(
    job_path: str | Path, backend: str | None = None, *, launching: bool = False
) -> tuple[Job, CheckResult | None]:
    """Load and validate a job; with a backend, refuse what it cannot run (exit 2). Then the data and
    model preflight (ptsdk.preflight); `launching` (run, compare) also refuses a hub id that cannot be
    fetched from here, which only warns otherwise (a job is often validated away from its cluster)."""
    job = load_job(job_path)
    result, warnings = check_job(
        job, backend, source=str(job_path), base=Path(job_path).resolve().parent, launching=launching
    )
    for line in warnings:
        print(line, file=sys.stderr)
    return job, result


def check_job(
    job: Job, backend: str | None, *, source: str, base: Path, launching: bool
) -> tuple[CheckResult | None, list[str]]:
    """The checks of a loaded job (see load_checked): the backend's verdict, and the preflight's notes and
    warnings (`note: ...`, `warning: ...` lines)."""
    known_backend_options(job, source)
    result = check_backend(job, backend, source) if backend is not None else None
    return result, preflight_job(job, source, base, launching=launching)


def known_backend_options(job: Job, source: str) -> None:
    """backend_options may name installed backends only."""
    backends = get_backends()
    unknown = sorted(set(job.backend_options) - set(backends))
    if unknown:
        raise SpecError(
            f"{source}: backend_options names unknown backend(s)",
            lines=[
                f"{join_loc(('backend_options', u))}: no such backend; installed: {', '.join(sorted(backends))}"
                for u in unknown
            ],
        )


def check_backend(job: Job, backend: str, source: str) -> CheckResult:
    """Whether `backend` can run the job: the matrix and the backend's own static checks; UnsupportedError
    naming every reason and the backends that accept the whole job when it cannot."""
    get_backend(backend)
    result = check(job, backend, get_backends())
    if not result.ok:
        accepted = ", ".join(result.accepted_by) or "none of the installed backends"
        raise UnsupportedError(
            f"{source}: backend {backend} cannot run this job",
            lines=[*result.reasons(), f"backends that accept the whole job: {accepted}"],
        )
    return result


def preflight_job(job: Job, source: str, base: Path, *, launching: bool) -> list[str]:
    """Data and model checks before anything launches: problems raise SpecError (exit 2); the notes and, when
    not launching, the hub warnings are returned as `note: ...` / `warning: ...` lines."""
    from ptsdk.preflight import hub_problems, preflight

    report = preflight(job, base=base, check_hub=launching)
    if report.problems:
        raise SpecError(
            f"{source}: {len(report.problems)} problem(s) with the job's data or model", lines=report.problems
        )
    out = [f"note: {note}" for note in report.notes]
    if not launching:  # a run here would fail on these; the job may well be meant for another machine
        out += [f"warning: {line}" for line in hub_problems(job, base=base)]
    return out


def native_check(backend: Backend, plan: Plan) -> None:
    """Run the framework's own validator on the plan, in a scratch copy of the files.

    A plan that passed before, unchanged and checked by the same backend code in the same environment
    (see :func:`check_key`), is not checked again: a rerun of a job starts without the framework's start-up
    cost. PTSDK_NO_CHECK_CACHE=1 checks every time."""
    import tempfile

    if backend.env.python is None and backend.env.container is not None:
        raise PtsdkError(
            f"backend {backend.name} runs in container {backend.env.container.image}: ptsdk validates with a local "
            f"interpreter; add `python:` beside `container:` in the config file or pass --no-native-check"
        )
    marker = _check_marker(backend, plan)
    if marker is not None and marker.is_file():
        return
    with tempfile.TemporaryDirectory(prefix="ptsdk-check-") as tmp:
        write_plan(plan, Path(tmp))
        problems = backend.native_check(plan, Path(tmp))
    if problems:
        raise UnsupportedError(f"{backend.framework}'s own validator rejected the translated config", lines=problems)
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{backend.name} {now()}\n")
        except OSError:  # a cache that cannot be written only costs time
            pass


def check_key(backend: Backend, plan: Plan) -> str | None:
    """What a native check's verdict depends on, hashed: ptsdk's version, the backend's own code (its
    package's .py files), its environment (the interpreter and its site-packages' mtime), the plan (files,
    arguments, environment variables) and the local inputs it reads (size and mtime). None: not cacheable."""
    import hashlib
    import inspect
    import json

    python = backend.env.python
    if python is None:
        return None
    h = hashlib.sha256()

    def add(*parts: object) -> None:
        for part in parts:
            h.update(str(part).encode("utf-8", "surrogateescape") + b"\0")

    add(ptsdk.__version__, backend.name, python)
    try:
        env_root = Path(python).parent.parent
        add(*(p.stat().st_mtime_ns for p in sorted(env_root.glob("lib*/python*/site-packages"))))
        package = Path(inspect.getfile(type(backend))).parent
        for source in sorted(package.glob("*.py")):
            add(source.name, hashlib.sha256(source.read_bytes()).hexdigest())
        for f in plan.files:
            add(
                f.path,
                f.content
                if f.content is not None
                else hashlib.sha256(Path(f.copy_from or "").read_bytes()).hexdigest(),
            )
        for cmd in plan.commands:
            add(json.dumps(cmd.argv), json.dumps(cmd.env, sort_keys=True))
        for item in sorted(plan.inputs):
            st = Path(item).stat()
            add(item, st.st_size, st.st_mtime_ns)
    except (OSError, TypeError, ValueError):
        return None
    return h.hexdigest()


def _check_marker(backend: Backend, plan: Plan) -> Path | None:
    import os

    from ptsdk.envs import ptsdk_home

    if os.environ.get("PTSDK_NO_CHECK_CACHE"):
        return None
    key = check_key(backend, plan)
    return ptsdk_home() / "native-checks" / key[:2] / key if key else None


def write_translation(plan: Plan, out: Path, env: BackendEnv | None = None) -> None:
    """translate --out: the native files, the command and the notes, all or nothing."""
    require_new_dir(out, "--out")
    with staged_dir(out) as tmp:
        write_plan(plan, tmp)
        RunDir(tmp).command_path.write_text(command_script(plan, env))
        (tmp / "NOTES.txt").write_text("\n".join(str(n) for n in plan.notes) + "\n")


def command_script(plan: Plan, env: BackendEnv | None = None) -> str:
    """The plan's commands as a script; inside the backend's container image when it is configured so."""
    from ptsdk.launch import render_shell

    lines = [
        "#!/usr/bin/env bash",
        "# Run from this folder. Generated by ptsdk.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
    ]
    lines += [render_shell(c, env, plan.inputs) for c in plan.commands]
    return "\n".join(lines) + "\n"


@dataclass
class RunResult:
    run_dir: Path
    exit_code: int
    status: str
    metrics: int
    wall_time_s: float


class RunTerminated(PtsdkError):
    """`ptsdk run` got SIGTERM: the framework's processes were stopped and the run recorded as interrupted.
    Exit status 143 (128 + SIGTERM), as a process killed by SIGTERM has; SIGINT stays KeyboardInterrupt (130)."""

    exit_code = 128 + signal.SIGTERM


def platform_name() -> str:
    """platform.platform()'s system-release-machine-with-libc, without the processor field it also asks for,
    which costs a `uname -p` process on Linux."""
    name = f"{platform.system()}-{platform.release()}-{platform.machine()}"
    lib, version = platform.libc_ver()
    return f"{name}-with-{lib}{version}" if lib else name


def manifest(job: Job, backend: Backend, plan: Plan, run_dir: Path, **extra: object) -> dict:
    from ptsdk.launch import render_shell, this_process

    env = backend.env
    return {
        "ptsdk_version": ptsdk.__version__,
        "backend": backend.name,
        "run_dir": str(run_dir.resolve()),
        "job": job.model_dump(mode="json"),
        "native_config": plan.native_config,
        "launcher": {"kind": plan.launcher.kind, "args": plan.launcher.args()},
        "commands": [{"argv": c.argv, "env": c.env, "shell": render_shell(c, env, plan.inputs)} for c in plan.commands],
        "notes": [str(n) for n in plan.notes],
        "effective": plan.effective,
        "environment": {
            "python": env.python,
            "source": env.source,
            "versions": env.versions(backend.reported_packages),
        },
        "host": {
            "hostname": platform.node(),
            "user": getpass.getuser(),
            "platform": platform_name(),
            "ptsdk_python": sys.version.split()[0],
        },
        # The ptsdk process running it: a reader shows a `running` run whose process is gone as `lost`.
        "process": this_process(),
        **extra,
    }


def run(
    job: Job,
    backend: Backend,
    plan: Plan,
    run_dir: Path | None = None,
    *,
    resume: bool = False,
    native_checked: bool = False,
    echo: TextIO | None = sys.stderr,
    view: TextIO | None = None,
    launcher: RunLauncher | None = None,
) -> RunResult:
    """Run the plan into a new run directory, or continue the one in `run_dir` (resume=True).

    The run directory records each attempt (`attempts` in the manifest; `started_at` stays the first's).
    Ctrl-C raises KeyboardInterrupt and SIGTERM :class:`RunTerminated` (exit 143), both after the
    framework's processes were stopped and the run recorded as `interrupted` with its metrics so far.
    A succeeded run whose loss or trained weights are not finite is recorded `failed` (`nonfinite`).
    `echo` streams the framework's own output; `view` shows the live progress (ptsdk.live) and, when the
    run fails, the log's last relevant lines. `launcher` says where the commands run (ptsdk.plugins.launcher:
    this machine by default; a resumed run keeps the one it was started with unless another is given)."""
    from ptsdk.launch import Terminated, sigterm_raises

    backend.env.require(backend.install_hint, managed=backend.schema_source is None)
    if launcher is None and resume and run_dir is not None:
        launcher = recorded_launcher(RunDir(run_dir, option="--resume", purpose="resumed").read_manifest())
    launcher = launcher or LocalLauncher()
    problems = launcher.problems(job, plan)
    if problems:
        raise PtsdkError(f"the {launcher.name} launcher cannot run this job", lines=problems)
    with sigterm_raises():
        try:
            previous: dict[str, Any] | None = None
            if resume:
                if run_dir is None:
                    raise PtsdkError("--resume: name the run directory to continue")
                rd = RunDir(run_dir, option="--resume", purpose="resumed")
                rd.read_manifest()
                lock = lock_run_dir(run_dir)  # one process per run directory, for the whole attempt
                try:
                    previous = resumable(rd, job, backend)
                    plan = backend.resume(plan, run_dir)
                except BaseException:
                    lock.release()
                    raise
            else:
                # Claimed (created and locked) before the native check: an unwritable or contested folder fails first.
                claimed = claim_run_dir(run_dir, job.output.dir, job.name or "job", backend.name)
                run_dir, lock = claimed.path, claimed.lock
                rd = RunDir(run_dir)
                try:
                    if not native_checked:
                        native_check(backend, plan)
                    write_plan(plan, run_dir)
                    rd.command_path.write_text(command_script(plan, backend.env))
                    rd.log_path.parent.mkdir()
                except OSError as exc:
                    claimed.discard()
                    raise fs_error("--run-dir", run_dir, exc) from None
                except BaseException:
                    claimed.discard()
                    raise
            with lock:
                return _run_claimed(job, backend, plan, rd, previous=previous, echo=echo, view=view, launcher=launcher)
        except Terminated:  # before the run started (_run_claimed turns a later one into RunTerminated)
            raise RunTerminated("ptsdk run was terminated (SIGTERM) before the run started") from None


def _run_claimed(
    job: Job,
    backend: Backend,
    plan: Plan,
    rd: RunDir,
    *,
    previous: dict[str, Any] | None,
    echo: TextIO | None,
    view: TextIO | None,
    launcher: RunLauncher,
) -> RunResult:
    """The run itself (one attempt), in a run directory this process holds the lock of; `previous` is the
    manifest of the run it resumes; `launcher` runs the commands."""
    from contextlib import AbstractContextManager, nullcontext

    from ptsdk import warm
    from ptsdk.launch import Terminated, signals_deferred
    from ptsdk.live import LiveView, failure_excerpt
    from ptsdk.metrics import MetricRecord, nonfinite_problem, write_metrics

    run_dir = rd.path
    earlier: list[dict[str, Any]] = []
    resumed_from: int | None = None
    if previous is not None:
        earlier, resumed_from = _attempts(previous, rd.status), backend.resume_step(run_dir)
    started_at = now()
    attempt: dict[str, Any] = {
        "started_at": started_at,
        "ended_at": None,
        "status": "running",
        "exit_code": None,
        "resumed_from_step": resumed_from,
    }
    attempts = [*earlier, attempt]
    info = manifest(
        job,
        backend,
        plan,
        run_dir,
        started_at=(previous or {}).get("started_at") or started_at,
        ended_at=None,
        exit_code=None,
        status="running",
        resumed=previous is not None,
        attempts=attempts,
    )
    if launcher.name != "local":
        info["cluster"] = launcher.record()
    rd.write_manifest(info)

    def keep(record: dict[str, Any]) -> None:  # what the launcher learns (a scheduler's job id, its end state)
        if record:
            info["cluster"] = {**info.get("cluster", {}), **record}

    def note(record: dict[str, Any]) -> None:  # ... kept in the manifest at once
        keep(record)
        rd.write_manifest(info)

    python = backend.env.python if launcher.name == "local" and backend.env.container is None else None
    first = plan.commands[0] if plan.commands and previous is None else None  # a resumed run's env is its own
    if python and backend.warm_modules and first is not None and warm.is_script(first.argv):
        warm.remember(backend.name, python, first.env, backend.warm_modules)  # the next `ptsdk run` starts warm
    started, cpu = time.monotonic(), time.process_time()
    code, status, peak = 1, "failed", 0.0
    try:
        try:
            live: AbstractContextManager[Any] = (
                LiveView(job, backend, run_dir, view) if view is not None else nullcontext()
            )
            with rd.log_path.open("a") as log, live:
                outcome = launcher.execute(Launch(plan, backend.env, run_dir, rd.command_path, log, echo, note))
            code, peak = outcome.exit_code, outcome.peak_rss_mib
            keep(outcome.record)
            status = outcome.status or ("succeeded" if code == 0 else "failed")
            if code != 0 and view is not None:
                excerpt = failure_excerpt(rd.log_path)
                view.write(
                    f"{backend.framework} exited with status {code}; the end of {rd.log_path}:\n"
                    + "".join(f"  {line}\n" for line in excerpt)
                )
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as Terminated
            code, status = getattr(exc, "exit_code", 130), "interrupted"
            raise
        finally:
            with signals_deferred():  # the outcome is recorded whole, even under a second signal
                wall = time.monotonic() - started
                # ptsdk's own CPU meanwhile (live view, log copy): the most it can have taken from the framework
                cpu = time.process_time() - cpu
                records: list[MetricRecord] = []
                try:
                    records = list(backend.parse_metrics(run_dir))
                    n = write_metrics(rd.metrics_path, records)
                except Exception as exc:  # metrics must not hide the run's own outcome
                    n = 0
                    info["metrics_error"] = f"{exc.__class__.__name__}: {exc}"
                problem = nonfinite_problem(records)
                if problem:
                    info["nonfinite"] = problem
                    if status == "succeeded":
                        code, status = 1, "failed"
                elsewhere = rank_zero_elsewhere(job, run_dir)
                if elsewhere:
                    info["rank_zero_elsewhere"] = elsewhere
                missing = backend.artifacts_problems(run_dir) if status == "succeeded" and not elsewhere else []
                if missing:
                    code, status = 1, "failed"
                    info["artifact_problems"] = missing
                attempt.update(ended_at=now(), status=status, exit_code=code, wall_time_s=round(wall, 2))
                attempt["ptsdk_cpu_s"] = round(cpu, 3)
                handed = warm.handed_over(started)
                if handed is not None:  # the first command's interpreter started before `started`
                    attempt["warm_start"] = handed
                info.update(
                    ended_at=attempt["ended_at"],
                    exit_code=code,
                    status=status,
                    wall_time_s=round(sum(a.get("wall_time_s") or 0.0 for a in attempts), 2),
                    metrics_records=n,
                    peak_rss_mib=round(peak, 1),
                )
                rd.write_manifest(info)
    except Terminated:
        raise RunTerminated(
            f"ptsdk run was terminated (SIGTERM): the framework was stopped and the run recorded as interrupted "
            f"in {run_dir}; continue it with `ptsdk run --resume {run_dir}`"
        ) from None
    return RunResult(run_dir, code, status, n, wall)


def rank_zero_elsewhere(job: Job, run_dir: Path) -> str | None:
    """On a multi-node run whose nodes each have their own run directory (a SkyPilot task runs `ptsdk run` on
    every node), the nodes without global rank 0 save no model and log no metrics: what the manifest says of
    it, from the ranks the processes noted (logs/ranks/<rank>.json); None on the node of rank 0, on one node, or
    when the framework notes no ranks."""
    if job.distributed.nodes == 1:
        return None
    ranks = sorted(int(p.stem) for p in (run_dir / RunDir.RANKS).glob("*.json") if p.stem.isdigit())
    if not ranks or 0 in ranks:
        return None
    return (
        f"this node ran global rank(s) {', '.join(map(str, ranks))}; rank 0, which saves the model and logs the "
        "metrics, ran on another node: that node's run directory holds them"
    )


def resumable(rd: RunDir, job: Job, backend: Backend) -> dict[str, Any]:
    """The manifest of the run `--resume` continues; a PtsdkError when there is nothing to continue: the
    run succeeded, is still running, or was made with another backend or another job."""
    previous = rd.read_manifest()
    label = f"--resume {rd.path}"
    status = rd.status
    if status == "succeeded":
        raise PtsdkError(
            f"{label}: the run already succeeded (ended {previous.get('ended_at') or 'at an unknown time'}); "
            f"there is nothing to resume; to train again start a new run: ptsdk run JOB --backend {rd.backend}"
        )
    if status == "running":
        proc = previous.get("process") or {}
        here = proc.get("hostname") == platform.node()
        where = f"ptsdk pid {proc.get('pid')} on {'this host' if here else proc.get('hostname') or 'another host'}"
        advice = "wait for it to end or stop it first" if here else "ptsdk cannot tell from here whether it still is"
        raise PtsdkError(f"{label}: the run is still running ({where}); {advice}")
    if previous["backend"] != backend.name:
        raise PtsdkError(f"{label}: the run was made with backend {previous['backend']}, not {backend.name}")
    changes = _changes(rd.job().model_dump(mode="json"), job.model_dump(mode="json"))  # both validated alike
    if changes:
        raise PtsdkError(
            f"{label}: the job given is not the one the run was started with; resume without a job file "
            "(the run's own job is in its manifest), or start a new run",
            lines=changes[:20],
        )
    return previous


def _changes(before: Any, after: Any, where: str = "") -> list[str]:
    """`field.path: old -> new` for each difference between two job dumps."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            out += _changes(before.get(key), after.get(key), f"{where}.{key}" if where else str(key))
        return out
    return [] if before == after else [f"{where or '(job)'}: {before!r} in the run, {after!r} given"]


def _attempts(previous: dict[str, Any], status: str) -> list[dict[str, Any]]:
    """The attempts recorded so far; the last one with the status a reader sees now (`lost` for a dead
    ptsdk's `running`). A manifest from before attempts were recorded counts as one attempt."""
    attempts = [dict(a) for a in previous.get("attempts") or [] if isinstance(a, dict)]
    if not attempts:
        keys = ("started_at", "ended_at", "exit_code", "wall_time_s")
        attempts = [{**{k: previous.get(k) for k in keys}, "resumed_from_step": None}]
    attempts[-1]["status"] = status
    return attempts


def recorded_launcher(manifest: dict[str, Any]) -> RunLauncher | None:
    """The launcher a run was started with (its manifest's ``cluster``), with the same options; None: local."""
    from ptsdk.plugins.manager import get_launcher

    cluster = manifest.get("cluster")
    if not isinstance(cluster, dict) or not isinstance(cluster.get("launcher"), str):
        return None
    options = cluster.get("options")
    given = {str(k): str(v) for k, v in options.items()} if isinstance(options, dict) else {}
    return get_launcher(cluster["launcher"])(given)
