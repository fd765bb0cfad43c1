#!/usr/bin/env python
"""Canonical ptsdk records -> the JSONL OpenRLHF reads, checked record by record.

    python prepare_openrlhf.py openrlhf_data.json

Runs in OpenRLHF's environment, in the run directory, before the launch (ptsdk's native check
runs it too, in a scratch copy). It reads ``data.train`` (and ``data.eval``), renames columns,
checks every record and writes ``data/train.jsonl`` (``data/eval.jsonl``) with the keys the
generated flags name:

- SFT: ``prompt``/``completion`` (``--data.input_key``/``--data.output_key``), ``text`` in
  pretrain mode, or ``messages`` (chat); Alpaca records (instruction/input/output) get their prompt
  rendered with the Alpaca template;
- DPO/IPO: ``prompt``/``chosen``/``rejected``; with the chat template OpenRLHF concatenates
  ``prompt + chosen`` as message lists, so strings are wrapped into user/assistant turns here
  (plain strings there would give garbage prompts and still exit 0);
- RL: ``prompt`` and ``ptsdk_columns``, every other column as one JSON string, because
  OpenRLHF hands the reward function a single label per prompt. With images (``images`` in the spec:
  data.images) the prompt's turns are written as parts, ``{type: text, text}`` and one ``{type: image}`` per
  image (a record's listed images go before the first user turn's text when its contents are strings; parts
  that name their file, ``{type: image, path}``, become placeholders and their files the list), and the files,
  made absolute against data.images.root or the data file's folder, go to ``images`` (--data.image_key).
  OpenRLHF's PromptDataset leaves part lists as they are and renders them with the processor's chat template
  (openrlhf/datasets/prompts_dataset.py:26-37); its agent tokenizes the prompt with the files
  (openrlhf/utils/agent.py:211-214).

Message lists are read through the job's ``data.message_keys`` / ``data.role_names`` (ShareGPT's
from/value, human/gpt) and written as OpenRLHF reads them, ``{role, content}``; a ``thinking`` key becomes
``reasoning_content``, which OpenRLHF hands to the chat template with the rest of the message. With
``data.prompt_in_answers`` the shared leading turns of chosen and rejected become the ``prompt`` column and
the rest each answer (ptsdk_runtime's split_implicit_prompt).

With online RL and reward functions it then loads ``ptsdk_reward.py`` the way OpenRLHF does
(its own SingleTurnAgentExecutor) and scores the first record, so a broken reward fails here,
not after the engines started. ``data.eval_split`` holds a seeded fraction of the training records
out into ``data/eval.jsonl`` (the indices datasets' ``train_test_split`` picks). SFT and DPO records are then
laid out (``order``: :func:`lay_out`) so that OpenRLHF's shuffling sampler reads ptsdk's order of every epoch, or
the file's order, in one pass; ptsdk's orders go to ``logs/data_order.jsonl``. A hub dataset's
subset is read with ``datasets.load_dataset(path, subset)``. Bad input: ``field line N: problem``
lines, exit 2.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

from ptsdk_runtime import (  # copied beside this file
    ORDER_LOG,
    BadRecord,
    alpaca_prompt,
    canonical_messages,
    epoch_order,
    iter_records,
    split_implicit_prompt,
)

LABEL_KEY = "ptsdk_columns"
MAX_REPORTED = 20
ROLES = ("system", "user", "assistant", "tool")


def read_records(source: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, record) for each record of a local file or hub dataset (with its subset), in order."""
    split = source.get("split") or "train"
    if source.get("subset"):
        return _subset_records(source["path"], source["subset"], split, source.get("max_samples"))
    return iter_records(source["path"], split, source.get("max_samples"))


def _subset_records(path: str, subset: str, split: str, limit: int | None) -> Iterator[tuple[str, Any]]:
    """A hub dataset's configuration `subset` (datasets' `name`), e.g. openai/gsm8k `main`."""
    from datasets import load_dataset

    for n, row in enumerate(load_dataset(path, subset, split=split), 1):
        if limit is not None and n > limit:
            return
        yield f"row {n}", row


