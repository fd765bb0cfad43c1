"""The live view (ptsdk.live): plain progress lines that match the metrics, and a failure's log excerpt."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from conftest import minimal_job
from ptsdk.live import LiveView, every_n, failure_excerpt, progress_line
from ptsdk.metrics import MetricRecord
from ptsdk.spec import validate_job


class FakeBackend:
    name = "fake"

    def __init__(self) -> None:
        self.records: list[MetricRecord] = []

    def parse_metrics(self, run_dir: Path) -> list[MetricRecord]:
        return list(self.records)


def rec(step: int) -> MetricRecord:
    return MetricRecord(step=step, loss=2.0 - step / 10, learning_rate=1e-3, tokens_per_s=500.0, wall_time_s=step * 0.5)


def test_plain_lines_every_n_steps_and_the_last_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTSDK_PROGRESS_EVERY", "3")
    job = validate_job(minimal_job(training={"max_steps": 10}))
    backend = FakeBackend()
    out = io.StringIO()
    view = LiveView(job, backend, tmp_path, out, tty=False)  # type: ignore[arg-type]
    backend.records = [rec(1), rec(2)]
    view.poll()
    assert out.getvalue() == ""  # nothing due before step 3
    backend.records += [rec(s) for s in range(3, 8)] + [MetricRecord(step=7, kind="eval", loss=1.0)]
    view.poll()
    backend.records += [rec(s) for s in range(8, 11)]
    view.poll(final=True)
    lines = out.getvalue().splitlines()
    assert [int(line.split()[1].split("/")[0]) for line in lines] == [3, 6, 9, 10]
    assert lines[0].startswith("step 3/10 (30%) · loss 1.7000 · lr 0.001 · 500 tok/s")
    assert lines[-1].startswith("step 10/10 (100%) · loss 1.0000") and "eta 0s" in lines[-1]


def test_unknown_total_and_a_log_being_written(tmp_path: Path) -> None:
    job = validate_job(minimal_job())  # epochs: the total is unknown until the framework says
    backend = FakeBackend()
    out = io.StringIO()
    view = LiveView(job, backend, tmp_path, out, tty=False)  # type: ignore[arg-type]

    def broken() -> list[MetricRecord]:
        raise ValueError("half a line")

    backend.parse_metrics = lambda run_dir: broken()  # type: ignore[method-assign]
    view.poll()  # a log mid-write is looked at again later, never an error
    backend.parse_metrics = lambda run_dir: [rec(s) for s in range(1, 12)]  # type: ignore[method-assign]
    view.poll(final=True)
    assert out.getvalue().splitlines()[0].startswith("step 10 · loss")
    assert every_n(None) == 10 and every_n(7) == 1 and every_n(1000) == 50


def test_terminal_mode_draws_a_bar(tmp_path: Path) -> None:
    job = validate_job(minimal_job(training={"max_steps": 4}))
    backend = FakeBackend()
    backend.records = [rec(1), rec(2)]
    out = io.StringIO()
    with LiveView(job, backend, tmp_path, out, tty=True):  # type: ignore[arg-type]
        backend.records += [rec(3), rec(4)]
    text = out.getvalue()
    assert "4/4" in text and "loss 1.6000" in text


def test_terminal_mode_redraws_only_on_news(tmp_path: Path) -> None:
    """The bar is drawn when a poll finds a new step, not on a timer: CPU the framework keeps."""
    job = validate_job(minimal_job(training={"max_steps": 4}))
    backend = FakeBackend()
    backend.records = [rec(1)]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    view = LiveView(job, backend, tmp_path, out, tty=True)  # type: ignore[arg-type]
    with view:
        view.poll()
        drawn = len(out.getvalue())
        for _ in range(3):
            view.poll()
            time.sleep(0.25)  # rich's own timer would have redrawn twice meanwhile
        assert len(out.getvalue()) == drawn
        backend.records.append(rec(2))
        view.poll()
        assert len(out.getvalue()) > drawn and "2/4" in out.getvalue()


def test_progress_line_with_reward() -> None:
    line = progress_line(MetricRecord(step=2, reward=0.5, loss=None), 4, 3.0)
    assert line == "step 2/4 (50%) · reward 0.500 · eta 3s"


def test_failure_excerpt(tmp_path: Path) -> None:
    log = tmp_path / "backend.log"
    log.write_text(
        "\n".join(
            [f"step {i}" for i in range(100)]
            + ["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: bad shape", "exit"]
        )
    )
    assert failure_excerpt(log)[0] == "Traceback (most recent call last):"
    assert "ValueError: bad shape" in failure_excerpt(log)
    frames = [f'  File "f{i}.py", line {i}, in f{i}\n    f{i + 1}()' for i in range(40)]
    log.write_text("\n".join(["Traceback (most recent call last):", *frames, "RuntimeError: reward exploded", "x"]))
    deep = failure_excerpt(log)  # a deep traceback: its head, then its end with the exception itself
    assert deep[0] == "Traceback (most recent call last):" and deep[-2:] == ["RuntimeError: reward exploded", "x"]
    assert len(deep) <= 30 and any(line.startswith("  ... (") for line in deep)
    log.write_text("\n".join([f"line {i}" for i in range(50)] + ["RuntimeError: CUDA out of memory"] + ["a", "b"]))
    assert failure_excerpt(log)[-3:] == ["RuntimeError: CUDA out of memory", "a", "b"]
    log.write_text("\n".join(f"line {i}" for i in range(50)))
    assert failure_excerpt(log, lines=5) == [f"line {i}" for i in range(45, 50)]
    assert failure_excerpt(tmp_path / "missing.log") == []
