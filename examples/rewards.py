"""Reward functions for the examples (arithmetic, and the colour of a picture). Referenced from jobs as
`../rewards.py:correct`."""

from __future__ import annotations

import re


def _text(completion: object) -> str:
    # Conversational completions arrive as a list of messages.
    if isinstance(completion, list):
        return " ".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def correct(prompts: list, completions: list, ground_truth: list[str] | None = None, **kwargs: object) -> list[float]:
    """1.0 when the first number in the completion is the right sum, else 0.0."""
    truths = ground_truth or [""] * len(completions)
    out = []
    for completion, truth in zip(completions, truths, strict=False):
        match = re.search(r"-?\d+", _text(completion))
        out.append(1.0 if match and match.group() == str(truth) else 0.0)
    return out


def short(prompts: list, completions: list, **kwargs: object) -> list[float]:
    """Prefers short answers: 1.0 for up to 3 characters, falling to 0 at 20."""
    return [max(0.0, min(1.0, (20 - len(_text(c).strip())) / 17)) for c in completions]


def digits(prompts: list, completions: list, **kwargs: object) -> list[float]:
    """The share of the completion's non-space characters that are digits: a dense reward for answering with
    numbers, which the tiny random model learns in a few GRPO steps (`correct` needs arithmetic it lacks)."""
    out = []
    for c in completions:
        chars = [ch for ch in _text(c) if not ch.isspace()]
        out.append(sum(ch.isdigit() for ch in chars) / len(chars) if chars else 0.0)
    return out


def colour(prompts: list, completions: list, ground_truth: list[str] | None = None, **kwargs: object) -> list[float]:
    """For the picture examples: 1.0 when the completion names the picture's colour; otherwise half the share of
    its non-space characters that are letters of that colour's name (a dense signal that depends on the picture,
    which the tiny random model can climb in a few GRPO steps; naming the colour is out of its reach)."""
    truths = ground_truth or [""] * len(completions)
    out = []
    for completion, truth in zip(completions, truths, strict=False):
        text = _text(completion).lower()
        chars = [ch for ch in text if not ch.isspace()]
        if truth and truth in text:
            out.append(1.0)
        else:
            out.append(0.5 * sum(ch in truth for ch in chars) / len(chars) if chars and truth else 0.0)
    return out
