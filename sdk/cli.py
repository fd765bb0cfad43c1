"""The `ptsdk` command. Starts fast: no framework, torch or rich import at module level."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from ptsdk import __version__
from ptsdk.errors import EXIT_BAD_INPUT, PtsdkError

if TYPE_CHECKING:
    from ptsdk.api import RunInfo
    from ptsdk.plugins.backend import Backend

JOB = click.Path(dir_okay=False, path_type=Path)


def _backend(name: str) -> Backend:
    from ptsdk.plugins.manager import get_backend

    return get_backend(name)()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ptsdk")
def cli() -> None:
    """Write a post-training job once; run it on TRL, Axolotl, vERL or OpenRLHF."""


@cli.command()
@click.argument("job", type=JOB)
@click.option("--backend", "-b", help="Also check that this backend can run the job.")
def validate(job: Path, backend: str | None) -> None:
    """Check a job file (and, with --backend, that the backend supports it)."""
    from ptsdk import api

    checked = api.validate(job, backend)
    _warn(checked.warnings)
    loaded, m = checked.job, checked.job.method
    click.echo(
        f"{job}: valid {m.name} job, {loaded.adapter.type}, {loaded.distributed.world_size} process(es), "
        f"gradient accumulation {loaded.gradient_accumulation_steps}"
    )
    if backend is not None:
        others = ", ".join(b for b in checked.accepted_by if b != backend) or "none"
        click.echo(f"backend {backend}: supported (also accepted by: {others})")
    else:
        from ptsdk.plugins.manager import get_backends

        total = len(get_backends())
        accepted = ", ".join(checked.accepted_by) or "none"
        click.echo(f"accepted by {len(checked.accepted_by)} of {total} backends: {accepted}")
        if len(checked.accepted_by) < total:
            click.echo(f"why not the others: ptsdk matrix --job {job}")


def _warn(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)


@cli.command()
@click.option("--backend", "-b", "only", multiple=True, help="Show only these backends.")
@click.option(
    "--kind",
    type=click.Choice(
        ["method", "loss", "adapter", "strategy", "topology", "device", "parallel", "reward", "rollout", "feature"]
    ),
)
@click.option("--method", "-m", help="Rows for one method and its loss variants.")
@click.option(
    "--verified",
    type=click.Choice(["trained", "validated", "declared"]),
    help="Rows where some backend is at this level.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table", show_default=True)
@click.option("--job", "job_path", type=JOB, help="Rows this job needs, and each backend's verdict on the whole job.")
def matrix(
    only: tuple[str, ...], kind: str | None, method: str | None, verified: str | None, fmt: str, job_path: Path | None
) -> None:
    """What each backend can do, and how that is known."""
    from ptsdk.matrix.render import build_rows, print_table, to_json, to_markdown
    from ptsdk.plugins.manager import get_backends

    backends = get_backends()
    unknown = [b for b in only if b not in backends]
    if unknown:
        raise PtsdkError(f"--backend {unknown[0]}: no such backend; installed: {', '.join(sorted(backends))}")
    if only:
        backends = {b: backends[b] for b in only}
    keys, verdicts = None, None
    if job_path is not None:
        from ptsdk.matrix.check import feasibility, requirements_of
        from ptsdk.spec import load_job

        job = load_job(job_path, check_files=False)
        keys = {r.key for r in requirements_of(job)}
        verdicts = {b: r.reasons() for b, r in feasibility(job, backends).items()}
    rows = build_rows(backends, kind=kind, method=method, verified=verified, only_keys=keys)
    if fmt == "json":
        data = json.loads(to_json(backends, rows))
        if verdicts is not None:
            data["job"] = {
                "path": str(job_path),
                "verdicts": {b: {"can_run": not r, "reasons": r} for b, r in verdicts.items()},
            }
        click.echo(json.dumps(data, indent=2))
    elif fmt == "markdown":
        click.echo(to_markdown(backends, rows))
    else:
        print_table(backends, rows)
    if verdicts is not None and fmt != "json":
        for b, reasons in verdicts.items():
            click.echo(f"{b}: " + ("can run this job" if not reasons else "cannot: " + "; ".join(reasons)))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def backends(fmt: str) -> None:
    """Installed backends, their framework version, where it lives and which package supplied the backend."""
    from ptsdk import api

    rows = api.backends()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from ptsdk.console import console as make_console
    from rich.table import Table

    table = Table(title="ptsdk backends", title_justify="left")
    for col in ("backend", "framework", "version", "translates", "status", "where", "from"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["backend"],
            r["framework"],
            r["version"] or "-",
            "yes" if r["translates"] else "not yet",
            r["status"],
            f"{r['where']} ({r['source']})" if r["where"] else r["source"],
            r["from"],
        )
    console = make_console()
    console.print(table)
    for r in rows:
        if r["status"] == "missing":
            console.print(f"[yellow]{r['backend']}[/]: get it with: {r['how_to_get']}", highlight=False)


@cli.command()
def schema() -> None:
    """JSON Schema of the job spec."""
    from ptsdk.spec import Job

    click.echo(json.dumps(Job.model_json_schema(), indent=2))


@cli.command()
@click.argument("job", type=JOB)
@click.option("--backend", "-b", required=True, help="Backend to translate for.")
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the native files, command.sh and NOTES.txt here.",
)
@click.option(
    "--no-native-check", is_flag=True, help="Skip the framework's own validator (it runs in the backend's environment)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole plan as JSON.")
@click.option("--diff", "other", help="Show this backend's effective settings side by side with another's.")
def translate(
    job: Path, backend: str, out: Path | None, no_native_check: bool, as_json: bool, other: str | None
) -> None:
    """Show the job in a backend's own terms: native config, command, translation notes."""
    from ptsdk import api
    from ptsdk.pipeline import write_translation

    if other is not None:
        from ptsdk.compare import parity

        mine = api.translate(job, backend, native_check=False)
        theirs = api.translate(job, other, native_check=False)
        _warn(mine.warnings)
        rows = parity({backend: mine.effective, other: theirs.effective})
        width = max(len(r.key) for r in rows)
        wa, wc = (max(len(name), *(len(str(r.values.get(name))) for r in rows)) for name in (backend, other))
        click.echo(f"{'setting':<{width}}  {backend:<{wa}}  {other:<{wc}}")
        for r in rows:
            mark = f"  <- {r.verdict}" if r.verdict else ""
            a, c = (str(r.values.get(x)) for x in (backend, other))
            click.echo(f"{r.key:<{width}}  {a:<{wa}}  {c:<{wc}}{mark}".rstrip())
        unexplained = [r.key for r in rows if r.unexplained]
        if unexplained:
            click.echo(f"unexplained differences: {', '.join(unexplained)}", err=True)
            sys.exit(1)
        return
    t = api.translate(job, backend, native_check=not no_native_check)
    _warn(t.warnings)
    if out is not None:
        write_translation(t.plan, out, _backend(backend).env)
    if as_json:
        click.echo(t.plan.to_json())
        return
    click.echo(f"# {t.native_config or 'native arguments'}")
    click.echo(t.native_text, nl=False)
    click.echo("\n# command")
    click.echo(t.command.split("\n", 4)[-1], nl=False)
    if t.notes:
        click.echo("\n# translation notes")
        for note in t.notes:
            click.echo(f"- {note}")
    framework = _backend(backend).framework
    click.echo(f"\n# native check: {'skipped' if no_native_check else f'passed ({framework} accepted the config)'}")
    if out is not None:
        click.echo(f"# written to {out}")


