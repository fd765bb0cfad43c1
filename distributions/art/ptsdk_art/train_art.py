"""ptsdk's runner for ART (OpenPipe): reads art_config.json, builds ART's own objects and trains GRPO with them.

    python train_art.py art_config.json

ART is a Python API, not a config file: this runner is its native entry point. ``load(path)`` builds
``art.TrainableModel`` (with ``art.dev.InternalModelConfig``), ``art.TrainConfig`` and ``art.dev.TrainConfig`` from the
config's sections and the rollout settings; check_art.py calls the same ``load`` (what a run builds is what is
checked). ``main`` then needs ART's training backend (``openpipe-art[backend]``: Unsloth and vLLM on a CUDA GPU):
each step samples ``prompts_per_step`` prompts, asks the served model for ``num_generations`` completions of each,
scores them with the job's reward functions, and hands the groups to ``LocalBackend.train``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The sections of art_config.json, each read by one of ART's classes (or, for rollout, by this runner).
SECTIONS = ("model", "internal_config", "train", "train_options", "rollout")
METRICS = "logs/metrics.jsonl"


@dataclass
class Rollout:
    """How this runner makes trajectory groups (ART leaves the rollout to the user's code)."""

    data: str
    rewards: list[str]
    num_generations: int
    prompts_per_step: int
    max_completion_length: int
    steps: int | None = None  # None: epochs over the prompts
    epochs: float | None = None
    temperature: float = 1.0
    seed: int = 0
    system_prompt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Loaded:
    model: Any  # art.TrainableModel
    train: Any  # art.TrainConfig
    train_options: dict[str, Any]  # art.dev.TrainConfig
    rollout: Rollout


#: Names ART's TypedDicts use only under TYPE_CHECKING (art/dev/train.py: the Megatron backend's MoE routing replay),
#: resolved to Any so that pydantic can build their validators here.
TYPE_CHECKING_ONLY = {"MoeRoutingReplayBundle": Any}


def unknown_keys(value: Any, typed: Any, where: str) -> list[str]:
    """Keys of `value` that the TypedDict `typed` (recursively) does not declare: pydantic ignores them."""
    import typing_extensions

    if not isinstance(value, dict) or not typing_extensions.is_typeddict(typed):
        return []
    hints = typing_extensions.get_type_hints(typed, localns=TYPE_CHECKING_ONLY)
    out = [f"{where}.{k}: not a key of {typed.__module__}.{typed.__qualname__}" for k in value if k not in hints]
    for key, sub in value.items():
        if key in hints:
            for option in typing_extensions.get_args(hints[key]) or (hints[key],):
                out += unknown_keys(sub, option, f"{where}.{key}")
    return out


def validated(typed: Any, value: Any) -> Any:
    """`value` through pydantic's validator of ART's TypedDict `typed`."""
    import pydantic

    adapter = pydantic.TypeAdapter(typed)
    adapter.rebuild(_types_namespace=TYPE_CHECKING_ONLY)
    return adapter.validate_python(value)


def load(path: str) -> Loaded:
    import art  # type: ignore[import-not-found]  # ART's environment only
    import art.dev  # type: ignore[import-not-found]

    config = json.loads(Path(path).read_text())
    problems = [f"{k}: not a section of art_config.json ({', '.join(SECTIONS)})" for k in config if k not in SECTIONS]
    problems += unknown_keys(config.get("internal_config", {}), art.dev.InternalModelConfig, "internal_config")
    problems += unknown_keys(config.get("train_options", {}), art.dev.TrainConfig, "train_options")
    problems += [
        f"train.{k}: not a field of art.TrainConfig"
        for k in config.get("train", {})
        if k not in art.TrainConfig.model_fields
    ]
    if problems:
        raise ValueError("; ".join(problems))
    internal = validated(art.dev.InternalModelConfig, config.get("internal_config", {}))
    art.dev.validate_dedicated_config(internal)
    options = validated(art.dev.TrainConfig, config.get("train_options", {}))
    model = art.TrainableModel(**config["model"], _internal_config=internal)
    return Loaded(model, art.TrainConfig(**config.get("train", {})), dict(options), Rollout(**config["rollout"]))


def reward_function(ref: str) -> Callable[..., list[float]]:
    """'file.py:function' or 'module:function'."""
    target, _, name = ref.rpartition(":")
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location(Path(target).stem, target)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    fn: Callable[..., list[float]] = getattr(module, name)
    return fn


def records(path: str) -> list[dict[str, Any]]:
    text = Path(path).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def prompt_messages(record: dict[str, Any], system: str | None) -> list[dict[str, Any]]:
    prompt = record["prompt"]
    turns = list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
    return ([{"role": "system", "content": system}] if system else []) + turns


async def group(loaded: Loaded, client: Any, record: dict[str, Any], rewards: list[Callable[..., list[float]]]) -> Any:
    import art

    r = loaded.rollout
    messages = prompt_messages(record, r.system_prompt)
    response = await client.chat.completions.create(
        model=loaded.model.get_inference_name(),
        messages=messages,
        n=r.num_generations,
        max_tokens=r.max_completion_length,
        temperature=r.temperature,
        logprobs=True,
    )
    completions = [c.message.content or "" for c in response.choices]
    columns = {k: [v] * len(completions) for k, v in record.items() if k != "prompt"}
    scores = [0.0] * len(completions)
    for fn in rewards:
        for i, value in enumerate(
            fn(prompts=[record["prompt"]] * len(completions), completions=completions, **columns)
        ):
            scores[i] += float(value or 0.0)
    return art.TrajectoryGroup(
        art.Trajectory(messages_and_choices=[*messages, choice], reward=score)
        for choice, score in zip(response.choices, scores, strict=True)
    )


async def train(loaded: Loaded) -> None:
    try:
        from art.local import LocalBackend  # type: ignore[import-not-found]
    except ImportError as exc:
        raise SystemExit(
            f"ART's training backend is not installed here ({exc}): it needs openpipe-art[backend] (Unsloth, vLLM) "
            "on a "
            "CUDA GPU; point PTSDK_ART_PYTHON at such an environment"
        ) from None
    r = loaded.rollout
    rows, rewards = records(r.data), [reward_function(ref) for ref in r.rewards]
    rng = random.Random(r.seed)
    backend = LocalBackend(path=loaded.model.base_path)
    await loaded.model.register(backend)
    client = loaded.model.openai_client()
    metrics = Path(METRICS)
    metrics.parent.mkdir(parents=True, exist_ok=True)
    options = dict(loaded.train_options)
    loss_fn = "ppo" if options.pop("ppo", False) else "cispo"  # LocalBackend.train's name for the same choice
    steps = r.steps or math.ceil((r.epochs or 1) * len(rows) / r.prompts_per_step)
    for step in range(await loaded.model.get_step(), steps):
        batch = rng.sample(rows, min(r.prompts_per_step, len(rows)))
        groups = await asyncio.gather(*(group(loaded, client, row, rewards) for row in batch))
        result = await backend.train(
            loaded.model, groups, loss_fn=loss_fn, **loaded.train.model_dump(exclude_none=True), **options
        )
        mean = sum(t.reward for g in groups for t in g.trajectories) / max(1, sum(len(g.trajectories) for g in groups))
        with metrics.open("a") as f:
            f.write(json.dumps({"step": step + 1, "reward": mean, **result.metrics}) + "\n")


if __name__ == "__main__":
    asyncio.run(train(load(sys.argv[1])))
