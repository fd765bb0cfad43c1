"""ptsdk's Python API: the path the `ptsdk` command takes, as functions that return data.

    from ptsdk import api

    job = api.load("examples/jobs/sft_lora.yaml")
    print(api.validate(job, backend="trl").accepted_by)
    plan = api.translate(job, "trl")          # native config, command, notes, effective settings
    run = api.run(job, "trl")                 # trains; run.status, run.metrics, run.model_path

(`ptsdk.matrix`, `ptsdk.compare` and `ptsdk.backends` are packages of their own: the functions live here.)

A job is a :class:`ptsdk.spec.Job` (built in code from the spec's models, or loaded from a file) or the
path of a job file. Relative paths in a job built in code are relative to the working directory; in a
file, to the file's folder. Every error is a :class:`ptsdk.errors.PtsdkError` whose ``lines`` are the
``field.path: problem`` lines the CLI prints (SpecError for the job itself, UnsupportedError for what a
backend cannot run, RunFailed never: a failed run is a :class:`RunInfo` with status ``failed``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ptsdk.errors import PtsdkError
from ptsdk.spec import Job, load_job

if TYPE_CHECKING:
    from ptsdk.compare import Run
    from ptsdk.metrics import MetricRecord
    from ptsdk.plugins.backend import Backend, Plan
    from ptsdk.plugins.launcher import RunLauncher

JobLike = Job | str | os.PathLike[str]


@dataclass(frozen=True)
class Validation:
    """A valid job and, with a backend, the backends that can run all of it."""

    job: Job
    backend: str | None
    accepted_by: list[str]
    #: The preflight's notes and warnings (`note: ...`, `warning: ...`), e.g. a hub id not reachable from here.
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Translation:
    """A job in a backend's own terms."""

    backend: str
    #: The native config file's name (None for frameworks configured by command-line flags only).
    native_config: str | None
    native_text: str
    #: The command script `translate --out` writes (command.sh).
    command: str
    notes: list[str]
    #: What the framework will really use, in ptsdk's units (the parity table's rows).
    effective: dict[str, Any]
    #: Whether the framework's own validator accepted it (False when skipped).
    native_checked: bool
    plan: Plan = field(repr=False, compare=False)
    #: The preflight's notes and warnings, as in :class:`Validation`.
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunInfo:
    """A run directory read back: what `ptsdk run` leaves."""

    run_dir: Path
    backend: str
    status: str  # succeeded | failed | interrupted | running | lost
    exit_code: int | None
    manifest: dict[str, Any] = field(repr=False)
    metrics: list[MetricRecord] = field(repr=False)
    #: The trained model (or adapter) folder; None when the run saved none.
    model_path: Path | None
    #: The run as compare reads it (ptsdk.compare.Run): the CLI's summary line and reports are made from it.
    run: Run = field(repr=False, compare=False)

    @property
    def train(self) -> list[MetricRecord]:
        return [m for m in self.metrics if m.kind == "train"]


def load(path: str | os.PathLike[str]) -> Job:
    """A job file (YAML or JSON), validated and resolved."""
    return load_job(Path(path))


def _job(job: JobLike) -> tuple[Job, str, Path]:
    """(a private copy of the job made ready to run, how errors name it, the base of its relative paths)."""
    from ptsdk.spec.load import prepare_job

    if isinstance(job, Job):
        copy = job.model_copy(deep=True)
        return prepare_job(copy, Path.cwd()), "job", Path.cwd()
    if isinstance(job, (str, os.PathLike)):
        path = Path(job)
        return load_job(path), str(path), path.resolve().parent
    raise TypeError(f"a job is a ptsdk.spec.Job or a job file's path, not {type(job).__name__}")


def validate(
    job: JobLike, backend: str | None = None, *, launching: bool = False, launcher: RunLauncher | None = None
) -> Validation:
    """The job checked as `ptsdk validate` checks it: the spec, the data and model preflight and, with a
    backend, everything that backend needs (raises UnsupportedError naming who can). `launching` also
    refuses a hub model or dataset that cannot be fetched from here (run and compare do). With a `launcher`,
    the job as that launcher runs it (RunLauncher.adapt_job: Slurm sets a multi-node job's rendezvous host)."""
    from ptsdk.pipeline import check_job

    loaded, source, base = _job(job)
    if launcher is not None:
        loaded = launcher.adapt_job(loaded)
    result, warnings = check_job(loaded, backend, source=source, base=base, launching=launching)
    accepted = result.accepted_by if result is not None else _accepted(loaded)
    return Validation(loaded, backend, list(accepted), warnings)


def _accepted(job: Job) -> list[str]:
    from ptsdk.matrix.check import feasibility
    from ptsdk.plugins.manager import get_backends

    return sorted(name for name, r in feasibility(job, get_backends()).items() if r.ok)