@cli.command("import")
@click.argument("native", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "backend", required=True, help="The framework the config is written for (a backend name).")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the job here (a new file).")
def import_(native: Path, backend: str, out: Path | None) -> None:
    """Read a framework's own config (YAML, Hydra overrides or a launch command) into a ptsdk job.

    Every setting that maps only approximately, or lands in backend_options, is listed as a note (on
    stderr, and at the top of the written job)."""
    import yaml
    from ptsdk.spec import validate_job

    if not native.is_file():
        raise PtsdkError(f"{native}: no such file")
    if out is not None and out.exists():
        raise PtsdkError(f"--out {out}: exists; choose a new file")
    result = _backend(backend).import_native(native)
    validate_job(result.job, source=f"{native} (imported from {backend})")
    header = [f"# Imported by ptsdk {__version__} from {native} ({backend})."]
    header += [f"# {note}" for note in result.notes]
    text = "\n".join(header) + "\n" + yaml.safe_dump(result.job, sort_keys=False)
    for note in result.notes:
        click.echo(f"- {note}", err=True)
    if out is None:
        click.echo(text, nl=False)
        return
    from ptsdk.rundir import write_new_file

    write_new_file(out, text)  # all or nothing, and never over a file that appeared meanwhile
    click.echo(f"wrote {out} ({len(result.notes)} note(s))", err=True)


