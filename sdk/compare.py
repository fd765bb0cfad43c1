"""Backend comparison: parity of effective settings first, then aligned metrics and a report.

The parity table compares what each framework will really use, as each backend reports it in
``Plan.effective`` (recorded in the run's manifest). A backend explains a value it did not take
from the job in ``Plan.effective["sources"]`` (for example "framework default"); a difference no
backend explains is flagged as unexplained.

It reads run directories (`ptsdk.rundir.RunDir`) and gives the one run summary that `ptsdk run`
prints too. The report's JSON Schema is `REPORT_SCHEMA`, beside this module.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ptsdk.metrics import MetricRecord
from ptsdk.plugins import runtime
from ptsdk.rundir import RunDir, require_new_dir, staged_dir

REPORT_SCHEMA = Path(__file__).with_name("report.schema.json")
#: Two backends' losses at the same step agree when they differ by at most PARITY_RTOL relative, or PARITY_ATOL
#: absolute: a loss that is zero by construction (GRPO's on-policy loss, about 1e-8) differs in rounding only.
PARITY_RTOL = 1e-4
PARITY_ATOL = 1e-6

PARITY_KEYS = (
    "global_batch_sequences",
    "global_batch_tokens",
    "tokenized_data_sha",
    "tokenized_rows",
    "micro_batch",
    "gradient_accumulation",
    "world_size",
    "learning_rate",
    "lr_scheduler",
    "warmup",
    "max_length",
    "truncation",
    "packing",
    "loss_mask",
    "chat_template_sha",
    "data_order",
    "data_order_sha",
    "start_adapter_sha",
    "seed",
    "precision",
    "optimizer",
)


@dataclass
class ParityRow:
    key: str
    values: dict[str, Any]
    differs: bool
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def unexplained(self) -> bool:
        return self.differs and not self.sources

    @property
    def verdict(self) -> str:
        """The one wording of a row's outcome: "" (same everywhere), "differs: trl: <source>; ..." or "UNEXPLAINED"."""
        if not self.differs:
            return ""
        if not self.sources:
            return "UNEXPLAINED"
        return "differs: " + "; ".join(f"{b}: {why}" for b, why in self.sources.items())

    @classmethod
    def from_report(cls, row: dict[str, Any]) -> ParityRow:
        """A row of report.json's `parity` back as a ParityRow."""
        return cls(row["key"], row["values"], row["differs"], row.get("sources", {}))


@dataclass
class RunSummary:
    backend: str
    run_dir: str
    status: str
    exit_code: int | None
    steps: int
    tokens_seen: int | None
    first_loss: float | None
    final_loss: float | None
    best_loss: float | None
    tokens_per_s: float | None
    wall_time_s: float | None
    peak_rss_mib: float | None
    final_reward: float | None


@dataclass
class Run:
    """A run directory read once: its checked manifest and its metric records."""

    dir: RunDir
    manifest: dict[str, Any]
    metrics: list[MetricRecord]

    @property
    def backend(self) -> str:
        return self.manifest["backend"]

    @property
    def run_dir(self) -> Path:
        return self.dir.path

    @property
    def train(self) -> list[MetricRecord]:
        return [m for m in self.metrics if m.kind == "train"]


def load_run(run_dir: Path | RunDir, *, option: str = "") -> Run:
    """Read a finished (or interrupted) run; a bad manifest or metrics file is a PtsdkError naming `option`.

    A run whose ptsdk died (status `lost`) or is still `running` has no metrics.jsonl, or an earlier
    attempt's: its metrics come from the framework's own log in the run directory, through its
    backend's parser (metrics.jsonl when that gives none)."""
    rd = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir, option=option, purpose="compared")
    manifest = rd.read_manifest()
    metrics = framework_metrics(rd) if rd.status in ("lost", "running") else []
    return Run(rd, manifest, metrics or rd.metrics())