def held_out(count: int, fraction: float, seed: int) -> set[int]:
    """The indices datasets' ``train_test_split(test_size=fraction, seed=seed)`` puts in its test split."""
    import numpy as np

    n_test = math.ceil(fraction * count)
    return {int(i) for i in np.random.default_rng(seed).permutation(count)[:n_test]}


def alpaca(record: dict[str, Any]) -> tuple[str, str]:
    """An Alpaca record's (prompt, output): instruction and optional input rendered with ptsdk_runtime's Alpaca
    prompt (Axolotl's text, the same on every backend)."""
    instruction = _text(record, "instruction")
    extra = record.get("input")
    if extra is not None and not isinstance(extra, str):
        raise BadRecord(f"input: expected a string, got {_kind(extra)}")
    return alpaca_prompt(instruction, extra), _text(record, "output")


# --- one record ----------------------------------------------------------------------------


class Mapping:
    """The job's data.message_keys and data.role_names (empty: messages are read as they are)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.keys: dict[str, str] = dict(spec.get("message_keys") or {})
        self.roles: dict[str, str] = dict(spec.get("role_names") or {})

    def __bool__(self) -> bool:
        return bool(self.keys or self.roles)


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise BadRecord(f"{key}: expected a string, got {_kind(value)}")
    if not value.strip():
        raise BadRecord(f"{key}: is empty")
    return value


def _messages(record: dict[str, Any], key: str, mapping: Mapping | None = None) -> list[dict[str, Any]]:
    """The record's message list at `key`, read through the job's key and role mapping (if any)."""
    value = record.get(key)
    if not isinstance(value, list) or not value:
        raise BadRecord(f"{key}: expected a non-empty list of messages, got {_kind(value)}")
    if not mapping:
        for i, msg in enumerate(value):
            if not isinstance(msg, dict) or msg.get("role") not in ROLES or not isinstance(msg.get("content"), str):
                raise BadRecord(f"{key}.{i}: expected {{'role': one of {', '.join(ROLES)}, 'content': a string}}")
        return value
    role_key, content_key = mapping.keys.get("role", "role"), mapping.keys.get("content", "content")
    if not all(isinstance(msg, dict) for msg in value):
        raise BadRecord(f"{key}: expected a list of {{{role_key!r}, {content_key!r}}} objects")
    out = canonical_messages(value, mapping.keys, mapping.roles)
    for i, (raw, msg) in enumerate(zip(value, out, strict=True)):
        if msg["role"] not in ROLES:
            raise BadRecord(
                f"{key}.{i}.{role_key}: {raw.get(role_key)!r} is none of {', '.join(ROLES)} (after data.role_names); "
                "map it with data.role_names"
            )
        if not isinstance(msg["content"], str):
            raise BadRecord(f"{key}.{i}.{content_key}: expected a string, got {_kind(msg['content'])}")
    return out


def _turns(record: dict[str, Any], key: str, role: str, chat: bool, mapping: Mapping | None = None) -> Any:
    """A string as is (plain text), or as message list (chat: strings become one `role` turn)."""
    value = record.get(key)
    if isinstance(value, list):
        if not chat:
            raise BadRecord(
                f"{key}: is a message list but this job trains on plain text; set model.chat_template "
                "(OpenRLHF then applies it) or give strings"
            )
        return _messages(record, key, mapping)
    text = _text(record, key)
    return [{"role": role, "content": text}] if chat else text


def _kind(value: Any) -> str:
    return "nothing (missing)" if value is None else type(value).__name__


def _image_prompt(
    record: dict[str, Any], images: dict[str, Any], root: str, mapping: Mapping
) -> tuple[list[dict[str, Any]], list[str]]:
    """An RL record's prompt as message parts with one {type: image} per image, and its image files (absolute)."""
    value = record.get("prompt")
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
        raise BadRecord(f"prompt: a job with images needs a non-empty list of messages, got {_kind(value)}")
    messages = canonical_messages(value, mapping.keys, mapping.roles) if mapping else value
    listed = record.get(images["column"])
    if listed is not None and (not isinstance(listed, list) or not all(isinstance(f, str) and f for f in listed)):
        raise BadRecord(f"{images['column']}: expected a list of image file paths, got {_kind(listed)}")
    named: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        if msg.get("role") not in ROLES:
            raise BadRecord(f"prompt.{i}: role {msg.get('role')!r} is none of {', '.join(ROLES)}")
        content = msg.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list) and content:
            parts = []
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    parts.append({"type": "text", "text": part["text"]})
                elif kind == "image":
                    parts.append({"type": "image"})
                    if part.get("path"):
                        named.append(str(part["path"]))
                else:
                    raise BadRecord(f"prompt.{i}.content.{j}: expected {{type: text, text}} or {{type: image}}")
        else:
            raise BadRecord(f"prompt.{i}.content: expected a string or a list of parts, got {_kind(content)}")
        turns.append({**{k: v for k, v in msg.items() if k != "content"}, "content": parts})
    if named and listed:
        raise BadRecord(f"prompt: image parts name their files and {images['column']} lists files too; use one way")
    files = named or list(listed or [])
    placeholders = sum(p["type"] == "image" for t in turns for p in t["content"])
    if placeholders == 0 and files:
        first_user = next((t for t in turns if t["role"] == "user"), None)
        if first_user is None:
            raise BadRecord("prompt: has no user turn to put its images in")
        first_user["content"] = [{"type": "image"} for _ in files] + first_user["content"]
    elif placeholders != len(files):
        raise BadRecord(f"prompt: {placeholders} image parts but {len(files)} image files")
    if not files:
        raise BadRecord(f"{images['column']}: the record has no images (data.images)")
    return turns, [f if os.path.isabs(f) else os.path.abspath(os.path.join(root, f)) for f in files]