@cli.command()
@click.argument("job", type=JOB, required=False)
@click.option("--backend", "-b", help="Backend to run on.")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (default: output.dir/NAME-BACKEND-TIME).",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Continue an interrupted run from its last checkpoint.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line (the log is in logs/backend.log).")
@click.option("--verbose", "-v", is_flag=True, help="Stream the framework's own output instead of the progress view.")
@click.option("--launcher", "-L", help="Where the run executes: local (default), slurm, or a plugin's launcher.")
@click.option(
    "--launcher-option",
    "launcher_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option of the launcher (repeat), e.g. qos=high, gres=gpu:8.",
)
@click.option("--partition", help="Slurm partition (--launcher-option partition=P).")
@click.option("--time", "time_limit", help="Scheduler time limit, e.g. 2:00:00 (--launcher-option time=T).")
@click.option("--account", help="Scheduler account (--launcher-option account=A).")
def run(
    job: Path | None,
    backend: str | None,
    run_dir: Path | None,
    resume_dir: Path | None,
    quiet: bool,
    verbose: bool,
    launcher: str | None,
    launcher_options: tuple[str, ...],
    partition: str | None,
    time_limit: str | None,
    account: str | None,
) -> None:
    """Run a job on a backend; everything lands in one run directory.

    Shows live progress (step / total, ETA, loss, reward, learning rate, tokens/s) read from the framework's
    metrics as they arrive: a bar on a terminal, a plain line every few steps elsewhere. The framework's own
    output goes to RUN/logs/backend.log (live with -v); a failed run shows the log's last relevant lines.

    With --launcher slurm the run is submitted with sbatch, followed until it ends and cancelled with Ctrl-C."""
    from ptsdk import warm

    echo, view = _streams(quiet, verbose)
    warm_for = backend if job is not None and resume_dir is None and launcher in (None, "local") else None
    with warm.warming(warm_for, unbuffered=verbose):  # the framework's interpreter starts while ptsdk checks the job
        from ptsdk import api
        from ptsdk.plugins.launcher import parse_options

        options = parse_options(launcher_options)
        for key, value in (("partition", partition), ("time", time_limit), ("account", account)):
            if value is not None:
                if key in options:
                    raise PtsdkError(f"--{key} and --launcher-option {key}: give it once")
                options[key] = value
        if options and launcher is None:
            raise PtsdkError(f"--{next(iter(options))}: name the launcher it is for (--launcher slurm)")
        if resume_dir is not None:
            info = api.resume(
                resume_dir, job, backend=backend, echo=echo, view=view, launcher=launcher, launcher_options=options
            )
        else:
            if job is None or backend is None:
                raise PtsdkError("ptsdk run needs JOB and --backend (or --resume RUN_DIR)")
            info = api.run(job, backend, run_dir, echo=echo, view=view, launcher=launcher, launcher_options=options)
        _summary(info)
        if info.exit_code != 0:
            sys.exit(1)