def translate(job: JobLike, backend: str, *, native_check: bool = True) -> Translation:
    """The native config, command and notes (`ptsdk translate`), checked by the framework's own validator
    unless native_check=False (it runs in the backend's environment)."""
    from ptsdk import pipeline
    from ptsdk.plugins.manager import get_backend

    checked = validate(job, backend)
    b = get_backend(backend)()
    plan = b.translate(checked.job)
    if native_check:
        pipeline.native_check(b, plan)
    return Translation(
        backend=backend,
        native_config=plan.native_config,
        native_text=plan.native_text(),
        command=pipeline.command_script(plan, b.env),
        notes=[str(n) for n in plan.notes],
        effective=dict(plan.effective),
        native_checked=native_check,
        plan=plan,
        warnings=checked.warnings,
    )


def run(
    job: JobLike,
    backend: str,
    run_dir: str | os.PathLike[str] | None = None,
    *,
    echo: TextIO | None = None,
    view: TextIO | None = None,
    launcher: str | None = None,
    launcher_options: Mapping[str, str] | None = None,
) -> RunInfo:
    """Run the job (`ptsdk run`): checks, translation and native check first, then the framework, into a
    new run directory (default output.dir/NAME-BACKEND-TIME). `echo` streams the framework's output (e.g.
    sys.stderr); it always lands in logs/backend.log. `view` shows live progress there (a bar on a terminal,
    plain lines elsewhere) and the log's end if the run fails. `launcher` names where it runs (``local``, the
    default; ``slurm``; a plugin's), with its `launcher_options`. A failed run is returned, not raised."""
    from ptsdk import pipeline
    from ptsdk.plugins.manager import get_backend

    where = make_launcher(launcher, launcher_options)
    checked = validate(job, backend, launching=True, launcher=where)
    for line in checked.warnings:
        print(line, file=view or echo or sys.stderr)
    b = get_backend(backend)()
    plan = b.translate(checked.job)
    target = Path(run_dir) if run_dir is not None else None
    result = pipeline.run(checked.job, b, plan, target, echo=echo, view=view, launcher=where)
    return replace(open_run(result.run_dir), exit_code=result.exit_code)


def make_launcher(name: str | None, options: Mapping[str, str] | None = None) -> RunLauncher | None:
    """The launcher called `name` with `options` (None: none named, the run's default); a PtsdkError for an
    unknown launcher or option, or options without a launcher."""
    from ptsdk.plugins.manager import get_launcher

    if name is None:
        if options:
            raise PtsdkError(f"--launcher-option {next(iter(options))}: name the launcher it is for (--launcher NAME)")
        return None
    return get_launcher(name)(options or {})


def resume(
    run_dir: str | os.PathLike[str],
    job: JobLike | None = None,
    *,
    backend: str | None = None,
    echo: TextIO | None = None,
    view: TextIO | None = None,
    launcher: str | None = None,
    launcher_options: Mapping[str, str] | None = None,
) -> RunInfo:
    """Continue an interrupted run from its last checkpoint (`ptsdk run --resume`). A `job` or `backend` given
    must be the run's own (a changed job is refused field by field), else the run's recorded job is used. It
    runs where it ran before (its manifest's launcher and options) unless `launcher` says otherwise."""
    from ptsdk import pipeline
    from ptsdk.plugins.manager import get_backend
    from ptsdk.rundir import RunDir

    previous = RunDir(Path(run_dir), option="--resume", purpose="resumed")
    if backend is not None and backend != previous.backend:
        raise PtsdkError(f"--resume {run_dir}: the run was made with backend {previous.backend}, not {backend}")
    b = get_backend(previous.backend)()
    # The launcher named, else the one the run was started with: the recorded job is the job as it ran it.
    where = make_launcher(launcher, launcher_options) or pipeline.recorded_launcher(previous.read_manifest())
    if job is None:
        loaded = previous.job()
    else:
        checked = validate(job, previous.backend, launcher=where)
        for line in checked.warnings:
            print(line, file=view or echo or sys.stderr)
        loaded = checked.job
    result = pipeline.run(
        loaded, b, b.translate(loaded), Path(run_dir), resume=True, echo=echo, view=view, launcher=where
    )
    return replace(open_run(result.run_dir), exit_code=result.exit_code)


def open_run(run_dir: str | os.PathLike[str]) -> RunInfo:
    """A run directory read back (finished, failed, interrupted or still running)."""
    from ptsdk.compare import load_run

    return _info(load_run(Path(run_dir).resolve(), option="run_dir"))


def _info(r: Run) -> RunInfo:
    return RunInfo(
        run_dir=r.run_dir,
        backend=r.backend,
        status=r.dir.status,
        exit_code=r.manifest.get("exit_code"),
        manifest=r.manifest,
        metrics=list(r.metrics),
        model_path=r.dir.saved_model,
        run=r,
    )


