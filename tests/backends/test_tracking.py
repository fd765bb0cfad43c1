"""Experiment trackers (output.report_to) for real: a tiny run per backend, each tracker's files read back with the
tracker's own reader in the backend's environment (TensorBoard's EventAccumulator, MLflow's MlflowClient on the
local file store, wandb's own protobuf records of the offline run, Trackio's SQLiteStorage), holding the same
losses as metrics.jsonl, the run directory's name and ptsdk's job; nothing written outside the run directory.

The matrix's `tracking_*` evidence names these tests.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ptsdk.plugins.kit import tracking_record
from ptsdk.spec import Job

from .conftest import EXAMPLES, assert_loads, run_on, trained

#: Runs in the backend's interpreter: every tracker folder under RUN/tracking read back with the tracker's own
#: code, as JSON on stdout. argv: RUN.
READ_TRACKERS = r"""
import json, os, struct, sys
from pathlib import Path

run = Path(sys.argv[1])
tracking = run / "tracking"
out = {}

board = tracking / "tensorboard"
if board.is_dir():
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(board), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    out["tensorboard"] = {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "texts": {t: acc.Tensors(t)[0].tensor_proto.string_val[0].decode() for t in tags["tensors"]},
    }

store = tracking / "mlruns"
if store.is_dir():
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 keeps the file store in maintenance mode
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"file:{store}")
    runs = []
    for exp in client.search_experiments():
        for r in client.search_runs([exp.experiment_id]):
            history = client.get_metric_history
            metrics = {k: [[m.step, m.value] for m in history(r.info.run_id, k)] for k in r.data.metrics}
            job = mlflow.artifacts.load_dict(f"{r.info.artifact_uri}/ptsdk_job.json")
            runs.append({"experiment": exp.name, "run_name": r.info.run_name, "tags": r.data.tags,
                         "params": r.data.params, "metrics": metrics, "job": job})
    out["mlflow"] = runs

offline = sorted((tracking / "wandb").glob("offline-run-*"))
if offline:
    # wandb writes its run as a LevelDB-style log of its own protobuf Records (wandb/proto/wandb_internal.proto):
    # a 7-byte header, then 32 KiB blocks of chunks (crc32c, length, type: full/first/middle/last).
    from wandb.proto import wandb_internal_pb2 as pb

    data = next(offline[-1].glob("*.wandb")).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B", ident
    records, pending, pos, block = [], b"", 7, 32768
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # full, last
            records.append(pb.Record.FromString(pending))
            pending = b""
    history, config, info = [], {}, {}
    for r in records:
        kind = r.WhichOneof("record_type")
        if kind == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item})
        elif kind in ("config", "run"):  # the run's config comes with its run record, updates in config records
            for i in (r.config if kind == "config" else r.run.config).update:
                config[i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
            if kind == "run":
                info = {"name": r.run.display_name, "project": r.run.project, "tags": list(r.run.tags)}
    out["wandb"] = {"folder": str(offline[-1]), "history": history, "config": config, "run": info}

database = tracking / "trackio"
if database.is_dir():
    os.environ["TRACKIO_DIR"] = str(database)  # read when trackio is imported
    from trackio.sqlite_storage import SQLiteStorage

    out["trackio"] = [
        {"project": p, "run": r, "logs": SQLiteStorage.get_logs(p, r), "config": SQLiteStorage.get_run_config(p, r)}
        for p in SQLiteStorage.get_projects()
        for r in SQLiteStorage.get_runs(p)
    ]

print(json.dumps(out, default=str))
"""


def read_trackers(env: Any, run: Path) -> dict[str, Any]:
    proc = subprocess.run([env.python, "-c", READ_TRACKERS, str(run)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def away_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME (and the XDG folders) in an empty folder for the run, ptsdk's own home and config kept: whatever a
    tracker writes under ~ shows there."""
    from ptsdk.envs import config_path, ptsdk_home

    monkeypatch.setenv("PTSDK_HOME", str(ptsdk_home()))
    monkeypatch.setenv("PTSDK_CONFIG", str(config_path()))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    return home


#: The folders trackers make by default (~/.config/wandb, ~/.cache/mlflow, ./mlruns, ~/.cache/huggingface/trackio,
#: ./runs/... of TensorBoard), and TensorBoard's event files.
TRACKER_FOLDERS = {"wandb", "mlflow", "mlruns", "trackio", "tensorboard", "runs"}


def tracker_leftovers(folder: Path) -> list[str]:
    return sorted(
        str(p)
        for p in folder.rglob("*")
        if TRACKER_FOLDERS & {part.lower() for part in p.relative_to(folder).parts} or "tfevents" in p.name
    )


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7)