def _streams(quiet: bool, verbose: bool) -> tuple[Any, Any]:
    """(echo, view): the framework's raw output with -v, else the live progress view; neither with -q."""
    if quiet and verbose:
        raise PtsdkError("--quiet and --verbose: choose one")
    if quiet:
        return None, None
    return (sys.stderr, None) if verbose else (None, sys.stderr)


def _summary(info: RunInfo) -> None:
    """The line printed after each run: compare's run summary (the report's `summary` row), in words."""
    from ptsdk.compare import summarize

    s = summarize(info.run)
    parts = [s.status + (f" in {s.wall_time_s:.1f}s" if s.wall_time_s is not None else ""), f"{s.steps} logged steps"]
    if s.first_loss is not None and s.final_loss is not None:
        parts.append(f"loss {s.first_loss:.4f} -> {s.final_loss:.4f}")
    if s.final_reward is not None:
        parts.append(f"reward {s.final_reward:.3f}")
    if s.tokens_seen:
        parts.append(f"{s.tokens_seen} tokens")
    click.echo(f"run {' · '.join(parts)}\nrun directory: {s.run_dir}", err=True)
    if info.manifest.get("rank_zero_elsewhere"):
        click.echo(f"note: {info.manifest['rank_zero_elsewhere']}", err=True)


