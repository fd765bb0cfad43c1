"""The rows each optimizer step reads when ptsdk lays out the epochs, read back through the frameworks' own samplers
in their own environments (no training): vERL's SFT sampler (torch's DistributedSampler, seed 0, drop_last) and
OpenRLHF's (its DistributedSampler, seed --train.seed), on one and on two data-parallel ranks. Each global step must
hold the rows the Hugging Face Trainer's step holds (trainer_steps, itself checked against accelerate's loader in
TRL's environment): ptsdk's order of each epoch, block by block."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ptsdk.plugins.runtime import epoch_order
from ptsdk.rundir import write_plan
from ptsdk.spec import load_job

#: Run in the framework's environment, in the plan's folder: convert the data, then read every rank's batches the
#: way the framework's SFT trainer builds its sampler and loader; prints each global step's prompts (None: filler).
VERL_READ = """
import json, sys
import pyarrow.parquet as pq
from torch.utils.data import DistributedSampler
from verl_data import convert
counts, errors = convert("verl_data.json")
assert not errors, errors
rows = [r["messages"][0]["content"] for r in pq.read_table("data/train.parquet").to_pylist()]
world, batch = int(sys.argv[1]), int(sys.argv[2])  # vERL's sampler seed is its own (0)
ranks = []
for rank in range(world):
    sampler = DistributedSampler(rows, num_replicas=world, rank=rank, shuffle=True, seed=0, drop_last=True)
    sampler.set_epoch(0)
    got = list(sampler)
    per = batch // world
    ranks.append([got[i : i + per] for i in range(0, len(got) - per + 1, per)])
steps = [sorted(rows[i] for r in ranks for i in r[k]) for k in range(len(ranks[0]))]
print(json.dumps([[None if p == "." else p for p in s] for s in steps]))
"""

OPENRLHF_READ = """
import json, sys
from openrlhf.utils.distributed_sampler import DistributedSampler
from prepare_openrlhf import prepare
spec = json.load(open("openrlhf_data.json"))
problems, summary = prepare(spec)
assert not problems, problems
rows = [json.loads(line)["prompt"] for line in open(spec["train_out"])]
world, batch, seed = (int(a) for a in sys.argv[1:4])
ranks = []
for rank in range(world):
    sampler = DistributedSampler(rows, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(0)
    got = list(sampler)
    per = batch // world  # the micro-batches of one accumulation window on this rank
    ranks.append([got[i : i + per] for i in range(0, len(got) - per + 1, per)])
print(json.dumps([sorted(rows[i] for r in ranks for i in r[k]) for k in range(len(ranks[0]))]))
"""

#: Run in TRL's environment: one epoch of `order` as the Trainer's loader reads it (not drop_last; accelerate shards
#: the micro-batches over several processes, even_batches) and the Trainer groups each process's micro-batches into
#: optimizer steps (the last one short): each step's row indices.
TRAINER_READ = """
import json, sys
from accelerate.data_loader import BatchSamplerShard
from torch.utils.data import BatchSampler
order, world, micro, accumulation = json.loads(sys.argv[1]), *(int(a) for a in sys.argv[2:5])
batches = BatchSampler(order, micro, drop_last=False)
if world == 1:  # accelerate shards only for several processes (prepare_data_loader)
    shards = [list(batches)]
else:
    shards = [list(BatchSamplerShard(batches, world, rank, split_batches=False)) for rank in range(world)]
windows = range(0, len(shards[0]), accumulation)
print(json.dumps([sorted(i for s in shards for b in s[k : k + accumulation] for i in b) for k in windows]))
"""


def job_file(folder: Path, model: Path, rows: int, world: int, **training: Any) -> Path:
    """A job on `rows` prompts "row 0", "row 1", ... in steps of 8 (micro-batches of 2) on `world` GPUs (translated
    only: the data conversion is the same on any device)."""
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"row {i}", "completion": " ok"}) + "\n" for i in range(rows)))
    job = {
        "method": {"name": "sft", "loss_on": "completion"},
        "model": {"name_or_path": str(model)},
        "data": {"train": {"path": str(data)}, "max_length": 64},
        "training": {"global_batch_size": 8, "micro_batch_size": 2, "learning_rate": 0.001, **training},
        "distributed": {"device": "gpu", "gpus_per_node": world},
    }
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def trainer_steps(rows: int, world: int, epochs: int, shuffled: bool = True) -> list[list[str]]:
    """The prompts of each optimizer step (8 rows, micro-batches of 2) of the Hugging Face Trainer on `world`
    processes, epoch by epoch: ptsdk's order, the micro-batches completed to a multiple of the processes with the
    epoch's first rows (accelerate's even_batches), the last step of an epoch short."""
    steps = []
    for epoch in range(epochs):
        order = epoch_order(rows, 42, epoch) if shuffled else list(range(rows))
        unit = 2 * world if world > 1 else 1
        read = [order[i % rows] for i in range(-(-rows // unit) * unit)]
        steps += [sorted(f"row {i}" for i in read[k : k + 8]) for k in range(0, len(read), 8)]
    return steps


def read_steps(backend: Any, env: Any, script: str, job: Path, folder: Path, world: int) -> list[list[str | None]]:
    """The job's plan written to `folder`, its data converted and read back by `script` in the framework's
    environment: each global step's prompts (None: a filler row)."""
    write_plan(backend.translate(load_job(job)), folder)
    argv = [env.python, "-c", script, str(world), "8", "42"]
    r = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.trl