def assert_losses(series: list[list[float]], train: list[dict], where: str) -> None:
    """A tracker's (step, loss) series equals metrics.jsonl's train losses, step by step."""
    got = {int(step): value for step, value in series}
    want = {m["step"]: m["loss"] for m in train}
    assert sorted(got) == sorted(want), (where, sorted(got), sorted(want))
    assert all(close(got[s], want[s]) for s in want), (where, got, want)


def job_sha(manifest: dict, backend: str) -> str:
    """The hash ptsdk gives the trackers for the job the run's manifest holds."""
    return str(tracking_record(Job.model_validate(manifest["job"]), backend)["sha256"])


def assert_job(record: dict, job_name: str, backend: str, run: Path) -> None:
    """ptsdk's job record as a tracker holds it: the job, its name and hash, the backend and the run's name."""
    manifest = json.loads((run / "manifest.json").read_text())
    assert (
        record["name"] == job_name and record["backend"] == backend and record["sha256"] == job_sha(manifest, backend)
    )
    assert record["job"] == manifest["job"] and record["run"] == run.name
    assert record == {**json.loads((run / "tracking" / "ptsdk_job.json").read_text()), "run": run.name}


def assert_only_in_run(run: Path, home: Path, cwd: Path) -> None:
    """Every tracker's files are under RUN/tracking: none under ~, the working directory or elsewhere in RUN."""
    assert tracker_leftovers(home) == []
    outside = [p for p in tracker_leftovers(run) if not p.startswith(str(run / "tracking"))]
    assert outside == []
    assert not any((cwd / name).exists() for name in ("mlruns", "wandb", "trackio"))


def check_tensorboard(seen: dict, train: list[dict], job: str, backend: str, run: Path) -> None:
    board = seen["tensorboard"]
    assert_losses(board["scalars"]["train/loss"], train, "tensorboard")
    # transformers' own TensorBoardCallback writes the TrainingArguments (run_name among them) as text "args".
    assert json.loads(board["texts"]["args/text_summary"])["run_name"] == run.name
    assert board["texts"]["ptsdk/run/text_summary"] == run.name
    text = board["texts"]["ptsdk/job/text_summary"]
    assert_job(json.loads(text.removeprefix("```json\n").removesuffix("\n```")), job, backend, run)


def check_mlflow(seen: dict, train: list[dict], job: str, backend: str, run: Path) -> None:
    [found] = seen["mlflow"]
    assert found["experiment"] == job and found["run_name"] == run.name
    tags = found["tags"]
    assert tags["ptsdk.run"] == run.name and tags["ptsdk.job"] == job and tags["ptsdk.backend"] == backend
    assert tags["ptsdk.job_sha256"] == found["job"]["sha256"]
    assert_job(found["job"], job, backend, run)
    assert_losses(found["metrics"]["loss"], train, "mlflow")
    assert found["params"]["run_name"] == run.name  # the Trainer's arguments, as MLflowCallback logs them


def check_wandb(seen: dict, train: list[dict], job: str, backend: str, run: Path) -> None:
    w = seen["wandb"]
    assert Path(w["folder"]).parent == run / "tracking" / "wandb"
    assert w["run"]["name"] == run.name and w["run"]["project"] == job
    assert "ptsdk" in w["run"]["tags"]
    steps = [[h["train/global_step"], h["train/loss"]] for h in w["history"] if "train/loss" in h]
    assert_losses(steps, train, "wandb")
    assert_job(w["config"]["ptsdk"], job, backend, run)
    assert w["config"]["run_name"] == run.name


def check_trackio(seen: dict, train: list[dict], job: str, backend: str, run: Path) -> None:
    [found] = seen["trackio"]
    assert found["project"] == job and found["run"] == run.name
    steps = [[log["train/global_step"], log["train/loss"]] for log in found["logs"] if "train/loss" in log]
    assert_losses(steps, train, "trackio")
    assert_job(found["config"]["ptsdk"], job, backend, run)


EVERY_TRACKER = ["tensorboard", "mlflow", "wandb", "trackio"]