def images_root(spec: dict[str, Any], which: str) -> str:
    """The folder a split's relative image paths are under: data.images.root, else the data file's folder."""
    return spec["images"].get("root") or os.path.dirname(os.path.abspath(spec[which]["path"]))


def convert(spec: dict[str, Any], record: Any, root: str = ".") -> dict[str, Any]:
    """The record in OpenRLHF's keys, or BadRecord (`root`: the folder relative image paths are under)."""
    if isinstance(record, BadRecord):
        raise record
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object, got {_kind(record)}")
    record = dict(record)
    for canon, source in (spec.get("columns") or {}).items():
        if source in record:
            record[canon] = record.pop(source)
    family, fmt, chat = spec["family"], spec["format"], spec["chat"]
    mapping = Mapping(spec)
    if family == "sft" and fmt == "messages":
        messages = _messages(record, "messages", mapping)
        if not any(m["role"] == "assistant" for m in messages):
            raise BadRecord("messages: has no assistant turn to train on")
        return {"messages": messages}
    if family == "sft" and fmt == "instruction":
        record["prompt"], record["completion"] = alpaca(record)
    if family == "sft":
        if spec.get("sft_text"):
            return {"text": _text(record, "prompt") + _text(record, "completion")}
        if chat:
            return {
                "prompt": _turns(record, "prompt", "user", True, mapping),
                "completion": _turns(record, "completion", "assistant", True, mapping),
            }
        return {"prompt": _text(record, "prompt"), "completion": _text(record, "completion")}
    if family == "preference" and spec.get("prompt_in_answers"):
        return implicit_prompt(record, mapping)
    if family == "preference":
        return {
            "prompt": _turns(record, "prompt", "user", chat, mapping),
            "chosen": _turns(record, "chosen", "assistant", chat, mapping),
            "rejected": _turns(record, "rejected", "assistant", chat, mapping),
        }
    if family == "rl" and spec.get("images"):
        images = spec["images"]
        turns, files = _image_prompt(record, images, root, mapping)
        # The reward functions get the record's other columns, its images as TRL's do: absolute paths under `images`.
        others = {k: v for k, v in record.items() if k not in ("prompt", images["column"])}
        return {"prompt": turns, images["key"]: files, LABEL_KEY: json.dumps({**others, "images": files})}
    if family == "rl":
        prompt = _turns(record, "prompt", "user", chat, mapping) if chat else _text(record, "prompt")
        others = {k: v for k, v in record.items() if k != "prompt"}
        return {"prompt": prompt, LABEL_KEY: json.dumps(others)}
    raise BadRecord(f"OpenRLHF has no trainer for the {family} family")


