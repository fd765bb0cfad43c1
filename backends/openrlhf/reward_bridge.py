"""ptsdk's reward functions behind OpenRLHF's reward file interface (copied as ptsdk_reward.py).

OpenRLHF (``--reward.remote_url ptsdk_reward.py``) loads this file and calls
``reward_func(queries, prompts, labels)``: ``queries`` are prompt plus completion decoded with
special tokens, ``labels`` the ``--data.label_key`` column. ptsdk's rewards are
``fn(prompts, completions, **columns) -> list[float]`` (the same functions TRL and Axolotl call),
so this file splits each query into its completion, decodes the label (the record's other
columns as JSON, written by prepare_openrlhf.py) into columns, calls every reward and returns
their sum in OpenRLHF's shape: ``{"rewards", "scores", "extra_logs"}``.

The rewards and the model are listed in ptsdk_reward.json beside this file. Standard library
and torch only at module level: OpenRLHF imports it inside its vLLM engine actors.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import torch

# OpenRLHF loads this file by path: its neighbour ptsdk_runtime.py (the loader every backend uses) must be importable.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptsdk_runtime import load_reward  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(HERE, "ptsdk_reward.json")

_rewards: list[tuple[str, Callable[..., Any]]] | None = None
_special: list[str] | None = None


def _config() -> dict[str, Any]:
    with open(SPEC, encoding="utf-8") as f:
        return json.load(f)


def rewards() -> list[tuple[str, Callable[..., Any]]]:
    global _rewards
    if _rewards is None:
        _rewards = [(ref.rsplit(":", 1)[1], load_reward(ref)) for ref in _config()["rewards"]]
    return _rewards


def special_tokens() -> list[str]:
    """The tokenizer's special tokens (EOS, padding...), longest first: they end decoded queries."""
    global _special
    if _special is None:
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(_config()["model"])
            _special = sorted({t for t in tok.all_special_tokens if t}, key=len, reverse=True)
        except Exception:  # no tokenizer to ask: completions keep what the engine decoded
            _special = []
    return _special


def completion_of(query: str, prompt: str) -> str:
    """The generated part of a query, without trailing special tokens."""
    text = query[len(prompt) :] if query.startswith(prompt) else query
    stripped = True
    while stripped:
        stripped = False
        for token in special_tokens():
            if text.endswith(token):
                text, stripped = text[: -len(token)], True
    return text


def columns_of(labels: list[Any]) -> dict[str, list[Any]]:
    """The records' other columns, column-wise (what ptsdk rewards get as **columns)."""
    rows = [json.loads(label) if isinstance(label, str) and label else {} for label in labels]
    keys = sorted({k for row in rows for k in row})
    return {k: [row.get(k) for row in rows] for k in keys}


def reward_func(queries: list[str], prompts: list[str], labels: list[Any]) -> dict[str, Any]:
    completions = [completion_of(q, p) for q, p in zip(queries, prompts, strict=True)]
    columns = columns_of(labels)
    total = torch.zeros(len(queries), dtype=torch.float32)
    logs: dict[str, torch.Tensor] = {}
    for name, fn in rewards():
        values = torch.tensor([float(v) for v in fn(prompts=prompts, completions=completions, **columns)])
        if values.shape != total.shape:
            raise ValueError(f"reward {name} returned {values.numel()} values for {len(queries)} completions")
        total += values
        logs[f"reward/{name}"] = values
    return {"rewards": total, "scores": total, "extra_logs": logs}
