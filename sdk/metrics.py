"""ptsdk's normalized metric record: one schema for every backend."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass
class MetricRecord:
    step: int
    kind: Literal["train", "eval", "summary"] = "train"
    epoch: float | None = None
    tokens_seen: int | None = None  # real (non-pad) tokens consumed so far, across all processes
    loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    reward: float | None = None
    reward_std: float | None = None
    tokens_per_s: float | None = None
    wall_time_s: float | None = None  # since the start of training
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        data = {k: clean(v) for k, v in asdict(self).items()}
        data["extra"] = {k: clean(v) for k, v in self.extra.items()}
        return json.dumps(data, sort_keys=True)


def write_metrics(path: Path, records: Iterable[MetricRecord]) -> int:
    tmp = path.with_suffix(".jsonl.tmp")
    n = 0
    with tmp.open("w") as f:
        for rec in records:
            f.write(rec.to_json() + "\n")
            n += 1
    tmp.replace(path)
    return n


def read_metrics(path: Path) -> Iterator[MetricRecord]:
    with path.open() as f:
        for line in f:
            if line.strip():
                yield MetricRecord(**json.loads(line))


def nonfinite_problem(records: Iterable[MetricRecord]) -> str | None:
    """Why a run's numbers are not usable, or None: the first logged loss that is NaN or infinite, or
    trained weights found non-finite (the runner's check at the end of training, in the summary record)."""
    weights = None
    for rec in records:
        if rec.kind in ("train", "eval") and rec.loss is not None and not math.isfinite(rec.loss):
            what = "eval loss" if rec.kind == "eval" else "loss"
            return f"{what} became {_word(rec.loss)} at step {rec.step}"
        if rec.kind == "summary" and rec.extra.get("weights_finite") is False:
            name = rec.extra.get("nonfinite_parameter")
            weights = "the trained weights hold non-finite values" + (f" (first: {name})" if name else "")
    return weights


def _word(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
