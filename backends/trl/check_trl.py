"""TRL's own validation of a ptsdk translation, run by ptsdk's check harness in the TRL environment.

request: Backend.check_request (workdir, config = trl_config.yaml, launcher, world_size, ...); the harness
checks the torchrun arguments, captures output and turns TRL's parser errors into error lines.

The check runs in one process but parses the config as each of the job's processes would: TRL's batch
rules read the world size from the trainer arguments (GRPOConfig/RLOOConfig.__post_init__:
``num_processes = self.world_size``, trl/trainer/grpo_config.py:1096, rloo_config.py:659), which is
``distributed_state.num_processes`` (transformers/training_args.py:2003-2012), accelerate's PartialState,
which takes ``torch.distributed.get_world_size()`` (accelerate/state.py:304) and starts no process
group of its own when one is initialized (state.py:221, 284). So a job of N
processes is checked as its rank 0 with torchrun's environment variables set and torch's "fake" process
group of size N (rank 0 of N with no peers and no communication; torch/testing/_internal/distributed/fake_pg.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

VERSIONS = ("trl", "transformers", "torch", "peft", "accelerate", "datasets")


@contextlib.contextmanager
def world_of(world_size: int, local_world_size: int) -> Iterator[None]:
    """This process as rank 0 of `world_size` processes (`local_world_size` per node), for argument parsing."""
    if world_size <= 1:
        yield
        return
    import torch.distributed as dist
    import torch.testing._internal.distributed.fake_pg  # noqa: F401  (registers the "fake" backend)

    env = {
        "WORLD_SIZE": str(world_size),
        "RANK": "0",
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": str(local_world_size),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29500",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    dist.init_process_group("fake", store=dist.HashStore(), rank=0, world_size=world_size)
    try:
        yield
    finally:
        # The next request's TrainingArguments resets accelerate's state itself (training_args.py:1872).
        dist.destroy_process_group()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check(request: dict[str, Any]) -> dict[str, Any]:
    import torch
    import train_trl  # the runner beside this script: its parse() is exactly what a run uses

    notes = []
    argv = ["--config", request["config"]]
    if not torch.cuda.is_available():
        # TrainingArguments refuses bf16/GPU settings on a machine without a GPU. That is a
        # verdict on this machine, not on the config: check everything else as if on CPU.
        argv += ["--use_cpu", "true"]
        notes.append("no GPU here: checked with use_cpu forced on (hardware checks skipped)")
    world = int(request.get("world_size") or 1)
    with world_of(world, int(request.get("local_world_size") or world)):
        script, training, _, _ = train_trl.parse(argv)
        if world > 1:
            notes.append(f"checked as rank 0 of {training.world_size} processes")
        if getattr(training, "hf_deepspeed_config", None) is not None:
            # What transformers checks when DeepSpeed starts: every value the DeepSpeed config sets
            # must agree with the trainer's (batch sizes, accumulation, clipping, precision).
            steps = training.max_steps if training.max_steps > 0 else 1000
            training.hf_deepspeed_config.trainer_config_finalize(training, None, steps)
    for ref in script.reward_funcs or []:
        if train_trl.is_reward_model(ref):
            notes += reward_model_notes(ref)
        else:
            train_trl.load_reward(ref)
    return {"notes": notes}


def reward_model_notes(ref: str) -> list[str]:
    """A local reward model's config must load; one without a sequence-classification head gets a new,
    untrained one from AutoModelForSequenceClassification (a hub id is left to the run, as the policy's is)."""
    if not os.path.isdir(ref):
        return [f"reward model {ref}: a hub id, loaded by TRL at start-up"]
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(ref)
    heads = [a for a in config.architectures or [] if a.endswith("ForSequenceClassification")]
    if heads:
        return [f"reward model {ref}: {heads[0]}"]
    return [
        f"reward model {ref}: no sequence-classification head in its config ({', '.join(config.architectures or [])}); "
        "TRL adds an untrained one"
    ]