@pytest.mark.trl
def test_trl_run_in_every_tracker(ptsdk, example_job, tmp_path, trl_env, away_home) -> None:
    """One tiny TRL SFT run reporting to TensorBoard, MLflow (local file store), W&B (offline) and Trackio (local
    database): each holds the run's losses, its name and the job."""
    job = example_job("sft_full.yaml", output={"report_to": EVERY_TRACKER})
    run = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "trl", job, run)
    train = trained(manifest, metrics, 5, framework=("trl", "1.16.0"))
    seen = read_trackers(trl_env, run)
    check_tensorboard(seen, train, "sft_full", "trl", run)
    check_mlflow(seen, train, "sft_full", "trl", run)
    check_wandb(seen, train, "sft_full", "trl", run)
    check_trackio(seen, train, "sft_full", "trl", run)
    assert_only_in_run(run, away_home, Path.cwd())


@pytest.mark.axolotl
def test_axolotl_run_in_every_tracker(ptsdk, example_job, tmp_path, axolotl_env, away_home) -> None:
    """One tiny Axolotl full-SFT run reporting to TensorBoard, MLflow (local file store), W&B (offline) and Trackio
    (local database) through Axolotl's own use_* settings: each holds the run's losses, its name and the job."""
    job = example_job("sft_full.yaml", training={"max_steps": 3}, output={"report_to": EVERY_TRACKER})
    run = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "axolotl", job, run)
    train = trained(manifest, metrics, 3, framework=("axolotl", "0.19.0"))
    # The matrix's evidence for a full fine-tune on CPU with Axolotl, too: it counts real tokens, and the model loads.
    assert train[-1]["tokens_seen"] > train[0]["tokens_seen"] > 0
    assert_loads(axolotl_env, run / "model", adapter=False)
    seen = read_trackers(axolotl_env, run)
    check_tensorboard(seen, train, "sft_full", "axolotl", run)
    check_mlflow(seen, train, "sft_full", "axolotl", run)
    check_wandb(seen, train, "sft_full", "axolotl", run)
    check_trackio(seen, train, "sft_full", "axolotl", run)
    assert_only_in_run(run, away_home, Path.cwd())


@pytest.mark.verl
def test_verl_sft_in_tensorboard_wandb_trackio(ptsdk, verl_env, verl_model, tmp_path, away_home) -> None:
    """vERL's SFT trainer (CPU smoke mode) with trainer.logger tensorboard, wandb and trackio: vERL's own Tracking
    writes the run's losses to TensorBoard, to an offline W&B run named after the job, tagged with its hash, and to
    a Trackio run named after the job, with vERL's config."""
    job = tmp_path / "sft_verl.yaml"
    job.write_text(
        yaml.safe_dump(
            {
                "method": {"name": "sft"},
                "model": {"name_or_path": str(verl_model), "dtype": "float32"},
                "adapter": {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
                "data": {"train": {"path": str(EXAMPLES / "data" / "sft_train.jsonl")}, "max_length": 64},
                "training": {
                    "precision": "fp32",
                    "global_batch_size": 8,
                    "micro_batch_size": 4,
                    "learning_rate": 0.002,
                    "max_steps": 3,
                },
                "distributed": {"device": "cpu"},
                "output": {"report_to": ["tensorboard", "wandb", "trackio"]},
            }
        )
    )
    run = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "verl", job, run)
    train = trained(manifest, metrics, 3, framework=("verl", "0.9.1"))
    seen = read_trackers(verl_env, run)
    assert_losses(seen["tensorboard"]["scalars"]["train/loss"], train, "tensorboard")
    w = seen["wandb"]
    assert w["run"]["name"] == "sft_verl" and w["run"]["project"] == "ptsdk"
    assert f"ptsdk-job-{job_sha(manifest, 'verl')}" in w["run"]["tags"]
    assert_losses([[h["_step"], h["train/loss"]] for h in w["history"] if "train/loss" in h], train, "wandb")
    assert w["config"]["trainer"]["logger"] == ["console", "file", "tensorboard", "wandb", "trackio"]
    [found] = seen["trackio"]
    assert found["project"] == "ptsdk" and found["run"] == "sft_verl"
    assert_losses([[log["step"], log["train/loss"]] for log in found["logs"] if "train/loss" in log], train, "trackio")
    assert found["config"]["trainer"]["logger"] == w["config"]["trainer"]["logger"]
    assert_only_in_run(run, away_home, Path.cwd())
