"""OpenRLHF's TensorBoard scalars as ptsdk MetricRecords, read without TensorBoard.

OpenRLHF logs a metrics dict per optimizer step to wandb or, with ``--logger.tensorboard_dir``,
to TensorBoard (``train/<key>``, ``eval/<key>``). ptsdk's own interpreter has no TensorBoard, so
this module reads the event files directly: TFRecord framing (length, crc, data, crc) around
``Event`` protobufs whose ``Summary.Value`` carry ``tag`` and ``simple_value`` (what torch's
SummaryWriter.add_scalar writes).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ptsdk.metrics import MetricRecord

#: OpenRLHF's key -> ptsdk's field, first match wins (the mean over the accumulation window first).
LOSS_KEYS = ("loss_mean", "loss", "gpt_loss", "policy_loss")
LR_KEYS = ("lr", "actor_lr")
REWARD_KEYS = ("reward", "score")
GRAD_NORM_KEYS = ("grad_norm", "actor_grad_norm")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message; length-delimited values as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:  # groups are not used by Event
            return
        yield number, wire, value


def _records(path: Path) -> Iterator[bytes]:
    """TFRecord payloads of one event file (a truncated last record is skipped)."""
    data = path.read_bytes()
    pos = 0
    while pos + 12 <= len(data):
        (size,) = struct.unpack_from("<Q", data, pos)
        start = pos + 12
        if start + size + 4 > len(data):
            return
        yield data[start : start + size]
        pos = start + size + 4


def scalars(path: Path) -> Iterator[tuple[int, float, str, float]]:
    """(step, wall time, tag, value) of every scalar in one event file."""
    for record in _records(path):
        step, wall, summaries = 0, 0.0, []
        for number, wire, value in _fields(record):
            if number == 1 and wire == 1:
                (wall,) = struct.unpack("<d", value)
            elif number == 2 and wire == 0:
                step = value
            elif number == 5 and wire == 2:
                summaries.append(value)
        for summary in summaries:
            for number, wire, value in _fields(summary):
                if number != 1 or wire != 2:
                    continue
                tag, simple = None, None
                for n, w, v in _fields(value):
                    if n == 1 and w == 2:
                        tag = v.decode("utf-8", "replace")
                    elif n == 2 and w == 5:
                        (simple,) = struct.unpack("<f", v)
                if tag is not None and simple is not None:
                    yield step, wall, tag, simple


def _first(values: dict[str, float], keys: tuple[str, ...], used: set[str]) -> float | None:
    """The first of `keys` present (recorded in `used`, so extra keeps only the others)."""
    key = next((k for k in keys if k in values), None)
    if key is None:
        return None
    used.add(key)
    return values[key]


def tensorboard_records(folder: Path) -> Iterator[MetricRecord]:
    """One train (or eval) record per logged step, in step order."""
    from ptsdk.metrics import MetricRecord

    by_step: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    walls: dict[tuple[str, int], float] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")) if folder.is_dir() else []:
        for step, wall, tag, value in scalars(path):
            kind, _, key = tag.partition("/")
            if kind not in ("train", "eval") or not key:
                continue
            by_step[(kind, step)][key] = value
            walls.setdefault((kind, step), wall)
    start = min(walls.values(), default=0.0)
    for (kind, step), values in sorted(by_step.items(), key=lambda kv: (kv[0][1], kv[0][0] == "eval")):
        used = {"global_step"}
        yield MetricRecord(
            step=step,
            kind="eval" if kind == "eval" else "train",
            loss=_first(values, LOSS_KEYS, used),
            learning_rate=_first(values, LR_KEYS, used),
            grad_norm=_first(values, GRAD_NORM_KEYS, used),
            reward=_first(values, REWARD_KEYS, used),
            wall_time_s=walls[(kind, step)] - start,
            extra={k: v for k, v in values.items() if k not in used},
        )
