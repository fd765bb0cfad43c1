"""The job's reward functions served through vERL's ``custom_reward_function`` interface.

vERL calls ``compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs)`` once per
completion. ptsdk's reward functions (the same ``file.py:fn`` a TRL or Axolotl job uses) take
``fn(prompts, completions, **columns)`` and return one float per completion. This adapter calls each
with a batch of one: the original prompt and columns (kept as JSON in ``extra_info["ptsdk"]`` by
verl_data.py), the completion as text (as a message list when the prompt was a chat, as TRL passes it),
and returns the sum, as TRL sums several reward functions.

The functions are listed in verl_reward.json beside this file. Copied into the run directory by ptsdk.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# vERL loads this file by path: its neighbour ptsdk_runtime.py (the loader every backend uses) must be importable.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptsdk_runtime import load_reward  # noqa: E402

_FUNCTIONS: list[Any] | None = None


def functions() -> list[Any]:
    global _FUNCTIONS
    if _FUNCTIONS is None:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "verl_reward.json")) as f:
            _FUNCTIONS = [load_reward(ref) for ref in json.load(f)["rewards"]]
    return _FUNCTIONS


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **kwargs: Any
) -> float:
    original = json.loads((extra_info or {}).get("ptsdk") or "{}")
    prompt = original.get("prompt", "")
    columns = original.get("columns") or {"ground_truth": ground_truth}
    completion: Any = [{"role": "assistant", "content": solution_str}] if isinstance(prompt, list) else solution_str
    total = 0.0
    for fn in functions():
        scores = fn([prompt], [completion], **{k: [v] for k, v in columns.items()})
        if len(scores) != 1:
            raise ValueError(f"reward function {fn.__name__} returned {len(scores)} scores for 1 completion")
        total += float(scores[0]) if scores[0] is not None else 0.0
    return total
