"""`ptsdk new`: a first job file for a method, commented, with sensible defaults, valid as written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, get_args

from ptsdk.errors import PtsdkError
from ptsdk.spec.method import METHOD_NAMES, MethodSpec, _OnlineRL

# Per method: the learning rate, batch and method block a first run usually starts from (LoRA).
_METHOD_BLOCK = {
    "sft": "  name: sft\n  loss_on: completion        # loss on the answer only; 'all' trains on the prompt too\n",
    "dpo": "  name: dpo\n  beta: 0.1                  # strength of the pull towards the reference model\n"
    "  loss_type: sigmoid\n",
    "ipo": "  name: ipo\n  beta: 0.1\n",
    "orpo": "  name: orpo\n  beta: 0.1                  # weight of the odds-ratio term (no reference model)\n",
    "simpo": "  name: simpo\n  beta: 2.0\n  gamma: 0.5                 # target reward margin\n",
    "cpo": "  name: cpo\n  beta: 0.1\n",
    "kto": "  name: kto\n  beta: 0.1\n  desirable_weight: 1.0\n  undesirable_weight: 1.0\n",
}
_LEARNING_RATE = {"sft": 2e-4, "grpo": 1e-5, "rloo": 1e-5, "ppo": 1e-6, "reinforce_pp": 1e-6}
_DATA_HINT = {
    "sft": "prompt/completion records, or messages (chat)",
    "preference": "prompt/chosen/rejected records",
    "unpaired_preference": "prompt/completion/label (true = desirable) records",
    "rl": "prompt records (plus ground_truth, passed to the reward function)",
}


# The spec's own model of each method (its family and defaults): name -> class.
_METHODS: dict[str, Any] = {
    get_args(c.model_fields["name"].annotation)[0]: c for c in get_args(get_args(MethodSpec)[0])
}


def _relative(target: str, base: Path) -> str:
    """A local path as the job file will name it (relative to the job's folder); hub ids unchanged."""
    path = Path(target).expanduser()
    if not path.exists():
        return target
    target_abs, base_abs = path.resolve(), base.resolve()
    # relative when the two share a folder below the root (a project), absolute across unrelated trees
    if os.path.commonpath([target_abs, base_abs]) == target_abs.anchor:
        return str(target_abs)
    return os.path.relpath(target_abs, base_abs)


def _looks_local(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or Path(text).expanduser().exists()


def _check_local(model: str, data: str, reward: str | None) -> None:
    from ptsdk.spec.data import LOCAL_SUFFIXES

    if _looks_local(model) and not Path(model).expanduser().is_dir():
        raise PtsdkError(f"--model {model}: no such folder (give a local model folder or a hub id like org/name)")
    if (data.endswith(LOCAL_SUFFIXES) or _looks_local(data)) and not Path(data).expanduser().is_file():
        raise PtsdkError(f"--data {data}: no such file (give a .jsonl/.json/.parquet file or a hub dataset id)")
    target = (reward or "").rpartition(":")[0]
    if target.endswith(".py") and not Path(target).expanduser().is_file():
        raise PtsdkError(f"--reward {reward}: no such file {target}")


def _reward_ref(reward: str, base: Path) -> str:
    target, _, fn = reward.rpartition(":")
    return f"{_relative(target, base)}:{fn}" if target.endswith(".py") else reward


def _first_record_keys(data: Path) -> set[str]:
    try:
        with data.open("rb") as f:
            line = f.readline(1 << 20)
        record = json.loads(line)
    except (OSError, ValueError):
        return set()
    return set(record) if isinstance(record, dict) else set()


def _has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()


def job_text(
    method: str,
    model: str,
    data: str,
    out: Path,
    *,
    reward: str | None = None,
    device: str | None = None,
    name: str | None = None,
) -> str:
    """The YAML text of a new job (commented)."""
    if method not in METHOD_NAMES:
        raise PtsdkError(f"--method {method}: not a method; choose one of {', '.join(METHOD_NAMES)}")
    cls = _METHODS[method]
    family = cls.family
    if family == "rl" and not reward:
        raise PtsdkError(
            f"--method {method}: online RL needs a reward; pass --reward rewards.py:function "
            "(fn(prompts, completions, **columns) -> list[float])"
        )
    if family != "rl" and reward:
        raise PtsdkError(f"--reward: {method} learns from its data, not from a reward function; remove --reward")
    _check_local(model, data, reward)
    base = out.parent
    device = device or ("gpu" if _has_gpu() else "cpu")
    precision = "bf16" if device == "gpu" else "fp32"
    lr = _LEARNING_RATE.get(method, 5e-6)
    keys = _first_record_keys(Path(data).expanduser()) if Path(data).expanduser().is_file() else set()
    fmt = "  format: messages\n" if family == "sft" and "messages" in keys and "prompt" not in keys else ""
    if issubclass(cls, _OnlineRL):
        fields = cls.model_fields
        gens, kl = fields["num_generations"].default, fields["kl_coef"].default
        method_block = (
            f"  name: {method}\n"
            f"  num_generations: {gens}            # completions sampled per prompt\n"
            "  max_prompt_length: 512\n"
            "  max_completion_length: 256\n"
            f"  kl_coef: {kl}                  # KL penalty to the reference policy (0: no reference model)\n"
            f"  rewards: [{json.dumps(_reward_ref(reward or '', base))}]   # fn(prompts, completions, **columns)\n"
        )
        batch = max(8, gens * 2)
        micro = max(1, min(gens, 4))
    else:
        method_block = _METHOD_BLOCK[method]
        batch, micro = 16, 2
    name_line = f"name: {name}\n" if name else ""
    return (
        f"# A {method} job written by `ptsdk new`. Check it with `ptsdk validate {out.name} -b BACKEND`;\n"
        f"# `ptsdk matrix --job {out.name}` shows which backends can run it; `ptsdk schema` documents every field.\n"
        f"{name_line}"
        "method:\n"
        f"{method_block}"
        "model:\n"
        f"  name_or_path: {json.dumps(_relative(model, base))}   # local folder or hub id\n"
        "  dtype: auto                # load the weights in the checkpoint's dtype\n"
        "adapter:                     # LoRA: small, fast; type: full trains every weight\n"
        "  type: lora\n"
        "  r: 16\n"
        "  alpha: 32\n"
        "data:\n"
        f"  train: {{path: {json.dumps(_relative(data, base))}}}   # {_DATA_HINT[family]}\n"
        f"{fmt}"
        "  max_length: 1024           # longest tokenized example kept (longer ones are cut)\n"
        "training:\n"
        f"  global_batch_size: {batch}       # sequences per optimizer step, across all devices\n"
        f"  micro_batch_size: {micro}         # per device per forward pass; accumulation is derived\n"
        f"  learning_rate: {lr:g}\n"
        "  lr_scheduler: cosine\n"
        "  warmup_ratio: 0.05\n"
        "  epochs: 1\n"
        f"  precision: {precision}\n"
        "  seed: 42\n"
        "distributed:\n"
        f"  device: {device}\n"
        "  gpus_per_node: 1\n"
        "output:\n"
        "  dir: runs                  # run directories: runs/NAME-BACKEND-TIME\n"
        "  logging_steps: 1\n"
    )


def write_new_job(out: Path, text: str) -> None:
    """Write the job, all or nothing, never over an existing file, after checking it loads as written."""
    from ptsdk import api
    from ptsdk.rundir import write_new_file

    def valid(tmp: Path) -> None:  # the spec, and the data and model preflight `ptsdk validate` runs
        try:
            api.validate(tmp)
        except PtsdkError as exc:
            raise type(exc)(
                f"{out}: the job would not be valid as written; nothing was written", lines=exc.lines
            ) from None

    write_new_file(out, text, check=valid)