@cli.command()
@click.argument("job", type=JOB, required=False)
@click.option("--backends", "names", help="Comma-separated backends to run the job on, e.g. trl,axolotl.")
@click.option(
    "--runs",
    "run_dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Compare finished run directories instead (repeat the option).",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder (default: output.dir/compare-NAME-TIME).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only each run's summary line.")
@click.option("--verbose", "-v", is_flag=True, help="Stream the frameworks' own output instead of the progress view.")
def compare(
    job: Path | None, names: str | None, run_dirs: tuple[Path, ...], out: Path | None, quiet: bool, verbose: bool
) -> None:
    """Run one job on several backends (or read finished runs) and write a parity-first report."""
    from ptsdk import api

    if run_dirs and (job is not None or names):
        raise PtsdkError("use either JOB --backends ... or --runs DIR ..., not both")
    if not run_dirs:
        if job is None or not names:
            raise PtsdkError("ptsdk compare needs JOB --backends A,B (or --runs DIR DIR)")
        if len([n for n in names.split(",") if n.strip()]) < 2:
            raise PtsdkError("--backends: name at least two backends to compare")
    backend_names = [n.strip() for n in (names or "").split(",") if n.strip()]
    echo, view = _streams(quiet, verbose)
    report = api.compare(
        job,
        backend_names,
        runs=run_dirs,
        out=out,
        echo=echo,
        view=view,
        on_run=_summary,
    )
    _print_report(report)
    click.echo(f"report: {Path(report['out']) / 'report.md'}", err=True)
    if any(s["status"] != "succeeded" for s in report["summary"]):
        sys.exit(1)
    if report["unexplained_differences"]:
        click.echo(
            f"unexplained differences: {', '.join(report['unexplained_differences'])} (no backend names a source)",
            err=True,
        )
        sys.exit(1)


@cli.command()
@click.option(
    "--method", "-m", required=True, help="sft, dpo, ipo, orpo, simpo, cpo, kto, grpo, ppo, rloo, reinforce_pp."
)
@click.option("--model", required=True, help="Local model folder or hub id.")
@click.option("--data", "data", required=True, help="Training data: a local .jsonl/.json/.parquet file or a hub id.")
@click.option("--reward", help="Online RL: the reward function, file.py:function.")
@click.option("--device", type=click.Choice(["gpu", "cpu"]), help="Default: gpu when one is visible, else cpu.")
@click.option("--name", help="Job name (default: the file's stem).")
@click.option(
    "--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("job.yaml"), show_default=True
)
def new(
    method: str, model: str, data: str, reward: str | None, device: str | None, name: str | None, out: Path
) -> None:
    """Write a first job file for a method: commented, sensible defaults, checked before it is written."""
    from ptsdk.new import job_text, write_new_job

    write_new_job(out, job_text(method, model, data, out, reward=reward, device=device, name=name))
    click.echo(f"wrote {out}; next: ptsdk validate {out} --backend BACKEND   (ptsdk matrix --job {out})", err=True)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default="runs", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def runs(folder: Path, fmt: str) -> None:
    """List the runs in FOLDER (default: runs): job, backend, status, steps, last loss or reward, wall time."""
    from ptsdk.runs import list_runs

    rows = list_runs(folder)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        click.echo(f"no runs in {folder}", err=True)
        return
    from ptsdk.console import console as make_console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"runs in {escape(str(folder))}", title_justify="left")
    for col in ("run", "job", "method", "backend", "status", "steps", "last loss", "last reward", "wall", "started"):
        table.add_column(col, overflow="fold")
    colors = {
        "succeeded": "green",
        "failed": "red",
        "interrupted": "yellow",
        "cancelled": "yellow",
        "lost": "yellow",
        "running": "cyan",
    }
    for r in rows:
        status = f"[{colors.get(r.status, 'white')}]{r.status}[/]"
        table.add_row(
            escape(Path(r.run_dir).name),
            escape(r.job),
            r.method,
            r.backend,
            status,
            str(r.steps),
            f"{r.last_loss:.4f}" if r.last_loss is not None else "-",
            f"{r.last_reward:.3f}" if r.last_reward is not None else "-",
            f"{r.wall_time_s:.1f}s" if r.wall_time_s is not None else "-",
            (r.started_at or "-").replace("T", " ")[:19],
        )
    make_console().print(table)
    for r in rows:
        if r.problem:
            click.echo(f"{r.run_dir}: {r.problem}", err=True)


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the loss/reward curves (default: RUN/curves.png).",
)
@click.option("--no-png", is_flag=True, help="Do not draw the curves.")
def show(run_dir: Path, fmt: str, png: Path | None, no_png: bool) -> None:
    """Summarize one run and draw its loss and reward curves as a PNG."""
    from ptsdk.compare import load_run
    from ptsdk.rundir import fs_error
    from ptsdk.runs import plot_curves, show_run

    run = load_run(run_dir, option="RUN")
    info = show_run(run)
    if not no_png and info["steps"]:
        target = png or run_dir / "curves.png"
        try:
            plot_curves(run, target)
            info["png"] = str(target)
        except OSError as exc:
            raise fs_error("--png", target, exc, "choose a writable place with --png, or pass --no-png") from None
    if fmt == "json":
        click.echo(json.dumps(info, indent=2, default=str))
        return
    s = info["summary"]
    lines = [
        f"run        {info['run_dir']}",
        f"job        {info['job']} ({info['method']}) on {info['backend']}",
        f"status     {info['status']}" + (f" (exit {info['exit_code']})" if info["exit_code"] else ""),
        f"started    {info['started_at'] or '-'}   ended {info['ended_at'] or '-'}   attempts {info['attempts']}",
        f"steps      {info['steps']}" + (f"   wall {info['wall_time_s']:.1f}s" if info["wall_time_s"] else ""),
    ]
    if s["first_loss"] is not None:
        lines.append(f"loss       {s['first_loss']:.4f} -> {s['final_loss']:.4f} (best {s['best_loss']:.4f})")
    if s["final_reward"] is not None:
        lines.append(f"reward     {s['final_reward']:.4f} (last step)")
    if s["tokens_seen"]:
        rate = f", {s['tokens_per_s']:,.0f} tokens/s" if s["tokens_per_s"] else ""
        lines.append(f"tokens     {s['tokens_seen']:,}{rate}")
    lines.append(f"model      {info['model'] or '- (none saved)'}")
    lines.append(f"log        {info['log']}")
    if info.get("png"):
        lines.append(f"curves     {info['png']}")
    for problem in info["problems"]:
        lines.append(f"problem    {problem}")
    if info["log_tail"]:
        lines.append("end of the log:")
        lines += [f"  {line}" for line in info["log_tail"]]
    click.echo("\n".join(lines))