def implicit_prompt(record: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """A pair of whole conversations as prompt (their shared leading turns), chosen and rejected (the rest)."""
    for key in ("chosen", "rejected"):
        if not isinstance(record.get(key), list):
            raise BadRecord(
                f"{key}: data.prompt_in_answers needs whole conversations (message lists), got {_kind(record.get(key))}"
            )
    prompt, chosen, rejected = split_implicit_prompt(
        _messages(record, "chosen", mapping), _messages(record, "rejected", mapping)
    )
    if not prompt:
        raise BadRecord("chosen/rejected: their first turns differ, so they share no prompt (data.prompt_in_answers)")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


# --- files ----------------------------------------------------------------------------------


def convert_file(spec: dict[str, Any], which: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(converted records, problems) of data.<which>."""
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    root = images_root(spec, which) if spec.get("images") else "."
    try:
        for where, record in read_records(spec[which]):
            try:
                out.append(convert(spec, record, root))
            except BadRecord as exc:
                problems.append(f"data.{which} {where}: {exc}")
                if len(problems) >= MAX_REPORTED:
                    problems.append(f"data.{which}: stopped after {MAX_REPORTED} bad records")
                    break
    except (OSError, BadRecord) as exc:
        return [], [f"data.{which}.path: cannot read {spec[which]['path']}: {exc}"]
    if not out and not problems:
        problems.append(f"data.{which}.path: {spec[which]['path']} holds no records")
    return out, problems


def repeat_to(records: list[dict[str, Any]], total: int | None) -> list[dict[str, Any]]:
    """The records repeated in order and cut at `total` (OpenRLHF trains whole passes only)."""
    if total is None or not records:
        return records
    return [records[i % len(records)] for i in range(total)]


def epoch_sequence(n: int, order: dict[str, Any]) -> tuple[list[list[int]], list[int]]:
    """(each epoch's order, the record indices of the whole run in reading order): ptsdk's order of each epoch
    (``seed``: ptsdk_runtime.epoch_order; None: the file's order), epoch after epoch; ``epochs`` of them, or cut at
    ``max_steps`` global batches (OpenRLHF has no step limit: it trains the whole pass)."""
    if order["epochs"] is not None:
        epochs = order["epochs"]
    else:
        epochs = -(-order["max_steps"] * order["global_batch"] // n)
    orders = [list(range(n)) if order["seed"] is None else epoch_order(n, order["seed"], e) for e in range(epochs)]
    sequence = [i for o in orders for i in o]
    if order["max_steps"] is not None:
        sequence = sequence[: order["max_steps"] * order["global_batch"]]
    return orders, sequence


def sampler_order(n: int, seed: int, world_size: int) -> list[int]:
    """The positions OpenRLHF's DistributedSampler (shuffle, drop_last: openrlhf/utils/distributed_sampler.py) reads
    in its epoch 0, in the order its global batches take them: torch.randperm(n) from a generator seeded with
    --train.seed, cut to a multiple of the data-parallel size; rank r takes every world_size-th from r, so global
    batch k is the k-th block of the permutation whatever the number of ranks."""
    import torch

    generator = torch.Generator()
    generator.manual_seed(seed)
    positions: list[int] = torch.randperm(n, generator=generator).tolist()
    return positions[: n // world_size * world_size]


def lay_out(records: list[dict[str, Any]], order: dict[str, Any]) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """The records placed so that the sampler's j-th read is the j-th of :func:`epoch_sequence` (a place the sampler
    never reads, past the last multiple of the data-parallel size, holds the sequence's tail); returns them and
    each epoch's order."""
    orders, sequence = epoch_sequence(len(records), order)
    out: list[dict[str, Any] | None] = [None] * len(sequence)
    positions = sampler_order(len(sequence), order["sampler_seed"], order["world_size"])
    for j, position in enumerate(positions):
        out[position] = records[sequence[j]]
    tail = iter(sequence[len(positions) :])
    return [r if r is not None else records[next(tail)] for r in out], orders


def write_order_log(orders: list[list[int]], seed: int, path: str = ORDER_LOG) -> None:
    """ptsdk's order of each epoch, one JSON line each, as the Trainer backends' runners write it."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for epoch, indices in enumerate(orders):
            f.write(json.dumps({"epoch": epoch, "rows": len(indices), "seed": seed, "indices": indices}) + "\n")


def write_jsonl(path: str, records: list[dict[str, Any]]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def sample_reward(reward_file: str, record: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Load the reward file with OpenRLHF's own executor and score one record, as a run would.

    Returns (problems, what was scored)."""
    import asyncio

    from openrlhf.utils.agent import SingleTurnAgentExecutor  # type: ignore[import-not-found]

    executor = SingleTurnAgentExecutor(remote_rm_url=reward_file)
    if executor.reward_func is None:
        return [f"method.rewards: OpenRLHF did not load reward_func from {reward_file}"], {}
    prompt = record["prompt"] if isinstance(record["prompt"], str) else record["prompt"][-1]["content"]
    if isinstance(prompt, list):  # image prompts: the last turn's text parts
        prompt = "".join(p["text"] for p in prompt if p.get("type") == "text")
    columns = json.loads(record[LABEL_KEY])
    completion = " " + str(columns.get("ground_truth", ""))
    answer = asyncio.run(executor._fetch_rewards_via_func([prompt + completion], [prompt], [record[LABEL_KEY]]))
    info = answer[0] if answer else None
    rewards = info.get("rewards") if isinstance(info, dict) else None
    values = [float(x) for x in rewards] if rewards is not None else []
    scored = {"prompt": prompt, "completion": completion, "rewards": values}
    if len(values) != 1 or not all(math.isfinite(v) for v in values):
        return [f"method.rewards: reward_func returned {info!r} for one sample; expected one finite reward"], scored
    return [], scored


def prepare(spec: dict[str, Any], *, reward_file: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """Convert and write every split; score a sample with the reward. Returns (problems, summary)."""
    problems: list[str] = []
    summary: dict[str, Any] = {}
    train, bad = convert_file(spec, "train")
    problems += bad
    evals: list[dict[str, Any]] = []
    if "eval" in spec:
        evals, bad = convert_file(spec, "eval")
        problems += bad
    if problems:
        return problems, summary
    split = spec.get("eval_split")
    if split:
        test = held_out(len(train), split["fraction"], split["seed"])
        if len(test) >= len(train):
            return [f"data.eval_split: {split['fraction']} of {len(train)} records leaves none to train on"], summary
        evals = [r for i, r in enumerate(train) if i in test]
        train = [r for i, r in enumerate(train) if i not in test]
    order = spec.get("order")
    if order:
        repeated, orders = lay_out(train, order)
        summary["epochs"] = len(orders)
        steps, rest = divmod(len(train), order["global_batch"])
        if rest:
            summary["epoch_end"] = (
                f"{len(train)} records make {steps} global batches of {order['global_batch']} and {rest} more: "
                "OpenRLHF's step at each epoch's end takes rows of the next epoch (the Trainer's is short)"
            )
        if order["seed"] is not None:
            write_order_log(orders, order["seed"])
    else:
        repeated = repeat_to(train, spec.get("repeat_to"))
    write_jsonl(spec["train_out"], repeated)
    summary["train_records"] = len(train)
    summary["train_written"] = len(repeated)
    if "eval" in spec or split:
        write_jsonl(spec["eval_out"], evals)
        summary["eval_records"] = len(evals)
    if reward_file and os.path.exists(reward_file):
        bad, scored = sample_reward(reward_file, train[0])
        problems += bad
        summary["reward_sample"] = scored
    return problems, summary


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    problems, summary = prepare(spec, reward_file=spec.get("reward_file"))
    if problems:
        print("error: the data cannot be converted for OpenRLHF", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        sys.exit(2)
    print("prepared for OpenRLHF:", json.dumps(summary))


if __name__ == "__main__":
    main()
