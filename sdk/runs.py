"""Run directories listed and summarized: `ptsdk runs` and `ptsdk show`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptsdk.errors import PtsdkError
from ptsdk.rundir import RunDir

if TYPE_CHECKING:
    from ptsdk.compare import Run

#: Folders looked into below the one given (runs/NAME-BACKEND-TIME, and one level more for grouped runs).
MAX_DEPTH = 2
MAX_RUNS = 10_000


@dataclass
class RunRow:
    run_dir: str
    job: str
    method: str
    backend: str
    status: str
    steps: int
    last_loss: float | None
    last_reward: float | None
    wall_time_s: float | None
    started_at: str | None
    problem: str | None = None  # why the run directory could not be read

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_run_dirs(root: Path) -> list[Path]:
    """Run directories (folders with a manifest.json) at or below `root`, newest name last."""
    if not root.exists():
        raise PtsdkError(f"{root}: no such folder")
    if not root.is_dir():
        raise PtsdkError(f"{root}: not a folder; give the folder runs are in (default: runs)")
    found: list[Path] = []
    level = [root]
    for _ in range(MAX_DEPTH + 1):
        below: list[Path] = []
        for folder in level:
            if (folder / RunDir.MANIFEST).is_file():
                found.append(folder)
                continue
            try:
                below += sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            if len(found) + len(below) > MAX_RUNS:
                break
        level = below
    return sorted(found)[:MAX_RUNS]


def _finite(v: float | None) -> float | None:
    return v if v is None or math.isfinite(v) else None


def run_row(path: Path) -> RunRow:
    """One run's row; a damaged run directory is a row with its problem, not an error."""
    from ptsdk.compare import load_run

    try:
        run = load_run(path, option="runs")
    except PtsdkError as exc:
        return RunRow(str(path), "?", "?", "?", "unreadable", 0, None, None, None, None, problem=str(exc))
    return _row(run)


def _row(run: Run) -> RunRow:
    job = run.manifest.get("job") or {}
    train = run.train
    loss = next((m.loss for m in reversed(train) if m.loss is not None), None)
    reward = next((m.reward for m in reversed(train) if m.reward is not None), None)
    method = job["method"] if isinstance(job.get("method"), dict) else {}
    return RunRow(
        run_dir=str(run.run_dir),
        job=str(job.get("name") or "?"),
        method=str(method.get("name") or "?"),
        backend=run.backend,
        status=run.dir.status,
        steps=max((m.step for m in train), default=0),
        last_loss=_finite(loss),
        last_reward=_finite(reward),
        wall_time_s=run.manifest.get("wall_time_s"),
        started_at=run.manifest.get("started_at"),
    )


def list_runs(root: Path) -> list[RunRow]:
    rows = [run_row(p) for p in find_run_dirs(root)]
    return sorted(rows, key=lambda r: (r.started_at or "", r.run_dir))


def show_run(run: Run) -> dict[str, Any]:
    """One run summarized: its row, the job in short, the summary compare uses, the model, and for a run
    that did not succeed, the end of its log."""
    from ptsdk.compare import summarize
    from ptsdk.live import failure_excerpt

    row = _row(run)
    summary = asdict(summarize(run))
    m = run.manifest
    model = run.dir.saved_model
    out: dict[str, Any] = {
        **row.to_dict(),
        "summary": summary,
        "ended_at": m.get("ended_at"),
        "exit_code": m.get("exit_code"),
        "attempts": len(m.get("attempts") or []),
        "model": str(model) if model is not None else None,
        "command": str(run.dir.command_path),
        "log": str(run.dir.log_path),
        "notes": [*(m.get("notes") or []), *([m["rank_zero_elsewhere"]] if m.get("rank_zero_elsewhere") else [])],
        "problems": [p for p in (m.get("nonfinite"), m.get("metrics_error"), *(m.get("artifact_problems") or [])) if p],
        "log_tail": failure_excerpt(run.dir.log_path) if row.status != "succeeded" else [],
    }
    return out


def plot_curves(run: Run, png: Path) -> list[str]:
    """Loss (train and eval) and reward against the optimizer step, in one PNG; returns the panels drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {
        "loss": [(m.step, m.loss) for m in run.train if m.loss is not None and math.isfinite(m.loss)],
        "eval loss": [
            (m.step, m.loss) for m in run.metrics if m.kind == "eval" and m.loss is not None and math.isfinite(m.loss)
        ],
        "reward": [(m.step, m.reward) for m in run.train if m.reward is not None and math.isfinite(m.reward)],
    }
    panels = [("loss", ["loss", "eval loss"]), ("reward", ["reward"])]
    drawn = [(title, names) for title, names in panels if any(series[n] for n in names)]
    if not drawn:
        raise PtsdkError(f"{run.run_dir}: the run logged no loss or reward to plot")
    fig, axes = plt.subplots(1, len(drawn), figsize=(6 * len(drawn), 4), squeeze=False)
    for ax, (title, names) in zip(axes[0], drawn, strict=True):
        for name in names:
            if series[name]:
                ax.plot(*zip(*series[name], strict=True), marker="o", markersize=3, label=name)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{run.manifest.get('job', {}).get('name', 'job')} on {run.backend} ({run.dir.status})")
    fig.tight_layout()
    tmp = png.with_name(f".{png.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=100)
        tmp.replace(png)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return [title for title, _ in drawn]
