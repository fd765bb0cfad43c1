"""`ptsdk run --launcher ray` against a real local Ray head (`ray start --head`, CPU only) through Ray's job
submission API, with the tiny TRL SFT job: submitted, followed and finished; one stopped midway with Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import read_run, trained

pytestmark = pytest.mark.trl
ray_jobs = pytest.importorskip("ray.job_submission", reason="Ray's job client: pip install 'ptsdk[ray]'")
PORT = 8265


@pytest.fixture(scope="module")  # stopped after this file: its daemons would slow every later test
def ray_head():  # type: ignore[no-untyped-def]
    """A Ray head on this machine for these tests (its dashboard serves the job API)."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    assert ray, "the ray CLI (ptsdk[ray]) is not installed"
    # A short folder of its own: Ray's sockets live under it, and an AF_UNIX path holds at most 107 bytes (pytest's
    # temporary folders, a worker's under pytest-xdist, are too deep for the dashboard's).
    temp = Path(tempfile.mkdtemp(prefix="ptsdk-ray-"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = [ray, "start", "--head", "--num-cpus=2", "--include-dashboard=true", f"--dashboard-port={PORT}"]
    stop = [ray, "stop", "--force"]
    proc = subprocess.run(
        [*start, "--port=6390", f"--temp-dir={temp}", "--disable-usage-stats"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if proc.returncode != 0:
        subprocess.run(stop, capture_output=True, env=env, timeout=120)  # nothing of a half-started head is left
        raise AssertionError(proc.stdout[-2000:] + proc.stderr[-2000:])
    address = f"http://127.0.0.1:{PORT}"
    client = None
    for _ in range(120):  # the dashboard's job API comes up a little after the head
        try:
            client = ray_jobs.JobSubmissionClient(address)
            break
        except Exception:
            time.sleep(0.5)
    if client is None:
        subprocess.run(stop, capture_output=True, env=env, timeout=120)
        raise AssertionError(f"no Ray job API at {address}")
    yield address
    subprocess.run(stop, capture_output=True, env=env, timeout=120)
    shutil.rmtree(temp, ignore_errors=True)


def submit(job: Path, run_dir: Path, address: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "ptsdk", "run", str(job), "-b", "trl", "--run-dir", str(run_dir)]
    return subprocess.Popen(
        [*argv, "--launcher", "ray", "--launcher-option", f"address={address}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_tiny_sft_job_runs_as_a_ray_job(example_job, tmp_path, trl_env, ray_head) -> None:
    job = example_job("sft_lora.yaml", training={"max_steps": 4})
    run = tmp_path / "run"
    proc = submit(job, run, ray_head)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err + (run / "logs" / "backend.log").read_text()[-3000:]
    manifest, metrics = read_run(run)
    train = trained(manifest, metrics, 4, framework=("trl", "1.16.0"))
    assert train[-1]["loss"] < train[0]["loss"]
    cluster = manifest["cluster"]
    assert cluster["launcher"] == "ray" and cluster["address"] == ray_head
    assert cluster["state"] == "SUCCEEDED" and cluster["job_id"].startswith(f"ptsdk-{run.name}-")
    info = ray_jobs.JobSubmissionClient(ray_head).get_job_info(cluster["job_id"])
    assert str(info.status.value) == "SUCCEEDED" and info.metadata["ptsdk_run_dir"] == str(run.resolve())
    assert "train_trl.py" in info.entrypoint or "command.sh" in info.entrypoint
    log = (run / "logs" / "backend.log").read_text()
    assert "'train_runtime'" in log or "train_runtime" in log  # the driver's own output, appended to the run's log
    assert "step 4/4" in err


def test_ctrl_c_stops_the_ray_job(example_job, tmp_path, trl_env, ray_head) -> None:
    job = example_job("sft_lora.yaml", training={"max_steps": 2000})
    run = tmp_path / "run"
    proc = submit(job, run, ray_head)
    client = ray_jobs.JobSubmissionClient(ray_head)
    deadline, job_id = time.monotonic() + 180, None
    while time.monotonic() < deadline:
        try:
            job_id = json.loads((run / "manifest.json").read_text())["cluster"]["job_id"]
            if (run / "logs" / "metrics.jsonl").exists() or str(client.get_job_status(job_id).value) == "RUNNING":
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    assert job_id is not None
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert str(client.get_job_status(job_id).value) == "STOPPED"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["cluster"]["job_id"] == job_id


def test_an_address_without_a_job_api_is_refused_before_anything_is_written(ptsdk, example_job, tmp_path) -> None:
    run = tmp_path / "run"
    r = ptsdk(
        "run", str(example_job("sft_lora.yaml")), "-b", "trl", "--run-dir", str(run), "--launcher", "ray",
        "--launcher-option", "address=http://127.0.0.1:9",
    )  # fmt: skip
    assert r.code == 2 and "Traceback" not in r.err
    assert "no Ray job API answers at http://127.0.0.1:9" in r.err
    assert not run.exists()