def _print_report(report: dict[str, Any]) -> None:
    from ptsdk.compare import ParityRow
    from ptsdk.console import console as make_console
    from rich.markup import escape
    from rich.table import Table

    console = make_console()
    table = Table(title="parity: what each framework will really use", title_justify="left")
    table.add_column("setting")
    for b in report["backends"]:
        table.add_column(b)
    table.add_column("")
    for row in report["parity"]:
        verdict = escape(ParityRow.from_report(row).verdict)
        flag = f"[red]{verdict}[/]" if row["unexplained"] else (f"[yellow]{verdict}[/]" if verdict else "")
        table.add_row(row["key"], *(str(row["values"].get(b)) for b in report["backends"]), flag)
    console.print(table)
    results = Table(title="results", title_justify="left")
    for col in (
        "backend",
        "status",
        "steps",
        "tokens",
        "final loss",
        "best loss",
        "tokens/s",
        "wall s",
        "peak RSS MiB",
    ):
        results.add_column(col)
    for s in report["summary"]:
        results.add_row(
            s["backend"],
            s["status"],
            str(s["steps"]),
            str(s["tokens_seen"]),
            *(
                f"{v:.4g}" if v is not None else "-"
                for v in (s["final_loss"], s["best_loss"], s["tokens_per_s"], s["wall_time_s"], s["peak_rss_mib"])
            ),
        )
    console.print(results)
    if report["max_abs_loss_diff"] is not None:
        console.print(
            f"largest loss difference at equal {report['aligned_by'].replace('_', ' ')}: "
            f"{report['max_abs_loss_diff']:.3g} ({report['max_rel_loss_diff']:.3g} relative; "
            f"{len(report['aligned_loss'])} aligned points)"
        )
    first = report.get("first_divergence")
    if first is not None:
        where = f"step {first['step']}" if first["step"] is not None else f"{first['tokens_seen']} tokens seen"
        console.print(f"[yellow]the losses first part at {where}: {escape(str(first['loss']))}[/]")
    rl = report.get("rollouts")
    if rl is not None and "compared" in rl:
        console.print(f"rollouts: the same prompts, completions and rewards in {rl['compared']} logged reward calls")
    elif rl is not None:
        values = "; ".join(f"{b}: {v!r}" for b, v in rl["values"].items())
        console.print(
            f"[yellow]rollouts first part at step {rl['step']} (reward call {rl['call']}, {rl['reward']}): "
            f"{rl['what']} #{rl['index']}: {escape(values)}[/]"
        )


@cli.group()
def env() -> None:
    """Managed per-backend environments."""


@env.command("create")
@click.argument("backend")
@click.option("--force", is_flag=True, help="Rebuild even if ready.")
def env_create(backend: str, force: bool) -> None:
    """Build the backend's environment from ptsdk's pinned, known-good requirements."""
    from ptsdk.envbuild import create_env
    from ptsdk.plugins.manager import get_backend

    create_env(get_backend(backend), force=force, say=lambda s: click.echo(s, err=True))


@env.command("list")
def env_list() -> None:
    """Managed environments and whether they are ready."""
    from ptsdk.envbuild import list_envs

    envs = list_envs()
    if not envs:
        click.echo("no managed environments (ptsdk env create BACKEND)")
    for e in envs:
        click.echo(f"{e['backend']:<10} {'ready' if e['ready'] else 'incomplete'}  {e['path']}")


