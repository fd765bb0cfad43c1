"""TRL for real, stopped and resumed: one run on the tiny model is SIGTERMed after its first checkpoint,
resumed, SIGKILLed (ptsdk itself) after the next checkpoint, and resumed again; it must end exactly
where an uninterrupted run ends (every step once, the same losses and token counts), and no process
of the framework may outlive ptsdk. The runs are shared by the tests (module-scoped fixtures)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, running, watchdogs
from ptsdk.rundir import RunDir

pytestmark = pytest.mark.trl

STEPS, SAVE = 80, 10


def write_job(folder: Path, tiny_model: Path, name: str = "job.yaml", **overrides: Any) -> Path:
    data = yaml.safe_load((EXAMPLES / "jobs" / "sft_full.yaml").read_text())
    data["model"]["name_or_path"] = str(tiny_model)
    data["data"]["train"]["path"] = str((EXAMPLES / "jobs" / data["data"]["train"]["path"]).resolve())
    data["training"]["max_steps"] = STEPS
    data["output"].update(save_steps=SAVE, logging_steps=1, dir=str(folder / "runs"))
    data.update(overrides)
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def in_process_run(job_path: Path, run_dir: Path, *, resume: bool = False) -> Any:
    """pipeline.run as `ptsdk run` calls it (the native check skipped: the subprocess runs below do it)."""
    from ptsdk import pipeline
    from ptsdk.backends.trl.backend import TRLBackend

    backend = TRLBackend()
    job = RunDir(run_dir).job() if resume else pipeline.load_checked(job_path, "trl")[0]
    return pipeline.run(job, backend, backend.translate(job), run_dir, resume=resume, native_checked=True, echo=None)


def framework_pids(run: Path) -> list[int]:
    """Live processes working in the run directory: the trainer and anything it started."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(run.resolve()) and running(int(entry.name)):
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def stop_after_checkpoint(run: Path, args: list[str], checkpoint: int, sig: signal.Signals) -> dict[str, Any]:
    """Start `ptsdk run ARGS` as a process, send it `sig` once checkpoint-N is complete (ptsdk's counters are
    written last), and report its exit, stderr, the framework's pids and how long any of them outlived it."""
    done = run / "checkpoints" / f"checkpoint-{checkpoint}" / "ptsdk_counters.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptsdk", "run", *args, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 300
        while not done.exists():
            if proc.poll() is not None:
                raise AssertionError(f"ptsdk ended before checkpoint {checkpoint}: {proc.stderr.read().decode()}")
            assert time.monotonic() < deadline, f"no checkpoint {checkpoint} within 300 s"
            time.sleep(0.01)
        pids = framework_pids(run)
        proc.send_signal(sig)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=60)
        while (framework_pids(run) or watchdogs(pids)) and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        return {
            "code": proc.returncode,
            "err": err.decode(),
            "pids": pids,
            "left": framework_pids(run) + watchdogs(pids),
            "gone_after_s": time.monotonic() - t0,
        }
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lifecycle")


@pytest.fixture(scope="module")
def reference(folder: Path, tiny_model: Path) -> list[dict]:
    """The uninterrupted run's train records."""
    run = folder / "reference"
    result = in_process_run(write_job(folder, tiny_model), run)
    assert result.status == "succeeded", (run / "logs" / "backend.log").read_text()[-3000:]
    return train_records(run)


@pytest.fixture(scope="module")
def stopped(folder: Path, tiny_model: Path) -> dict[str, Any]:
    """The run SIGTERMed after checkpoint 10, resumed, and SIGKILLed after the next checkpoint."""
    run = folder / "stopped"
    job = write_job(folder, tiny_model)
    term = stop_after_checkpoint(run, [str(job), "--backend", "trl", "--run-dir", str(run)], SAVE, signal.SIGTERM)
    term["manifest"] = json.loads((run / "manifest.json").read_text())
    term["steps"] = [r["step"] for r in train_records(run)]
    saved = [p for p in (run / "checkpoints").glob("checkpoint-*") if (p / "ptsdk_counters.json").exists()]
    step = max(int(p.name.split("-")[1]) for p in saved)
    kill = stop_after_checkpoint(run, ["--resume", str(run)], step + SAVE, signal.SIGKILL)
    kill["manifest"] = json.loads((run / "manifest.json").read_text())
    return {"run": run, "job": job, "term": term, "kill": kill}


