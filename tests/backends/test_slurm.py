"""`ptsdk run --launcher slurm` against a real Slurm (Debian's slurm-wlm: munged, slurmctld and slurmd started on
this machine by tools/slurm_local.sh), with the tiny TRL SFT job: run to completion, a failure reported with its
log, a job cancelled from outside recorded `cancelled`, and Ctrl-C cancelling the Slurm job."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from ptsdk.plugins.slurm import FIRST_NODE, NODE_SCRIPT, job_state

from .conftest import read_run, trained

pytestmark = pytest.mark.trl
SLURM = ROOT / "tools" / "slurm_local.sh"


@pytest.fixture(scope="module")  # stopped after this file: its daemons would slow every later test
def slurm(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Slurm on this machine for these tests (installed from the package registry if missing; needs root)."""
    if os.geteuid() != 0 and not shutil.which("slurmctld"):
        pytest.skip("Slurm is not installed and installing it needs root (tools/slurm_local.sh install)")
    state = tmp_path_factory.mktemp("slurm")
    for step in (["install"], ["start", str(state)]):
        proc = subprocess.run(["bash", str(SLURM), *step], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"slurm_local.sh {step[0]}: {proc.stderr[-2000:]}"
    yield state
    subprocess.run(["bash", str(SLURM), "stop", str(state)], capture_output=True, timeout=60)


def submit(job: Path, run_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """`ptsdk run --launcher slurm` as its own process (it is signalled in one test)."""
    argv = [sys.executable, "-m", "ptsdk", "run", str(job), "-b", "trl", "--run-dir", str(run_dir)]
    return subprocess.Popen(
        [*argv, "--launcher", "slurm", "--partition", "debug", "--time", "10", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_job(run_dir: Path, state: str, timeout: float = 120) -> str:
    """The Slurm job id from the run's manifest, once Slurm says the job is in `state`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            job_id = json.loads((run_dir / "manifest.json").read_text())["cluster"]["job_id"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
            continue
        if job_state(job_id).get("JobState") == state:
            return str(job_id)
        time.sleep(0.2)
    raise AssertionError(f"no Slurm job in state {state} for {run_dir} after {timeout}s")


def test_the_tiny_sft_job_runs_to_completion_on_slurm(ptsdk, example_job, tmp_path, trl_env, slurm) -> None:
    job = example_job("sft_lora.yaml", training={"max_steps": 4})
    run = tmp_path / "run"
    proc = submit(job, run)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err + (run / "logs" / "backend.log").read_text()[-3000:]
    manifest, metrics = read_run(run)
    train = trained(manifest, metrics, 4, framework=("trl", "1.16.0"))
    assert train[-1]["loss"] < train[0]["loss"]
    cluster = manifest["cluster"]
    assert cluster["launcher"] == "slurm" and cluster["state"] == "COMPLETED" and cluster["exit_code"] == "0:0"
    assert cluster["options"] == {"partition": "debug", "time": "10"}
    script = (run / "slurm.sbatch").read_text()
    assert "#SBATCH --partition=debug" in script and "#SBATCH --time=10" in script
    assert f"#SBATCH --chdir={shlex.quote(str(run.resolve()))}" in script and "exec bash command.sh" in script
    assert f"ptsdk: Slurm job {cluster['job_id']} on" in (run / "logs" / "backend.log").read_text()
    assert "step 4/4" in err  # the live view, as for a local run
    listed = ptsdk("runs", str(tmp_path), "--format", "json")
    assert listed.code == 0 and [r["status"] for r in json.loads(listed.out)] == ["succeeded"]


def test_a_two_node_job_runs_one_task_per_node_meeting_at_the_first_node(example_job, tmp_path, trl_env, slurm) -> None:
    """distributed.nodes: 2 on Slurm's two nodes (node1, node2: two slurmd on this host): one srun task per node,
    torchrun's c10d rendezvous at the allocation's first node, one DDP run of world size 2 (gloo on CPU)."""
    idle = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True).stdout.split("\n")
    if sum(line.endswith(" idle") for line in idle) < 2:
        pytest.skip("the Slurm already running here has fewer than two idle nodes (tools/slurm_local.sh starts two)")
    job = example_job("sft_lora.yaml", training={"max_steps": 4}, distributed={"nodes": 2, "gpus_per_node": 1})
    run = tmp_path / "run"
    proc = submit(job, run)
    _, err = proc.communicate(timeout=600)
    log = (run / "logs" / "backend.log").read_text()
    assert proc.returncode == 0, err + log[-3000:]
    manifest, metrics = read_run(run)
    train = trained(manifest, metrics, 4, framework=("trl", "1.16.0"))
    assert train[-1]["loss"] < train[0]["loss"]
    assert manifest["cluster"]["state"] == "COMPLETED" and manifest["cluster"]["nodes"] == "node[1-2]"
    assert manifest["job"]["distributed"]["master_addr"] == FIRST_NODE  # Slurm's choice, recorded
    assert "ptsdk: rendezvous at 127.0.0.1 (node node1)" in log
    assert "ptsdk: node node1 (task 0 of 2)" in log and "ptsdk: node node2 (task 1 of 2)" in log
    assert "[ptsdk] rank 0: SFTTrainer, world size 2" in log and "[ptsdk] rank 1: SFTTrainer, world size 2" in log
    assert '--rdzv_endpoint="$PTSDK_RDZV_HOST":29500' in (run / NODE_SCRIPT).read_text()
    assert (run / "model" / "adapter_model.safetensors").is_file()


def test_a_failing_job_is_failed_with_the_end_of_its_log(example_job, tmp_path, trl_env, slurm) -> None:
    bad = tmp_path / "bad_reward.py"
    bad.write_text("def boom(prompts, completions, **kw):\n    raise RuntimeError('reward exploded')\n")
    job = example_job("grpo.yaml", method={"rewards": [f"{bad}:boom"]})
    run = tmp_path / "run"
    proc = submit(job, run)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["exit_code"] == 1
    assert manifest["cluster"]["state"] == "FAILED" and manifest["cluster"]["exit_code"] == "1:0"
    assert "reward exploded" in err and str(run / "logs" / "backend.log") in err  # the log's end, and where it is


def test_a_job_cancelled_from_outside_is_recorded_cancelled(example_job, tmp_path, trl_env, slurm) -> None:
    job = example_job("sft_lora.yaml", training={"max_steps": 2000})
    run = tmp_path / "a run; with spaces"  # quoted in the sbatch script
    proc = submit(job, run)
    job_id = wait_for_job(run, "RUNNING")
    subprocess.run(["scancel", job_id], check=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "cancelled" and manifest["cluster"]["state"] == "CANCELLED"
    listed = subprocess.run(
        [sys.executable, "-m", "ptsdk", "runs", str(tmp_path), "--format", "json"], capture_output=True, text=True
    )
    assert listed.returncode == 0 and [r["status"] for r in json.loads(listed.stdout)] == ["cancelled"]


def test_ctrl_c_cancels_the_slurm_job_and_the_run_resumes_on_slurm(example_job, tmp_path, trl_env, slurm) -> None:
    job = example_job("sft_lora.yaml", training={"max_steps": 60}, output={"save_steps": 5, "save_total_limit": 1})
    run = tmp_path / "run"
    proc = submit(job, run)
    job_id = wait_for_job(run, "RUNNING")
    deadline = time.monotonic() + 300
    while not list((run / "checkpoints").glob("checkpoint-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # the checkpoint written whole
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert job_state(job_id).get("JobState") == "CANCELLED"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["cluster"]["job_id"] == job_id
    # --resume goes back to Slurm, with the same options, from the last checkpoint, as a new Slurm job.
    again = subprocess.run(
        [sys.executable, "-m", "ptsdk", "run", "--resume", str(run), "--quiet"], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr + (run / "logs" / "backend.log").read_text()[-3000:]
    manifest, metrics = read_run(run)
    assert manifest["status"] == "succeeded" and len(manifest["attempts"]) == 2
    assert manifest["attempts"][1]["resumed_from_step"] >= 5
    cluster = manifest["cluster"]
    assert cluster["state"] == "COMPLETED" and cluster["job_id"] != job_id
    assert cluster["options"] == {"partition": "debug", "time": "10"}
    assert max(m["step"] for m in metrics if m["kind"] == "train") == 60


def test_the_cluster_refuses_a_bad_partition_before_anything_is_written(ptsdk, example_job, tmp_path, slurm) -> None:
    run = tmp_path / "run"
    r = ptsdk(
        "run", str(example_job("sft_lora.yaml")), "-b", "trl", "--run-dir", str(run), "--launcher", "slurm",
        "--partition", "nosuchpartition",
    )  # fmt: skip
    assert r.code == 2 and "Traceback" not in r.err
    assert "the cluster would not take this job" in r.err and "partition" in r.err.lower()
    assert not run.exists()