def framework_metrics(rd: RunDir) -> list[MetricRecord]:
    """The run's metrics parsed again from the framework's log; none when its backend is not installed
    or the log cannot be read."""
    from ptsdk.plugins.manager import get_backends

    backend = get_backends().get(rd.backend)
    if backend is None:
        return []
    try:
        return list(backend().parse_metrics(rd.path))
    except Exception:  # a half-written log of a dead run: no metrics rather than no run
        return []


def parity(effective: dict[str, dict[str, Any]]) -> list[ParityRow]:
    """One row per setting: each backend's effective value, whether they differ, and why."""
    rows = []
    extra = {k for eff in effective.values() for k in eff} - set(PARITY_KEYS) - {"sources"}
    for key in [*PARITY_KEYS, *sorted(extra)]:
        values = {b: eff.get(key) for b, eff in effective.items()}
        if all(v is None for v in values.values()):
            continue
        differs = len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1
        sources = {b: eff["sources"][key] for b, eff in effective.items() if key in eff.get("sources", {})}
        rows.append(ParityRow(key, values, differs, sources if differs else {}))
    return rows


def measured_effective(run: Run) -> dict[str, Any]:
    """The planned effective settings plus what the run itself measured: the tokenized data's
    fingerprint (written by ptsdk's runner/plugin) and the real tokens in the first optimizer step."""
    effective = dict(run.manifest.get("effective", {}))
    fingerprint = run.dir.tokenized_data_path
    if fingerprint.exists():
        data = json.loads(fingerprint.read_text())
        effective["tokenized_data_sha"] = data.get("sha256")
        effective["tokenized_rows"] = data.get("rows")
    first = next((m for m in run.train if m.tokens_seen), None)
    if first is not None and first.step == 1:
        effective["global_batch_tokens"] = first.tokens_seen
    sources = dict(effective.get("sources", {}))
    for key, value, planned in (
        ("data_order_sha", _order_sha(run.run_dir / runtime.ORDER_LOG), "data_order"),
        ("start_adapter_sha", _adapter_sha(run.run_dir / runtime.START_ADAPTER_LOG), "adapter_init"),
    ):
        if value is not None:
            effective[key] = value
        elif key not in sources:
            sources[key] = f"not measured: {run.backend} does not apply ptsdk's {planned} (see {planned})"
    effective["sources"] = sources
    return effective


def _order_sha(path: Path) -> str | None:
    """The fingerprint of the rows' order a run read (ptsdk's order log): each epoch's indices, once, in order."""
    if not path.exists():
        return None
    epochs: dict[int, list[int]] = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            epochs.setdefault(int(record["epoch"]), list(record["indices"]))
        except (ValueError, KeyError, TypeError):
            return "unreadable"
    digest = hashlib.sha256(json.dumps(sorted(epochs.items())).encode()).hexdigest()[:16]
    return f"{digest} ({len(epochs)} epoch{'s' * (len(epochs) != 1)})"


