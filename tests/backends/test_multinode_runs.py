"""A two-node TRL run as a SkyPilot task runs it: one `ptsdk run` per node, each with its own run directory,
meeting at torchrun's c10d rendezvous (here both nodes are this machine, on 127.0.0.1). The node of global rank 0
holds the model and the metrics; the other node's run succeeds too, and says where they are."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import read_run, trained

pytestmark = pytest.mark.trl


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_each_node_runs_ptsdk_and_only_rank_zeros_node_holds_the_model(example_job, tmp_path, trl_env) -> None:
    two_nodes = {"nodes": 2, "gpus_per_node": 1, "master_addr": "127.0.0.1", "master_port": free_port()}
    job = example_job("sft_lora.yaml", training={"max_steps": 3}, distributed=two_nodes)
    runs = [tmp_path / f"node{i}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ptsdk", "run", str(job), "-b", "trl", "--run-dir", str(run), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in runs
    ]
    said = [p.communicate(timeout=600) for p in procs]
    for proc, run, (_, err) in zip(procs, runs, said, strict=True):
        log = (run / "logs" / "backend.log").read_text() if (run / "logs" / "backend.log").exists() else ""
        assert proc.returncode == 0, err + log[-3000:]
    ranks = [sorted(p.stem for p in (run / "logs" / "ranks").glob("*.json")) for run in runs]
    assert sorted(ranks) == [["0"], ["1"]]  # one process per node, world size 2
    head, other = (runs[0], runs[1]) if ranks[0] == ["0"] else (runs[1], runs[0])
    manifest, metrics = read_run(head)
    train = trained(manifest, metrics, 3, framework=("trl", "1.16.0"))
    assert train[-1]["loss"] < train[0]["loss"] and (head / "model" / "adapter_model.safetensors").is_file()
    assert "rank_zero_elsewhere" not in manifest
    manifest = json.loads((other / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["exit_code"] == 0
    assert "rank 0, which saves the model and logs the metrics, ran on another node" in manifest["rank_zero_elsewhere"]
    assert not (other / "model").exists()
    rank_one = json.loads((other / "logs" / "ranks" / "1.json").read_text())
    assert rank_one["world_size"] == 2
    assert Path(head / "logs" / "ranks" / "0.json").is_file()
