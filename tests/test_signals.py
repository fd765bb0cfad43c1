"""Signals, crashes and resume, without a framework: a fake backend whose "framework" is a small Python
script (it logs steps like the transformers Trainer through ptsdk's JSONL format, saves checkpoint-N
folders, and can start a grandchild, ignore signals, fail or log a NaN loss).

`ptsdk run` runs as a real subprocess for the signal tests; every process of the run's tree writes its
pid under the run directory, and each test checks that none is left within a few seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, minimal_job, running, watchdogs
from ptsdk.errors import PtsdkError
from ptsdk.rundir import RunDir

FAKE_PLUGIN = '''
import json
from dataclasses import replace

from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins import hookimpl
from ptsdk.plugins.backend import Launcher, Plan, PlanFile
from ptsdk.plugins.kit import TrainerBackend, no_checkpoint_error

TRAIN = {train!r}


class FakeBackend(TrainerBackend):
    """A "framework" that is fake_train.py; backend_options.fake tells it how to behave."""

    name = "fake"
    framework = "fakefw"
    capabilities = (
        *caps("method", "sft", Verified.validated, "tests/test_signals.py::test_signal_stops_the_whole_tree"),
        *caps("adapter", "full", Verified.validated, "tests/test_signals.py::test_signal_stops_the_whole_tree"),
        *caps("device", "cpu", Verified.validated, "tests/test_signals.py::test_signal_stops_the_whole_tree"),
    )

    def translate(self, job):
        opts = {{"steps": job.training.max_steps or 10, "save_steps": job.output.save_steps}}
        opts.update(job.backend_options.get("fake", {{}}))
        return Plan(
            backend=self.name,
            files=[PlanFile("fake_train.py", content=TRAIN)],
            entrypoint=["fake_train.py"],
            args=["--config", json.dumps(opts, sort_keys=True)],
            launcher=Launcher("python"),
            job=job,
        )

    def resume(self, plan, run_dir):
        found = self.resume_checkpoint(run_dir)
        if found is None:
            raise no_checkpoint_error(self.name, plan.job, run_dir)
        return replace(plan, env={{**plan.env, "FAKE_RESUME_FROM": str(found[1])}})


@hookimpl
def ptsdk_register_backends(register):
    register(FakeBackend)
'''

FAKE_TRAIN = r"""
import json, math, os, signal, subprocess, sys, time

cfg = json.loads(sys.argv[sys.argv.index("--config") + 1])
resume = os.environ.get("FAKE_RESUME_FROM")
os.makedirs("pids", exist_ok=True)
os.makedirs("logs", exist_ok=True)
attempt = len(os.listdir("pids"))
if cfg.get("stubborn"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
with open(f"pids/child-{os.getpid()}", "w"):
    pass
if cfg.get("grandchild"):
    code = "import signal, time\n"
    if cfg.get("stubborn"):
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    code += "time.sleep(600)\n"
    g = subprocess.Popen([sys.executable, "-c", code])
    with open(f"pids/grandchild-{g.pid}", "w"):
        pass

def log(record):
    with open("logs/trainer_log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")

start, tokens, wall = 0, 0, 0.0
if resume:
    with open(os.path.join(resume, "trainer_state.json")) as f:
        state = json.load(f)
    start, tokens, wall = state["global_step"], state["tokens"], state["wall"]
t0 = time.time() - wall
log({"event": "train_begin", "step": start, "wall_time_s": wall})
print(f"fake: training from step {start}", flush=True)
for step in range(start + 1, cfg["steps"] + 1):
    time.sleep(cfg.get("step_s", 0.0))
    tokens += 10
    loss = float("nan") if step == cfg.get("nan_at") else 1.0 / step
    log({"step": step, "epoch": step / 100, "wall_time_s": time.time() - t0, "loss": loss, "num_tokens": tokens})
    print(f"fake: step {step}", flush=True)
    if cfg.get("save_steps") and step % cfg["save_steps"] == 0:
        folder = f"checkpoints/checkpoint-{step}"
        os.makedirs(folder, exist_ok=True)
        with open(folder + "/trainer_state.json", "w") as f:
            json.dump({"global_step": step, "tokens": tokens, "wall": time.time() - t0}, f)
    if step == cfg.get("fail_at") and not resume:
        sys.exit(3)
log({"step": cfg["steps"], "train_runtime": time.time() - t0, "train_loss": 0.5,
     "weights_finite": cfg.get("weights_finite", True), "nonfinite_parameter": "lm_head.weight"})
os.makedirs("model", exist_ok=True)
with open("model/model.safetensors", "w") as f:
    f.write("weights")
"""

GRACE = "1"  # seconds a stopped tree gets before SIGKILL (PTSDK_STOP_GRACE_S)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The fake backend installed as an entry-point plugin: registered in this process, and the
    environment for `ptsdk` subprocesses (returned)."""
    from ptsdk.plugins import manager

    site = tmp_path / "site"
    site.mkdir()
    (site / "ptsdk_fake_backend.py").write_text(FAKE_PLUGIN.format(train=textwrap.dedent(FAKE_TRAIN)))
    dist = site / "ptsdk_fake_backend-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ptsdk-fake-backend\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ptsdk]\nfake = ptsdk_fake_backend\n")
    monkeypatch.setenv("PTSDK_FAKE_PYTHON", sys.executable)
    monkeypatch.setenv("PTSDK_STOP_GRACE_S", GRACE)
    monkeypatch.syspath_prepend(str(site))
    manager.clear_registry_cache()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    yield env
    sys.modules.pop("ptsdk_fake_backend", None)
    manager.clear_registry_cache()