@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("rows", [10, 11])
def test_the_trainers_steps_are_what_accelerate_and_transformers_read(trl_env, world: int, rows: int) -> None:
    """trainer_steps (what the layouts reproduce) against accelerate's own loader of one epoch: 10 rows make whole
    micro-batches of 2, 11 a partial last one (kept on one process; completed with the first row on two)."""
    order = epoch_order(rows, 42, 0)
    argv = [trl_env.python, "-c", TRAINER_READ, json.dumps(order), str(world), "2", str(8 // (2 * world))]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    read = [sorted(f"row {i}" for i in step) for step in json.loads(r.stdout.splitlines()[-1])]
    assert read == trainer_steps(rows, world, epochs=1)


@pytest.mark.verl
@pytest.mark.parametrize("world", [1, 2])
def test_verls_sampler_reads_the_trainers_steps(verl_env, tiny_model, tmp_path: Path, world: int) -> None:
    """10 rows, 2 epochs: every epoch ends in a short step (the Trainer's), which vERL fills up with rows that carry
    no loss token."""
    from ptsdk.backends.verl import VerlBackend

    job = job_file(tmp_path, tiny_model, 10, world, epochs=2)
    steps = read_steps(VerlBackend(), verl_env, VERL_READ, job, tmp_path / "plan", world)
    assert [[p for p in s if p is not None] for s in steps] == trainer_steps(10, world, epochs=2)
    assert [sum(p is None for p in s) for s in steps] == ([0, 4] * 2 if world == 2 else [0, 6] * 2)


@pytest.mark.openrlhf
@pytest.mark.parametrize("world", [1, 2])
def test_openrlhfs_sampler_reads_ptsdks_order_in_whole_steps(openrlhf_env, tiny_model, tmp_path: Path, world) -> None:
    """16 rows (two whole steps an epoch), 3 epochs in one pass of OpenRLHF's sampler; the file's order too."""
    from ptsdk.backends.openrlhf import OpenRLHFBackend

    for shuffled in (True, False):
        job = job_file(tmp_path, tiny_model, 16, world, epochs=3, precision="bf16", shuffle=shuffled)
        steps = read_steps(OpenRLHFBackend(), openrlhf_env, OPENRLHF_READ, job, tmp_path / f"plan-{shuffled}", world)
        assert steps == trainer_steps(16, world, epochs=3, shuffled=shuffled)
