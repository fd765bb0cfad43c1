"""The live view of a run: progress read from the framework's own metrics log while it trains.

The same for every backend: it polls :meth:`Backend.parse_metrics` (what ptsdk normalizes into
metrics.jsonl at the end) and shows the last training record. On a terminal: a rich progress bar with
step / total, ETA, loss, reward, learning rate and tokens/s. Elsewhere (CI, pipes): one plain line every
N steps, ``step 10/30 (33%) · loss 1.2345 · lr 0.002 · 812 tok/s · eta 12s``, and the last step's line
at the end. On failure, :func:`failure_excerpt` gives the log's relevant last lines.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ptsdk.metrics import MetricRecord
    from ptsdk.plugins.backend import Backend
    from ptsdk.spec import Job

#: Seconds between looks at the metrics log (a terminal gets smoother updates than a CI log).
POLL_TTY_S, POLL_PLAIN_S = 0.5, 2.0


def every_n(total: int | None) -> int:
    """Steps between plain progress lines: ~20 lines a run, at least every step; PTSDK_PROGRESS_EVERY overrides."""
    override = os.environ.get("PTSDK_PROGRESS_EVERY", "")
    if override.isdigit() and int(override) > 0:
        return int(override)
    return max(1, math.ceil(total / 20)) if total else 10


def progress_line(rec: MetricRecord, total: int | None, eta_s: float | None) -> str:
    """One plain progress line for a training record."""
    parts = [f"step {rec.step}/{total} ({100 * rec.step // total}%)" if total else f"step {rec.step}"]
    parts += metric_parts(rec)
    if eta_s is not None:
        parts.append(f"eta {_duration(eta_s)}")
    return " · ".join(parts)


def metric_parts(rec: MetricRecord) -> list[str]:
    """The record's loss, reward, learning rate and throughput, as the progress view shows them."""
    parts = []
    if rec.loss is not None:
        parts.append(f"loss {rec.loss:.4f}")
    if rec.reward is not None:
        parts.append(f"reward {rec.reward:.3f}")
    if rec.learning_rate is not None:
        parts.append(f"lr {rec.learning_rate:.3g}")
    if rec.tokens_per_s:
        parts.append(f"{rec.tokens_per_s:,.0f} tok/s")
    return parts


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class LiveView:
    """Progress of a run while its commands run (a context manager around them; a daemon thread polls)."""

    def __init__(
        self,
        job: Job,
        backend: Backend,
        run_dir: Path,
        stream: TextIO,
        *,
        tty: bool | None = None,
        records: Callable[[], Iterable[MetricRecord]] | None = None,
    ) -> None:
        self.job, self.backend, self.run_dir, self.stream = job, backend, run_dir, stream
        self.tty = stream.isatty() if tty is None else tty
        self._records = records or (lambda: backend.parse_metrics(run_dir))
        self.total: int | None = job.training.max_steps
        self.every = every_n(self.total)
        self.last_printed = 0
        self.last: MetricRecord | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._progress: Any = None
        self._task: Any = None
        self._shown: tuple[Any, ...] = ()

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> LiveView:
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=Console(file=self.stream),
                transient=False,
                auto_refresh=False,  # redrawn when a poll finds news, not 10 times a second: CPU the framework keeps
            )
            self._progress.start()
            self._task = self._progress.add_task(
                f"{self.backend.name} {self.job.method.name}", total=self.total, metrics="starting"
            )
        self._thread = threading.Thread(target=self._loop, name="ptsdk-live", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.poll(final=True)
        if self._progress is not None:
            self._progress.stop()

    def _loop(self) -> None:
        while not self._stop.wait(POLL_TTY_S if self.tty else POLL_PLAIN_S):
            self.poll()

    # --- one look at the log -----------------------------------------------------------------

    def poll(self, *, final: bool = False) -> None:
        try:
            train = [r for r in self._records() if r.kind == "train"]
        except Exception:  # a log being written, or a framework's format mid-line: look again later
            return
        if not train:
            return
        latest = train[-1]
        if self.total is None or latest.step > self.total:
            self.total = self._total() or self.total
        self.last = latest
        eta = self._eta(latest)
        if self._progress is not None:
            metrics = " · ".join(metric_parts(latest))
            shown = (latest.step, self.total, metrics)
            if shown != self._shown:
                self._progress.update(self._task, completed=latest.step, total=self.total, metrics=metrics)
                self._progress.refresh()
                self._shown = shown
            return
        for rec in train:
            due = rec.step // self.every > self.last_printed // self.every
            if rec.step > self.last_printed and (due or (final and rec is latest)):
                self.stream.write(progress_line(rec, self.total, eta if rec is latest else None) + "\n")
                self.last_printed = rec.step
        self.stream.flush()

    def _total(self) -> int | None:
        total = getattr(self.backend, "total_steps", None)
        return total(self.run_dir) if callable(total) else None

    def _eta(self, rec: MetricRecord) -> float | None:
        if not self.total or rec.step <= 0:
            return None
        elapsed = rec.wall_time_s or (time.monotonic() - self._started)
        return elapsed / rec.step * max(0, self.total - rec.step)


_RELEVANT = re.compile(r"Traceback|Error|error:|Exception|FAILED|Killed|out of memory", re.I)


def failure_excerpt(log_path: Path, lines: int = 15, max_bytes: int = 256 * 1024) -> list[str]:
    """The log lines that say why a run failed: from the last traceback on (at most 2 x `lines`), else the
    last lines around the last error-looking line, else the last `lines` lines."""
    try:
        with log_path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    tail = text.splitlines()
    starts = [i for i, line in enumerate(tail) if line.startswith("Traceback")]
    if starts:
        # The last traceback up to the exception it ends with (the first line that is not a frame of it), its
        # middle left out when long: the exception's own line is what says why.
        trace = tail[starts[-1] :]
        end = next((i + 1 for i, line in enumerate(trace[1:], 1) if line and not line[0].isspace()), len(trace))
        trace = trace[: end + 2]  # and what followed it at once (a launcher's "exits with return code ...")
        if len(trace) > 2 * lines:
            return [*trace[:3], f"  ... ({len(trace) - 2 * lines + 3} lines)", *trace[-(2 * lines - 4) :]]
        return trace
    marks = [i for i, line in enumerate(tail) if _RELEVANT.search(line)]
    if marks:
        end = min(len(tail), marks[-1] + 3)
        return tail[max(0, end - lines) : end]
    return tail[-lines:]