def fake_job(tmp_path: Path, name: str = "job.yaml", *, save_steps: int | None = 5, **fake: Any) -> Path:
    """An SFT job for the fake backend: local data and a placeholder model folder (as preflight wants them)."""
    model = tmp_path / "model"
    if not model.exists():
        model.mkdir()
        (model / "config.json").write_text('{"model_type": "llama"}')
        (model / "model.safetensors").write_text("weights")
        (model / "tokenizer.json").write_text("{}")
    data = minimal_job(
        model={"name_or_path": str(model)},
        data={"train": {"path": str(EXAMPLES / "data" / "sft_train.jsonl")}},
        distributed={"device": "cpu"},
        training={"max_steps": fake.pop("steps", 20)},
        output={"save_steps": save_steps, "dir": str(tmp_path / "runs")},
        backend_options={"fake": fake},
    )
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ptsdk", *args, "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(what: str, check: Any, proc: subprocess.Popen[str] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"ptsdk ended (exit {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.02)


def logged_steps(run: Path) -> list[int]:
    path = run / "logs" / "trainer_log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line).get("step", 0) for line in path.read_text().splitlines() if '"loss"' in line]


def tree_pids(run: Path) -> list[int]:
    """The framework's processes, from the pid files they wrote (child-PID, grandchild-PID)."""
    folder = run / "pids"
    return [int(p.name.split("-")[1]) for p in folder.iterdir()] if folder.is_dir() else []


def assert_nothing_left(run: Path, within: float = 5.0) -> None:
    pids = tree_pids(run)
    assert pids, "the fake framework wrote no pid files"
    deadline = time.monotonic() + within
    while any(running(p) for p in pids) or watchdogs(pids):
        assert time.monotonic() < deadline, f"still running after {within}s: {[p for p in pids if running(p)]}"
        time.sleep(0.05)


def manifest(run: Path) -> dict[str, Any]:
    return json.loads((run / "manifest.json").read_text())


def train_steps(run: Path) -> list[int]:
    return [m.step for m in RunDir(run).metrics() if m.kind == "train"]


# --- signals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_whole_tree(fake, tmp_path: Path, sig: signal.Signals, code: int) -> None:
    """SIGTERM is handled as Ctrl-C is: the framework's whole process group is stopped, the run is
    recorded `interrupted` with the metrics logged so far, and ptsdk exits 143 (SIGINT: 130)."""
    run = tmp_path / "run"
    job = fake_job(tmp_path, steps=2000, step_s=0.01, grandchild=True)
    proc = start(fake, "run", str(job), "-b", "fake", "--run-dir", str(run))
    wait_for("3 logged steps and a grandchild", lambda: len(logged_steps(run)) >= 3 and len(tree_pids(run)) == 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == code, err
    assert_nothing_left(run)
    m = manifest(run)
    assert m["status"] == "interrupted" and m["exit_code"] == code and m["ended_at"]
    assert m["attempts"][-1]["status"] == "interrupted"
    steps = train_steps(run)
    assert len(steps) >= 3 and steps == list(range(1, len(steps) + 1))
    if sig == signal.SIGTERM:
        assert f"continue it with `ptsdk run --resume {run}`" in err and "Traceback" not in err


def test_a_tree_that_ignores_sigterm_is_killed_after_the_grace_period(fake, tmp_path: Path) -> None:
    run = tmp_path / "run"
    job = fake_job(tmp_path, steps=2000, step_s=0.01, grandchild=True, stubborn=True)
    proc = start(fake, "run", str(job), "-b", "fake", "--run-dir", str(run))
    wait_for("a grandchild", lambda: len(tree_pids(run)) == 2 and logged_steps(run), proc)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 143
    assert time.monotonic() - t0 < float(GRACE) + 4
    assert_nothing_left(run)
    assert manifest(run)["status"] == "interrupted"


def test_a_second_signal_kills_at_once(fake, tmp_path: Path) -> None:
    run = tmp_path / "run"
    job = fake_job(tmp_path, steps=2000, step_s=0.01, grandchild=True, stubborn=True)
    proc = start({**fake, "PTSDK_STOP_GRACE_S": "60"}, "run", str(job), "-b", "fake", "--run-dir", str(run))
    wait_for("a grandchild", lambda: len(tree_pids(run)) == 2 and logged_steps(run), proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert_nothing_left(run)
    assert manifest(run)["status"] == "interrupted"


@pytest.mark.parametrize("stubborn", [False, True], ids=["plain", "ignores-sigterm"])
def test_sigkill_of_ptsdk_leaves_no_process_and_the_run_reads_as_lost(fake, tmp_path: Path, stubborn: bool) -> None:
    """ptsdk SIGKILLed: the kernel's parent-death signal and ptsdk's watchdog end the framework's tree
    (SIGKILL after the grace period for one that ignores SIGTERM); readers see the run as `lost`, with
    the metrics the framework logged."""
    from ptsdk.compare import load_run, summarize

    run = tmp_path / "run"
    job = fake_job(tmp_path, steps=2000, step_s=0.01, grandchild=True, stubborn=stubborn)
    proc = start(fake, "run", str(job), "-b", "fake", "--run-dir", str(run))
    wait_for("3 logged steps and a grandchild", lambda: len(logged_steps(run)) >= 3 and len(tree_pids(run)) == 2, proc)
    proc.kill()
    proc.communicate()
    assert_nothing_left(run, within=float(GRACE) + 4)
    m = manifest(run)
    assert m["status"] == "running" and m["process"]["pid"] == proc.pid  # as the dead ptsdk left it
    assert not (run / "metrics.jsonl").exists()
    loaded = load_run(run)
    assert loaded.dir.status == "lost"
    assert [r.step for r in loaded.train] == list(range(1, len(loaded.train) + 1)) and len(loaded.train) >= 3
    assert summarize(loaded).status == "lost" and summarize(loaded).steps == len(loaded.train)


# --- lost detection -------------------------------------------------------------------------------


def test_running_is_lost_only_when_the_recorded_process_is_gone(tmp_path: Path) -> None:
    from ptsdk.launch import this_process

    def status(process: dict[str, Any] | None) -> str:
        run = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        run.mkdir()
        data = {"backend": "trl", "job": {}, "status": "running", **({"process": process} if process else {})}
        (run / "manifest.json").write_text(json.dumps(data))
        return RunDir(run).status

    me = this_process()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert status(me) == "running"
    assert status({**me, "pid": dead.pid, "start_ticks": None}) == "lost"
    if me["start_ticks"] is not None:  # the pid now belongs to a process started at another time: not ours
        assert status({**me, "start_ticks": me["start_ticks"] - 1}) == "lost"
    if me["boot_id"] is not None:
        assert status({**me, "boot_id": "another-boot"}) == "lost"
    assert status({**me, "hostname": "some-other-host"}) == "running"  # cannot tell from here
    assert status(None) == "running"  # written by a ptsdk that recorded no process


# --- resume ---------------------------------------------------------------------------------------


def test_resume_continues_one_metrics_stream_and_records_attempts(fake, ptsdk, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = ptsdk("run", str(fake_job(tmp_path, steps=20, fail_at=13)), "-b", "fake", "--run-dir", str(run), "-q")
    assert r.code == 1
    first = manifest(run)
    assert first["status"] == "failed" and train_steps(run) == list(range(1, 14))

    r = ptsdk("run", "--resume", str(run), "-q")
    assert r.code == 0, r.err
    m = manifest(run)
    assert m["status"] == "succeeded" and m["resumed"] is True
    assert m["started_at"] == first["started_at"]  # the first attempt's
    assert [(a["status"], a["exit_code"], a["resumed_from_step"]) for a in m["attempts"]] == [
        ("failed", 3, None),
        ("succeeded", 0, 10),
    ]
    assert m["wall_time_s"] == pytest.approx(sum(a["wall_time_s"] for a in m["attempts"]), abs=0.02)
    records = [r for r in RunDir(run).metrics() if r.kind == "train"]
    assert [r.step for r in records] == list(range(1, 21))  # steps 11-13 of the failed attempt once, not twice
    assert [r.tokens_seen for r in records] == [10 * s for s in range(1, 21)]  # continued from the checkpoint
    walls = [r.wall_time_s for r in records]
    assert walls == sorted(walls)  # the clock continues too

    r = ptsdk("run", "--resume", str(run))
    assert r.code == 2 and f"--resume {run}: the run already succeeded" in r.err


def test_resume_without_a_checkpoint_is_refused(fake, ptsdk, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = ptsdk("run", str(fake_job(tmp_path, steps=20, fail_at=3)), "-b", "fake", "--run-dir", str(run), "-q")
    assert r.code == 1
    r = ptsdk("run", "--resume", str(run))
    assert r.code == 2 and "Traceback" not in r.err
    assert f"--resume {run}: no checkpoint was saved before the run stopped (output.save_steps=5)" in r.err
    assert "ptsdk run JOB --backend fake" in r.err
    assert len(manifest(run)["attempts"]) == 1  # nothing was started


def test_resume_of_a_running_run_or_of_another_job_is_refused(fake, ptsdk, tmp_path: Path) -> None:
    from ptsdk import pipeline
    from ptsdk.launch import this_process
    from ptsdk.plugins.manager import get_backend
    from ptsdk.spec import load_job

    run = tmp_path / "run"
    job_path = fake_job(tmp_path, steps=20, fail_at=13)
    assert ptsdk("run", str(job_path), "-b", "fake", "--run-dir", str(run), "-q").code == 1

    backend = get_backend("fake")()
    assert pipeline.resumable(RunDir(run), load_job(job_path), backend)["status"] == "failed"  # the same job
    changed = load_job(fake_job(tmp_path, "changed.yaml", steps=30, fail_at=13))
    with pytest.raises(PtsdkError, match="the job given is not the one the run was started with") as err:
        pipeline.run(changed, backend, backend.translate(changed), run, resume=True)
    assert "training.max_steps: 20 in the run, 30 given" in err.value.lines

    data = manifest(run)
    (run / "manifest.json").write_text(json.dumps({**data, "status": "running", "process": this_process()}))
    r = ptsdk("run", "--resume", str(run))
    assert r.code == 2
    assert f"--resume {run}: the run is still running (ptsdk pid {os.getpid()} on this host)" in r.err


# --- non-finite numbers ---------------------------------------------------------------------------


def test_a_nan_loss_fails_the_run(fake, ptsdk, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = ptsdk("run", str(fake_job(tmp_path, steps=6, nan_at=4)), "-b", "fake", "--run-dir", str(run), "-q")
    assert r.code == 1
    m = manifest(run)
    assert m["status"] == "failed" and m["exit_code"] == 1 and m["nonfinite"] == "loss became nan at step 4"
    assert [r.loss is None for r in RunDir(run).metrics() if r.kind == "train"] == [False] * 3 + [True] + [False] * 2


def test_non_finite_weights_fail_the_run(fake, ptsdk, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = ptsdk("run", str(fake_job(tmp_path, steps=3, weights_finite=False)), "-b", "fake", "--run-dir", str(run))
    assert r.code == 1
    m = manifest(run)
    assert m["status"] == "failed"
    assert m["nonfinite"] == "the trained weights hold non-finite values (first: lm_head.weight)"


def test_a_finished_run_leaves_no_watchdog(fake, ptsdk, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = ptsdk("run", str(fake_job(tmp_path, steps=3, grandchild=True)), "-b", "fake", "--run-dir", str(run), "-q")
    assert r.code == 0, r.err
    assert manifest(run)["status"] == "succeeded"
    assert_nothing_left(run, within=2)  # the grandchild left behind is killed with the command's group


# --- the metrics log as one stream ----------------------------------------------------------------


def test_metrics_log_is_one_stream_across_restarts(tmp_path: Path) -> None:
    from ptsdk.plugins.kit import hf_log_records

    def line(step: int, **kw: Any) -> str:
        return json.dumps({"step": step, "loss": 1.0 / step, **kw})

    # Marked restart (ptsdk's callback): the attempt resumed from step 2 drops the first one's steps 3-4.
    log = tmp_path / "marked.jsonl"
    first = [json.dumps({"event": "train_begin", "step": 0}), *(line(s) for s in (1, 2, 3, 4))]
    second = [json.dumps({"event": "train_begin", "step": 2}), *(line(s) for s in (3, 4, 5))]
    log.write_text("\n".join([*first, *second, '{"step": 6, "lo']) + "\n")  # a last line cut short
    assert [r.step for r in hf_log_records(log)] == [1, 2, 3, 4, 5]
    # Unmarked (an older runner): a step going back is a restart.
    log = tmp_path / "unmarked.jsonl"
    log.write_text("\n".join([*(line(s) for s in (1, 2, 3, 4)), *(line(s) for s in (3, 4, 5))]) + "\n")
    assert [r.step for r in hf_log_records(log)] == [1, 2, 3, 4, 5]


def test_axolotl_resume_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    """Axolotl's auto-resume would silently start over: ptsdk refuses before launching."""
    from ptsdk.backends.axolotl.backend import AxolotlBackend
    from ptsdk.spec import load_job

    backend = AxolotlBackend()
    plan = backend.translate(load_job(EXAMPLES / "jobs" / "sft_lora.yaml", check_files=False))
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    with pytest.raises(PtsdkError, match=rf"--resume {run}: no checkpoint was saved before the run stopped"):
        backend.resume(plan, run)
    (run / "model" / "checkpoint-2").mkdir()
    (run / "model" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    assert backend.resume(plan, run).args == plan.args and backend.resume_step(run) == 2


@pytest.mark.parametrize(
    "backend, example, checkpoint",
    [
        ("verl", "compare_sft_trl_verl.yaml", "latest_checkpointed_iteration.txt"),
        ("openrlhf", "openrlhf_cpu_sft_lora.yaml", "latest"),
        ("openrlhf", "openrlhf_cpu_sft_lora.yaml", "_actor/latest"),
    ],
)
def test_verl_and_openrlhf_resume_without_a_checkpoint_is_refused(
    tmp_path: Path, backend: str, example: str, checkpoint: str
) -> None:
    """Both frameworks' own resume would silently start over without a checkpoint: ptsdk refuses first."""
    from ptsdk.plugins.manager import get_backend
    from ptsdk.spec import load_job

    b = get_backend(backend)()
    plan = b.translate(load_job(EXAMPLES / "jobs" / example, check_files=False))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(PtsdkError, match=rf"--resume {run}: no checkpoint was saved before the run stopped"):
        b.resume(plan, run)
    (run / "checkpoints" / checkpoint).parent.mkdir(parents=True, exist_ok=True)
    (run / "checkpoints" / checkpoint).write_text("2")
    assert b.resume(plan, run).args  # continues
    if backend == "verl":
        assert b.resume_step(run) == 2