def compare(
    job: JobLike | None = None,
    backends: Sequence[str] = (),
    *,
    runs: Iterable[str | os.PathLike[str]] = (),
    out: str | os.PathLike[str] | None = None,
    echo: TextIO | None = None,
    view: TextIO | None = None,
    on_run: Callable[[RunInfo], None] | None = None,
) -> dict[str, Any]:
    """`ptsdk compare`: run the job on each backend (every check and native validation before anything
    launches), or read finished `runs`; write report.md/report.json/plots into `out` and return the report
    (parity table, per-run summary, aligned losses). `on_run` is called with each run as it finishes."""
    from ptsdk import pipeline
    from ptsdk.compare import load_run, write_report
    from ptsdk.plugins.manager import get_backend
    from ptsdk.rundir import default_run_dir, require_new_dir

    run_dirs = [Path(d) for d in runs]
    if run_dirs and (job is not None or backends):
        raise PtsdkError("compare: give either a job and backends or finished runs, not both")
    if out is not None:
        require_new_dir(Path(out), "--out")
    if run_dirs:
        loaded_runs = [load_run(d, option="--runs") for d in run_dirs]
    else:
        names = list(backends)
        if job is None or len(names) < 2:
            raise PtsdkError("compare: name a job and at least two backends (or finished runs)")
        if len(set(names)) != len(names):
            raise PtsdkError(f"--backends: {', '.join(names)} names a backend twice")
        # One load and one data/model preflight for all backends; each backend's own verdict first.
        loaded, source, base = _job(job)
        pipeline.known_backend_options(loaded, source)
        for b in names:
            pipeline.check_backend(loaded, b, source)
        for line in pipeline.preflight_job(loaded, source, base, launching=True):
            print(line, file=view or echo or sys.stderr)
        checked = {b: loaded.model_copy(deep=True) for b in names}
        impls = {b: get_backend(b)() for b in names}
        plans = {b: impls[b].translate(checked[b]) for b in names}
        for b in names:
            pipeline.native_check(impls[b], plans[b])
        loaded_runs = []
        for b in names:
            result = pipeline.run(checked[b], impls[b], plans[b], native_checked=True, echo=echo, view=view)
            loaded_runs.append(load_run(result.run_dir.resolve()))
            if on_run is not None:
                on_run(replace(_info(loaded_runs[-1]), exit_code=result.exit_code))
    target = Path(out) if out is not None else None
    if target is None:
        first = loaded_runs[0]
        name = f"compare-{first.manifest['job'].get('name') or 'job'}"
        target = default_run_dir(first.run_dir.parent, name, "report")
    report = write_report(loaded_runs, target)
    report["out"] = str(target)
    return report


def matrix(*, kind: str | None = None, method: str | None = None, backend: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The capability matrix as rows: {kind, name, backends: {name: {verified, evidence, note} | None}}."""
    import json

    from ptsdk.matrix.render import build_rows, to_json
    from ptsdk.plugins.manager import get_backends

    found = get_backends()
    unknown = [b for b in backend if b not in found]
    if unknown:
        raise PtsdkError(f"--backend {unknown[0]}: no such backend; installed: {', '.join(sorted(found))}")
    chosen = {b: found[b] for b in backend} if backend else found
    rows = build_rows(chosen, kind=kind, method=method)
    data: list[dict[str, Any]] = json.loads(to_json(chosen, rows))["capabilities"]
    return data


def backends() -> list[dict[str, Any]]:
    """Installed backends as `ptsdk backends --format json` lists them: name (`backend`), framework, its
    version in the backend's environment, where that lives, status (ready, missing, stale, container), how
    to get it, and which package registered the backend."""
    from ptsdk.plugins.manager import get_registry

    registry = get_registry()
    rows: list[dict[str, Any]] = []
    for name, cls in registry.backends.items():
        origin = registry.origins[name]
        env = cls().env
        version = env.versions().get(cls.framework) if env.python else None
        where = env.python or (env.container.image if env.container else "")
        if env.container is not None:
            status = f"container ({env.container.runtime})"
        elif env.source == "managed" and _stale(cls):
            status = f"stale: pins changed, run ptsdk env create {name}"
        elif version:
            status = "ready"
        else:
            status = "missing"
        hint = (
            f"ptsdk env create {name}"
            if _has_environment(cls)
            else (cls.install_hint or f"set PTSDK_{name.upper()}_PYTHON")
        )
        rows.append(
            {
                "backend": name,
                "framework": cls.framework,
                "version": version,
                "source": env.source,
                "where": where,
                "status": status,
                "translates": cls.translates,
                "how_to_get": hint,
                "plugin": origin.plugin,
                "distribution": origin.distribution,
                "distribution_version": origin.distribution_version,
                "from": origin.source,
            }
        )
    return rows


def _has_environment(cls: type[Backend]) -> bool:
    """Whether `ptsdk env create` can build this backend's environment (it declares one)."""
    try:
        cls.environment()
    except PtsdkError:
        return False
    return True


def _stale(cls: type[Backend]) -> bool:
    """A managed environment built from another spec than the one the backend declares now."""
    from ptsdk.envbuild import is_stale

    try:
        return is_stale(cls)
    except PtsdkError:  # no declared environment: a managed one was built some other way
        return False