def _adapter_sha(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        return str(json.loads(path.read_text())["sha256"])
    except (ValueError, KeyError, TypeError):
        return "unreadable"


def summarize(run: Run) -> RunSummary:
    """The one summary of a run: the report's `summary` rows and the line `ptsdk run` prints."""
    train = run.train
    losses = [m.loss for m in train if m.loss is not None and math.isfinite(m.loss)]
    tokens = next((m.tokens_seen for m in reversed(train) if m.tokens_seen), None)
    wall = next((m.wall_time_s for m in reversed(train) if m.wall_time_s), None)
    rewards = [m.reward for m in train if m.reward is not None]
    return RunSummary(
        backend=run.backend,
        run_dir=str(run.run_dir),
        status=run.dir.status,
        exit_code=run.manifest.get("exit_code"),
        steps=len(train),
        tokens_seen=tokens,
        first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
        best_loss=min(losses) if losses else None,
        tokens_per_s=tokens / wall if tokens and wall else None,
        wall_time_s=run.manifest.get("wall_time_s"),
        peak_rss_mib=run.manifest.get("peak_rss_mib"),
        final_reward=rewards[-1] if rewards else None,
    )


def aligned_losses(runs: list[Run]) -> list[dict[str, Any]]:
    """Loss of each run at the same number of tokens seen; by optimizer step when some run counts no
    tokens (OpenRLHF logs none), so every run still lines up."""
    logged = [[m for m in run.train if m.loss is not None] for run in runs]
    by_tokens = all(m.tokens_seen is not None for points in logged for m in points)
    by_backend: dict[str, dict[int, float]] = {}
    for run, points in zip(runs, logged, strict=True):
        by_backend[run.backend] = {(m.tokens_seen if by_tokens else m.step): m.loss for m in points}  # type: ignore[misc]
    common = set.intersection(*(set(p) for p in by_backend.values())) if by_backend else set()
    rows = []
    for key in sorted(common):
        losses = {b: p[key] for b, p in by_backend.items()}
        spread = max(losses.values()) - min(losses.values())
        scale = max(abs(v) for v in losses.values())
        rows.append(
            {
                "tokens_seen": key if by_tokens else None,
                "step": None if by_tokens else key,
                "loss": losses,
                "max_abs_diff": spread,
                "max_rel_diff": spread / scale if scale else 0.0,
            }
        )
    return rows


def rollouts(run: Run) -> list[dict[str, Any]] | None:
    """The run's logged reward calls (ptsdk_runtime.log_rollouts), None when it logged none."""
    path = run.run_dir / runtime.ROLLOUT_LOG
    if not path.exists():
        return None
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut short by a killed run ends the comparable part
            break
    return out


def rollout_divergence(runs: list[Run]) -> dict[str, Any] | None:
    """Where the online-RL runs' rollouts first part: the first reward call whose prompts, completions or rewards
    differ between two runs, in the order they were made. None when every logged call agrees (or fewer than two
    runs logged any); {"compared": n} tells how many calls were compared."""
    logs = {r.backend: rollouts(r) for r in runs}
    logged = {b: calls for b, calls in logs.items() if calls is not None}
    if len(logged) < 2:
        return None
    (first, a), *others = logged.items()
    for other, b in others:
        for call_a, call_b in zip(a, b, strict=False):  # compared as far as both logged
            for what in ("prompts", "completions", "rewards"):
                if call_a.get(what) == call_b.get(what):
                    continue
                pairs = list(zip(call_a.get(what) or [], call_b.get(what) or [], strict=False))
                index = next((i for i, (x, y) in enumerate(pairs) if x != y), len(pairs))
                pick = {first: call_a.get(what), other: call_b.get(what)}
                return {
                    "step": call_a.get("step"),
                    "call": call_a.get("call"),
                    "reward": call_a.get("reward"),
                    "what": what,
                    "index": index,
                    "values": {k: (v[index] if isinstance(v, list) and index < len(v) else v) for k, v in pick.items()},
                }
    return {"compared": min(len(calls) for calls in logged.values())}


def agree(point: dict[str, Any]) -> bool:
    """Whether an aligned point's losses agree: within PARITY_RTOL relative or PARITY_ATOL absolute."""
    return point["max_abs_diff"] <= PARITY_ATOL or point["max_rel_diff"] <= PARITY_RTOL


def build_report(runs: list[Run]) -> dict[str, Any]:
    rows = parity({r.backend: measured_effective(r) for r in runs})
    aligned = aligned_losses(runs)
    return {
        "report_version": 1,
        "job": runs[0].manifest.get("job", {}).get("name") if runs else None,
        "backends": [r.backend for r in runs],
        "parity": [asdict(r) | {"unexplained": r.unexplained} for r in rows],
        "unexplained_differences": [r.key for r in rows if r.unexplained],
        "summary": [asdict(summarize(r)) for r in runs],
        "aligned_loss": aligned,
        "aligned_by": "step" if any(a["step"] is not None for a in aligned) else "tokens_seen",
        "max_abs_loss_diff": max((a["max_abs_diff"] for a in aligned), default=None),
        "max_rel_loss_diff": max((a["max_rel_diff"] for a in aligned), default=None),
        # The first aligned point where the losses part (None: they never do).
        "first_divergence": next((a for a in aligned if not agree(a)), None),
        # Online RL: where the rollouts (prompts, completions, rewards) first part, or how many calls agreed.
        "rollouts": rollout_divergence(runs),
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def report_markdown(report: dict[str, Any], plots: list[str]) -> str:
    b = report["backends"]
    out = [
        f"# Backend comparison: {report['job']}",
        "",
        "## Parity (effective settings each framework uses)",
        "",
        "| setting | " + " | ".join(b) + " | |",
        "|---|" + "---|" * len(b) + "---|",
    ]
    for row in report["parity"]:
        verdict = ParityRow.from_report(row).verdict
        flag = f"**{verdict}**" if row["unexplained"] else verdict
        out.append(f"| {row['key']} | " + " | ".join(_fmt(row["values"].get(x)) for x in b) + f" | {flag} |")
    out += [
        "",
        "## Results",
        "",
        "| backend | status | steps | tokens | final loss | best loss | tokens/s | wall s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report["summary"]:
        out.append(
            f"| {s['backend']} | {s['status']} | {s['steps']} | {_fmt(s['tokens_seen'])} | "
            f"{_fmt(s['final_loss'])} | {_fmt(s['best_loss'])} | {_fmt(s['tokens_per_s'])} | "
            f"{_fmt(s['wall_time_s'])} | {_fmt(s['peak_rss_mib'])} |"
        )
    out += [
        "",
        f"Largest loss difference at equal {report['aligned_by'].replace('_', ' ')}: "
        f"{_fmt(report['max_abs_loss_diff'])} ({_fmt(report['max_rel_loss_diff'])} relative) "
        f"over {len(report['aligned_loss'])} aligned points.",
        "",
    ]
    rl = report.get("rollouts")
    if rl is not None and "compared" in rl:
        out += [f"Rollouts: the same prompts, completions and rewards in all {rl['compared']} logged reward calls.", ""]
    elif rl is not None:
        out += [
            f"Rollouts first part at step {rl['step']} (reward call {rl['call']}, {rl['reward']}): {rl['what']} "
            f"#{rl['index']}: " + "; ".join(f"{b}: {v!r}" for b, v in rl["values"].items()),
            "",
        ]
    first = report["first_divergence"]
    if first is not None:
        where = f"step {first['step']}" if first["step"] is not None else f"{first['tokens_seen']} tokens seen"
        out += [
            f"The losses first part (by more than {PARITY_RTOL:g} relative and {PARITY_ATOL:g} absolute) at "
            f"{where}: {first['loss']}.",
            "",
        ]
    out += [f"![{p}]({p})" for p in plots]
    return "\n".join(out) + "\n"


def plot(runs: list[Run], out: Path) -> list[str]:
    import matplotlib  # imported here: only compare draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    panels = [
        ("loss", "tokens_seen", "loss_vs_tokens.png"),
        ("loss", "wall_time_s", "loss_vs_time.png"),
        ("reward", "tokens_seen", "reward_vs_tokens.png"),
        ("tokens_per_s", "step", "throughput.png"),
    ]
    for y, x, name in panels:
        series = {
            r.backend: [
                (getattr(m, x), getattr(m, y))
                for m in r.train
                if getattr(m, x) is not None and getattr(m, y) is not None
            ]
            for r in runs
        }
        if not any(series.values()):
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, (backend, pts) in enumerate(series.items()):
            if pts:  # distinct line styles: identical curves stay visible on top of each other
                ax.plot(
                    *zip(*pts, strict=True),
                    marker="o.^s"[i % 4],
                    markersize=4,
                    linestyle=["-", "--", ":", "-."][i % 4],
                    label=backend,
                )
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(y.replace("_", " "))
        ax.set_title(f"{y} vs {x}".replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        made.append(name)
    return made


def write_report(runs: list[Run], out: Path) -> dict[str, Any]:
    require_new_dir(out, "--out")
    report = build_report(runs)
    with staged_dir(out) as tmp:
        plots = plot(runs, tmp)
        report["plots"] = plots
        (tmp / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        (tmp / "report.md").write_text(report_markdown(report, plots))
    return report