@env.command("python")
@click.argument("backend")
def env_python(backend: str) -> None:
    """Print the interpreter a backend runs in (for scripts: $(ptsdk env python trl) x.py)."""
    from ptsdk.plugins.manager import get_backend

    cls = get_backend(backend)
    click.echo(cls().env.require(cls.install_hint, managed=cls.schema_source is None))


@env.command("remove")
@click.argument("backend")
def env_remove(backend: str) -> None:
    """Delete a managed environment."""
    from ptsdk.envbuild import remove_env

    click.echo(f"removed {remove_env(backend)}")


@cli.group("export")
def export_group() -> None:
    """Write a job as another system's task file."""


@export_group.command("skypilot")
@click.argument("job", type=JOB)
@click.option("--backend", "-b", required=True, help="Backend the nodes run the job on.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the task here (a new file).")
@click.option("--nodes", type=int, help="Nodes (default: the job's distributed.nodes).")
@click.option("--accelerators", help="GPU type, TYPE:COUNT, or several (any of them): H100,A100-80GB.")
@click.option("--cloud", help="Cloud to run on (default: SkyPilot chooses).")
@click.option("--name", help="Task name (default: the job's name).")
@click.option("--ptsdk", "ptsdk_source", help="ptsdk for the nodes: a checkout folder or a pip requirement.")
def export_skypilot_command(
    job: Path,
    backend: str,
    out: Path | None,
    nodes: int | None,
    accelerators: str | None,
    cloud: str | None,
    name: str | None,
    ptsdk_source: str | None,
) -> None:
    """A SkyPilot task YAML that runs the job with `ptsdk run` on every node (sky launch FILE)."""
    from ptsdk.skypilot import export_skypilot

    text = export_skypilot(
        job,
        backend,
        nodes=nodes,
        accelerators=accelerators,
        cloud=cloud,
        name=name,
        ptsdk_source=ptsdk_source,
        say=lambda s: click.echo(s, err=True),
    )
    if out is None:
        click.echo(text, nl=False)
        return
    from ptsdk.rundir import write_new_file

    write_new_file(out, text)  # all or nothing, and never over a file that appeared meanwhile
    click.echo(f"wrote {out}; launch it with: sky launch {out}", err=True)


def entry() -> None:
    """The `ptsdk` command (console script, ``python -m ptsdk``): :func:`main`, then a quick exit.

    A finished command has nothing left to do but free memory: exit handlers run and the standard streams are
    flushed, then the process ends without tearing down every module and object one by one (about 40 ms of a
    `ptsdk run`'s own time, bench/bench_overhead.py). While other threads still run, or when a stream cannot
    be flushed, it exits the ordinary way."""
    from ptsdk import warm

    warm.enable()
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    _exit_now(code)


def _exit_now(code: object) -> None:
    import atexit
    import os
    import threading

    status = code if isinstance(code, int) else 0 if code is None else 1
    if not isinstance(code, int) and code is not None:
        print(code, file=sys.stderr)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if threading.active_count() > 1 or run_exitfuncs is None:
        sys.exit(status)
    run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: the process started with that descriptor closed
                stream.flush()
    except (OSError, ValueError):  # a closed pipe: Python's own exit reports it
        sys.exit(status)
    os._exit(status)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="ptsdk", standalone_mode=False)
    except PtsdkError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except ValueError as exc:
        if "null byte" not in str(exc):
            raise
        click.echo("error: a path holds a NUL byte; no file can be named so", err=True)  # os.stat's refusal
        sys.exit(EXIT_BAD_INPUT)
    except OSError as exc:  # the machine refused a file operation ptsdk did not foresee: still a message
        from ptsdk.rundir import os_error_words

        click.echo(f"error: {os_error_words(exc)}; check the path and its permissions", err=True)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(0)
