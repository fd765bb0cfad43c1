"""ptsdk's PipelineRL domain, copied into the run directory as ``ptsdk_pipelinerl_rollout.py``.

PipelineRL's actor loads problems with ``cfg.dataset_loader(cfg.train_dataset_names, **cfg.dataset_loader_params)``
and turns each into a scored rollout with ``await cfg.actor.rollout_policy(cfg, llm, problem, session)``
(pipelinerl/actor.py:141, 191, 803-808; the counting domain, pipelinerl/domains/counting/counting.py, is the
model). Here the dataset names are ptsdk's JSONL files of ``prompt`` records and the reward is the sum of the job's
reward functions (``file.py:function``, called as TRL calls them: lists of prompts and completions, every other
column as a keyword list). PipelineRL is imported only inside the rollout, so the loader and the scoring run
without it.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOMAIN = "ptsdk"
_FUNCTIONS: dict[str, Callable[..., list[float]]] = {}


def load_problems(dataset_names: list[str], rewards: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every record of the JSONL files named, tagged with its file (PipelineRL's dataset name) and the rewards."""
    problems = []
    for name in dataset_names:
        for line in Path(name).read_text().splitlines():
            if line.strip():
                problems.append({**json.loads(line), "dataset": name, "domain": DOMAIN, "ptsdk_rewards": list(rewards)})
    return problems


def reward_function(ref: str) -> Callable[..., list[float]]:
    """The function a ``path.py:name`` reference names, loaded once per process."""
    if ref not in _FUNCTIONS:
        path, name = ref.rsplit(":", 1)
        spec = importlib.util.spec_from_file_location(f"ptsdk_reward_{len(_FUNCTIONS)}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load reward file {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _FUNCTIONS[ref] = getattr(module, name)
    return _FUNCTIONS[ref]


def score(problem: dict[str, Any], completion: str) -> float:
    """The sum of the problem's reward functions on one completion."""
    extra = {k: [v] for k, v in problem.items() if k not in ("prompt", "dataset", "domain", "ptsdk_rewards")}
    return sum(
        float(reward_function(ref)(prompts=[problem["prompt"]], completions=[completion], **extra)[0])
        for ref in problem["ptsdk_rewards"]
    )


def messages(prompt: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


async def generate_rollout(cfg: Any, llm: Any, problem: dict[str, Any], session: Any) -> Any:
    """One completion of the problem's prompt, scored by the job's reward functions."""
    # PipelineRL is installed only in its own environment, where this runs.
    from pipelinerl.async_llm import llm_async_generate, make_training_text  # type: ignore[import-not-found]
    from pipelinerl.llm import Prompt  # type: ignore[import-not-found]
    from pipelinerl.rollouts import BaseMetrics, RolloutResult  # type: ignore[import-not-found]

    start = time.time()
    call = await llm_async_generate(llm, Prompt(messages=messages(problem["prompt"])), session)
    text = call.output.content or ""
    reward = score(problem, text)
    training_text = make_training_text(llm, call)
    training_text.reward = reward
    metrics = BaseMetrics(reward=reward, success=reward > 0, no_error=bool(text), no_answer=not text)
    return RolloutResult(
        training_texts=[training_text],
        metrics=metrics,
        latency=time.time() - start,
        dataset_name=problem["dataset"],
        domain=DOMAIN,
    )
