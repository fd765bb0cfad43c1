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


def hf_log_records(path: Path) -> Iterator[MetricRecord]:
    """Normalize the JSONL of transformers `on_log` dicts (plus step, epoch, wall_time_s) that the
    TRL runner and ptsdk's Axolotl plugin write: train, eval and final-summary records."""
    if not path.exists():
        return
    last_tokens = last_time = None
    known = {"loss", "learning_rate", "grad_norm", "reward", "reward_std", "num_tokens"}
    for line in path.read_text().splitlines():
        raw = json.loads(line)
        step = int(raw.pop("step"))
        epoch, wall = raw.pop("epoch", None), raw.pop("wall_time_s", None)
        if "train_runtime" in raw:
            yield MetricRecord(step=step, kind="summary", epoch=epoch, wall_time_s=raw.get("train_runtime"),
                               loss=raw.get("train_loss"), extra=raw)  # fmt: skip
            continue
        kind = "eval" if any(k.startswith("eval_") for k in raw) else "train"
        prefix = "eval_" if kind == "eval" else ""

        def get(key: str, raw: dict[str, Any] = raw, prefix: str = prefix) -> Any:
            return raw.get(prefix + key)

        tokens = get("num_tokens")
        rate = None
        if kind == "train" and tokens is not None and wall is not None:
            if last_tokens is not None and last_time is not None and wall > last_time:
                rate = (tokens - last_tokens) / (wall - last_time)
            last_tokens, last_time = tokens, wall
        yield MetricRecord(
            step=step, kind=kind, epoch=epoch, tokens_seen=int(tokens) if tokens is not None else None,
            loss=get("loss"), learning_rate=raw.get("learning_rate"), grad_norm=raw.get("grad_norm"),
            reward=get("reward"), reward_std=get("reward_std"), tokens_per_s=rate, wall_time_s=wall,
            extra={k: v for k, v in raw.items() if k.removeprefix("eval_") not in known},
        )  # fmt: skip