def train_records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "train"]


def test_sigterm_stops_trl_and_records_the_run_as_interrupted(stopped: dict[str, Any]) -> None:
    term = stopped["term"]
    assert term["code"] == 143, term["err"]
    assert term["pids"] and not term["left"] and term["gone_after_s"] < 5, term
    assert "continue it with `ptsdk run --resume" in term["err"] and "Traceback" not in term["err"]
    m = term["manifest"]
    assert m["status"] == "interrupted" and m["exit_code"] == 143 and m["ended_at"]
    steps = term["steps"]
    assert SAVE <= len(steps) < STEPS and steps == list(range(1, len(steps) + 1))  # what TRL logged, once


def test_sigkill_of_ptsdk_leaves_no_trl_process_and_the_run_reads_as_lost(stopped: dict[str, Any]) -> None:
    from ptsdk.compare import load_run, summarize

    kill = stopped["kill"]
    assert kill["code"] == -signal.SIGKILL
    assert kill["pids"] and not kill["left"] and kill["gone_after_s"] < 5, kill
    assert kill["manifest"]["status"] == "running"  # as the killed ptsdk left it
    run = load_run(stopped["run"])
    assert run.dir.status == "lost" and summarize(run).status == "lost"
    # metrics.jsonl is still the first attempt's: a reader takes the lost attempt's steps from TRL's own log
    steps = [r.step for r in run.train]
    assert len(steps) > len(stopped["term"]["steps"]) and steps == list(range(1, len(steps) + 1))


def test_resumed_run_ends_as_the_uninterrupted_one(stopped: dict[str, Any], reference: list[dict]) -> None:
    run = stopped["run"]
    result = in_process_run(stopped["job"], run, resume=True)
    assert result.status == "succeeded", (run / "logs" / "backend.log").read_text()[-3000:]
    m = json.loads((run / "manifest.json").read_text())
    attempts = [(a["status"], a["resumed_from_step"]) for a in m["attempts"]]
    assert [a[0] for a in attempts] == ["interrupted", "lost", "succeeded"]
    assert attempts[0][1] is None and SAVE <= attempts[1][1] < attempts[2][1] < STEPS
    assert m["started_at"] == stopped["term"]["manifest"]["started_at"] and m["resumed"] is True
    log = (run / "logs" / "backend.log").read_text()
    for step in (attempts[1][1], attempts[2][1]):  # TRL was told the checkpoint ptsdk recorded
        assert f"[ptsdk] resuming from checkpoints/checkpoint-{step}\n" in log

    train = train_records(run)
    assert [r["step"] for r in train] == list(range(1, STEPS + 1))  # every step exactly once
    assert [r["tokens_seen"] for r in train] == [r["tokens_seen"] for r in reference]
    for got, want in zip(train, reference, strict=True):
        assert math.isclose(got["loss"], want["loss"], rel_tol=0, abs_tol=1e-6), (
            got["step"],
            got["loss"],
            want["loss"],
        )
    walls = [r["wall_time_s"] for r in train]
    assert walls == sorted(walls)  # seconds of training continue across attempts


def test_a_trl_run_whose_weights_become_non_finite_fails(folder: Path, tiny_model: Path) -> None:
    """A learning rate of 1e30 (set through backend_options: the job's own field refuses it) turns TRL's
    weights into NaN at step 2; its logged loss stays finite (0.0), so the weights check is what catches it."""
    run = folder / "nan"
    job = write_job(
        folder,
        tiny_model,
        "nan.yaml",
        training={**yaml.safe_load((EXAMPLES / "jobs" / "sft_full.yaml").read_text())["training"], "max_steps": 3},
        backend_options={"trl": {"learning_rate": 1e30, "ptsdk_override": ["learning_rate"]}},
    )
    result = in_process_run(job, run)
    m = json.loads((run / "manifest.json").read_text())
    assert result.exit_code == 1 and m["status"] == "failed"
    assert m["nonfinite"].startswith(("loss became nan", "the trained weights hold non-finite values")), m["nonfinite"]
