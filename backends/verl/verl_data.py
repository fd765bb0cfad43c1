#!/usr/bin/env python
"""ptsdk's canonical records -> vERL's parquet layouts. Runs in vERL's environment (datasets, pyarrow).

    python verl_data.py verl_data.json        # a Plan `prepare` command, in the run directory

verl_data.json: {"kind": "sft"|"rl", "format": ..., "columns": {canonical: source}, "message_keys": {canonical:
key}, "role_names": {data's role: canonical role}, "splits": {name: {path,
max_samples, out, layout, hold_out}}, ...}. ``hold_out`` ({fraction, seed, out, name}: data.eval_split) writes
that seeded share of the split's records, as datasets' train_test_split picks it, to a second file; both keep
the file's order. Written by ptsdk's vERL backend; check_verl.py calls :func:`convert` too, so
the native check sees exactly what a run trains on.

- Messages are read through the job's ``data.message_keys`` / ``data.role_names`` (ptsdk_runtime's
  ``canonical_messages``: ShareGPT's from/value, human/gpt become role/content, user/assistant); a ``thinking``
  key becomes ``reasoning_content``, which vERL's SFT dataset hands to the chat template with the message.
- SFT: one ``messages`` column (vERL's MultiTurnSFTDataset). prompt/completion records become a user
  turn and an assistant turn; chat records are kept as they are; Alpaca records (``instruction``) become a
  user turn holding Axolotl's Alpaca prompt text and an assistant turn holding the output (the backend
  gives vERL a chat template that renders the two as plain text, the output followed by EOS).
  vERL's SFT trainer always shuffles (``DistributedSampler(shuffle=True)``, seed 0); for a job that keeps the
  file's order the rows are laid out so that this sampler's first epoch draws them in file order (layout
  ``sampler_file_order``): every global batch holds the same records as a sequential reader's, whatever the
  number of GPUs.
  When ptsdk owns the order (layout ``epochs``: see :func:`epoch_layout`), every epoch the run reads is laid
  out as one long pass instead, so that this sampler's one epoch reads each of ptsdk's epochs in turn, step for
  step as the Hugging Face Trainer reads them (ptsdk's seeded permutation of each epoch, or the file's order);
  the order is written to ``logs/data_order.jsonl`` and the layout to ``data/train_layout.json``.
  Then the rows are tokenized by vERL's own SFT dataset class and fingerprinted like every backend's
  (``logs/tokenized_data.json``, in file order), so ``ptsdk compare`` can check the token sequences.
- RL: ``data_source``, ``prompt`` (a chat list), ``ability``, ``reward_model {style, ground_truth}``,
  ``extra_info {index, ptsdk}``; ``ptsdk`` holds the prompt (messages read through the mapping) and every
  other column as JSON, so verl_reward.py can call the job's reward function with exactly what TRL would pass it.
  With images (``images`` in the spec: data.images) each row also holds ``images``, the record's image files as
  absolute paths (against data.images.root or the data file's folder), and the prompt's string contents carry one
  ``<image>`` per image, where vERL's RLHFDataset puts {type: image, image: PATH} parts (rl_dataset.py:299-384):
  before the first user turn's text when the record's contents are strings, in place of each {type: image} part
  when they are lists of parts (text parts joined in order; a part that names its file adds it to the list).

Nothing is dropped silently: a bad record is an error naming its line, and the written row count
is checked against the records read. Exit 2 with ``data.<split>.path: line N: problem`` lines.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from ptsdk_runtime import (  # copied beside this file
    ORDER_LOG,
    alpaca_prompt,
    canonical_messages,
    epoch_order,
    iter_records,
)

DATA_SOURCE = "ptsdk"
ROLES = ("system", "user", "assistant", "tool")
#: What fills the last optimizer step of an epoch up to vERL's fixed global batch (layout ``epochs``): one user
#: turn, no assistant turn, so no token of it is trained on. vERL's sft_loss divides the summed loss by the loss
#: tokens of the whole global batch, so such a row changes neither the loss nor the gradient of its step.
FILLER_ROW = {"messages": [{"role": "user", "content": "."}]}
#: The layout of the training rows (layout ``epochs``), beside the parquet file.
LAYOUT_FILE = os.path.join("data", "train_layout.json")


def read_records(path: str, columns: dict[str, str], limit: int | None) -> list[tuple[str, Any]]:
    """(where, record) pairs with the job's columns renamed to the canonical names."""
    renames = {source: canonical for canonical, source in columns.items()}
    return [
        (where, {renames.get(k, k): v for k, v in r.items()} if isinstance(r, dict) else r)
        for where, r in iter_records(path, limit=limit)
    ]


class Mapping:
    """The job's message key and role names (data.message_keys, data.role_names); empty: canonical data."""

    def __init__(self, keys: dict[str, str] | None = None, roles: dict[str, str] | None = None) -> None:
        self.keys, self.roles = keys or {}, roles or {}

    def messages(self, value: list[Any]) -> list[Any]:
        if not (self.keys or self.roles) or not all(isinstance(m, dict) for m in value):
            return value  # canonical already, or not messages (chat() says which item)
        return canonical_messages(value, self.keys, self.roles)


def chat(value: Any, what: str, mapping: Mapping | None = None) -> list[dict[str, str]]:
    """A list of {role, content[, reasoning_content]} messages, read through the job's mapping and checked."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{what} must be a non-empty list of {{role, content}} messages")
    mapping = mapping or Mapping()
    value, thinking = mapping.messages(value), "thinking" in mapping.keys
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"{what}[{i}] must be {{role: {'|'.join(ROLES)}, content: str}}, got {m!r}")
        item = {"role": m["role"], "content": m["content"]}
        if thinking and isinstance(m.get("reasoning_content"), str):  # data.message_keys.thinking
            item["reasoning_content"] = m["reasoning_content"]
        out.append(item)
    return out


def as_prompt(value: Any, mapping: Mapping | None = None) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value:
            raise ValueError("prompt is empty")
        return [{"role": "user", "content": value}]
    return chat(value, "prompt", mapping)


def alpaca(record: dict[str, Any]) -> list[dict[str, str]]:
    """An Alpaca record as a user turn (Axolotl's prompt text) and an assistant turn (the output)."""
    for key in ("instruction", "output"):
        if not isinstance(record.get(key), str):
            raise ValueError(f"{key} must be a string (instruction records have instruction, input, output)")
    text = record.get("input") or ""
    if not isinstance(text, str):
        raise ValueError(f"input must be a string or absent, got {type(text).__name__}")
    prompt = alpaca_prompt(record["instruction"], text)
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"]}]


def sft_row(record: dict[str, Any], fmt: str, mapping: Mapping | None = None) -> dict[str, Any]:
    if fmt == "messages":
        messages = chat(record.get("messages"), "messages", mapping)
    elif fmt == "instruction":
        messages = alpaca(record)
    else:
        for key in ("prompt", "completion"):
            if key not in record:
                raise ValueError(f"missing field {key!r} (prompt_completion records have prompt and completion)")
        completion = record["completion"]
        if isinstance(completion, str):
            completion = [{"role": "assistant", "content": completion}]
        messages = as_prompt(record["prompt"], mapping) + chat(completion, "completion", mapping)
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("no assistant turn: nothing to train on")
    return {"messages": messages}


def rl_row(record: dict[str, Any], index: int, style: str = "rule", mapping: Mapping | None = None) -> dict[str, Any]:
    if "prompt" not in record:
        raise ValueError("missing field 'prompt' (prompt records have prompt and, for most rewards, ground_truth)")
    prompt = as_prompt(record["prompt"], mapping)
    truth = record.get("ground_truth")
    columns = {k: v for k, v in record.items() if k != "prompt"}
    return {
        "data_source": DATA_SOURCE,
        "prompt": prompt,
        "ability": "ptsdk",
        "reward_model": {
            "style": style,
            "ground_truth": "" if truth is None else (truth if isinstance(truth, str) else json.dumps(truth)),
        },
        # JSON keeps every value's type whatever the columns hold (parquet structs need one schema).
        # The reward function gets the prompt as the model saw it (messages read through the job's mapping).
        "extra_info": {
            "index": index,
            "ptsdk": json.dumps(
                {"prompt": record["prompt"] if isinstance(record["prompt"], str) else prompt, "columns": columns}
            ),
        },
    }


#: The placeholders vERL's RLHFDataset splits every string content on (rl_dataset.py:330): text holding one would
#: be read as a picture.
PLACEHOLDERS = ("<image>", "<video>", "<audio>")


def image_prompt(value: Any, files: Any, column: str, root: str, mapping: Mapping | None = None) -> tuple[list, list]:
    """An RL prompt with images as vERL reads it: (messages whose string contents carry one <image> per image,
    the image files as absolute paths)."""
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
        raise ValueError("prompt must be a non-empty list of {role, content} messages in a job with images")
    messages = (mapping or Mapping()).messages(value)
    if files is not None and (not isinstance(files, list) or not all(isinstance(f, str) and f for f in files)):
        raise ValueError(f"{column} must be a list of image file paths, got {files!r}")
    named: list[str] = []
    out: list[dict[str, str]] = []
    placeholders = 0
    for i, m in enumerate(messages):
        if m.get("role") not in ROLES:
            raise ValueError(f"prompt[{i}] must be {{role: {'|'.join(ROLES)}, content}}, got {m!r}")
        content = m.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list) and content:
            pieces = []
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    pieces.append(part["text"])
                elif kind == "image":
                    pieces.append("<image>")
                    placeholders += 1
                    if part.get("path"):
                        named.append(str(part["path"]))
                else:
                    raise ValueError(f"prompt[{i}].content[{j}] must be {{type: text, text}} or {{type: image}}")
            text = "".join(pieces)
        else:
            raise ValueError(f"prompt[{i}].content must be a string or a list of parts, got {content!r}")
        stripped = text.replace("<image>", "") if isinstance(content, list) else text
        for tag in PLACEHOLDERS:
            if tag in stripped:
                raise ValueError(f"prompt[{i}] holds the text {tag}, which vERL reads as a placeholder")
        out.append({"role": m["role"], "content": text})
    if named and files:
        raise ValueError(f"image parts name their files and {column} lists files too; use one way")
    paths = named or list(files or [])
    if not paths:
        raise ValueError(f"{column}: the record has no images (data.images)")
    if placeholders == 0:
        first_user = next((m for m in out if m["role"] == "user"), None)
        if first_user is None:
            raise ValueError("prompt has no user turn to put its images in")
        first_user["content"] = "<image>" * len(paths) + first_user["content"]
    elif placeholders != len(paths):
        raise ValueError(f"prompt has {placeholders} image parts but {len(paths)} image files")
    return out, [f if os.path.isabs(f) else os.path.abspath(os.path.join(root, f)) for f in paths]


def image_rl_row(
    record: dict[str, Any], index: int, images: dict[str, Any], root: str, style: str, mapping: Mapping | None
) -> dict[str, Any]:
    """An RL row with images: rl_row's layout, the prompt with <image> placeholders and the files in
    images["key"]; the reward functions get the record's other columns and its images as absolute paths."""
    if "prompt" not in record:
        raise ValueError("missing field 'prompt' (prompt records have prompt and, for most rewards, ground_truth)")
    column = images["column"]
    prompt, files = image_prompt(record["prompt"], record.get(column), column, root, mapping)
    rest = {k: v for k, v in record.items() if k != column}
    row = rl_row({**rest, "prompt": "."}, index, style, mapping)  # every other field as a text-only row has it
    ptsdk = json.loads(row["extra_info"]["ptsdk"])
    ptsdk["prompt"] = (mapping or Mapping()).messages(record["prompt"])
    ptsdk["columns"] = {**ptsdk["columns"], "images": files}
    return {
        **row,
        "prompt": prompt,
        images["key"]: files,
        "extra_info": {**row["extra_info"], "ptsdk": json.dumps(ptsdk)},
    }


def convert_split(spec: dict[str, Any], name: str, split: dict[str, Any], root: str) -> tuple[int, list[str]]:
    """Convert one split; returns (rows written, error lines)."""
    field = f"data.{name}.path"
    try:
        records = read_records(split["path"], spec.get("columns") or {}, split.get("max_samples"))
    except (OSError, ValueError) as exc:
        return 0, [f"{field}: cannot read {split['path']}: {exc}"]
    rows, errors = [], []
    mapping = Mapping(spec.get("message_keys"), spec.get("role_names"))
    images = spec.get("images")
    folder = (images.get("root") or os.path.dirname(os.path.abspath(split["path"]))) if images else ""
    for i, (where, record) in enumerate(records):
        try:
            if isinstance(record, Exception):
                raise record
            if not isinstance(record, dict):
                raise ValueError(f"a record is a JSON object, got {type(record).__name__}")
            if spec["kind"] == "sft":
                rows.append(sft_row(record, spec["format"], mapping))
            elif images:
                rows.append(image_rl_row(record, i, images, folder, spec.get("reward_style", "rule"), mapping))
            else:
                rows.append(rl_row(record, i, spec.get("reward_style", "rule"), mapping))
        except ValueError as exc:
            errors.append(f"{field}: {where}: {exc}")
    if not records:
        errors.append(f"{field}: {split['path']} holds no records")
    if errors:
        return 0, errors[:20] + ([f"{field}: ... and {len(errors) - 20} more"] if len(errors) > 20 else [])
    expected = len(records)
    hold_out = split.get("hold_out")
    if hold_out:
        keep, held = held_out_indices(len(rows), hold_out["fraction"], hold_out["seed"])
        if not keep or not held:
            return 0, [f"data.eval_split: {hold_out['fraction']} of {len(rows)} records leaves an empty split"]
        held_rows = [rows[i] for i in held]
        if spec["kind"] == "rl":
            held_rows = [{**r, "extra_info": {**r["extra_info"], "index": j}} for j, r in enumerate(held_rows)]
        n, problems = write_rows(held_rows, root, hold_out["out"], field)
        split["held_out_rows"] = n
        if problems:
            return 0, problems
        rows, expected = [rows[i] for i in keep], len(keep)
    if split.get("layout") == "sampler_file_order":
        rows = sampler_file_order(rows, spec["sampler_seed"])
    elif split.get("layout") == "epochs":
        layout = epoch_layout(len(rows), spec["order"])
        rows = [FILLER_ROW if i is None else rows[i] for i in layout["sequence"]]
        rows, expected = sampler_file_order(rows, spec["sampler_seed"]), len(rows)
        write_layout(layout, spec["order"], root)
    return write_rows(rows, root, split["out"], field, expected)


def epoch_rows(order: list[int], micro_batch: int, world_size: int, global_batch: int) -> list[int | None]:
    """One epoch's rows as the Hugging Face Trainer's optimizer steps read them (transformers 5.24 / accelerate 1.15),
    filled with None (:data:`FILLER_ROW`) up to whole global batches.

    The Trainer's loader keeps a last partial micro-batch (dataloader_drop_last false); with several processes
    accelerate's BatchSamplerShard (even_batches) completes the epoch's micro-batches to a multiple of the
    processes with the epoch's first rows again; the last optimizer step of the epoch takes the micro-batches that
    are left (fewer than the accumulation, never rows of the next epoch: Trainer._inner_training_loop's
    ``remainder``). vERL's loader drops a partial global batch (drop_last): the filler rows keep that step, with no
    loss token of their own, so vERL's step is the Trainer's short one."""
    n, unit = len(order), micro_batch * world_size if world_size > 1 else 1
    read = [order[i % n] for i in range(-(-n // unit) * unit)] if n else []
    return [*read, *[None] * (-len(read) % global_batch)]


def epoch_layout(n: int, order: dict[str, Any]) -> dict[str, Any]:
    """Every epoch of the run as one sequence of rows for vERL's single pass: ptsdk's order of each epoch
    (``seed``: ptsdk_runtime.epoch_order; None: the file's order), read as :func:`epoch_rows` says, epoch after
    epoch. ``epochs`` passes, or as many as ``max_steps`` optimizer steps start. Returns the epochs' orders, the
    sequence (None: a filler row), the steps per epoch and the filler rows of each step (1-based) that has any."""
    batch = order["global_batch"]

    def ordered(epoch: int) -> list[int]:
        return list(range(n)) if order["seed"] is None else epoch_order(n, order["seed"], epoch)

    per_epoch = len(epoch_rows(list(range(n)), order["micro_batch"], order["world_size"], batch)) // batch
    epochs = order["epochs"] or -(-order["max_steps"] // max(per_epoch, 1))
    orders = [ordered(e) for e in range(epochs)]
    sequence = [i for o in orders for i in epoch_rows(o, order["micro_batch"], order["world_size"], batch)]
    fillers: dict[int, int] = {}
    for position, row in enumerate(sequence):
        if row is None:
            fillers[position // batch + 1] = fillers.get(position // batch + 1, 0) + 1
    return {"orders": orders, "sequence": sequence, "steps_per_epoch": per_epoch, "filler_rows": fillers}


def write_layout(layout: dict[str, Any], order: dict[str, Any], root: str) -> None:
    """The layout's summary to :data:`LAYOUT_FILE`; ptsdk's order of each epoch to ptsdk_runtime's ORDER_LOG (as
    the Trainer backends write it) when the order is ptsdk's seeded one."""
    summary = {
        "rows": len(layout["orders"][0]) if layout["orders"] else 0,
        "epochs": len(layout["orders"]),
        "steps_per_epoch": layout["steps_per_epoch"],
        "laid_out_rows": len(layout["sequence"]),
        "filler_rows": {str(k): v for k, v in layout["filler_rows"].items()},
        "filler_row_tokens": None,  # the fingerprint adds it (vERL's tokenizer)
        "order": order,
    }
    path = os.path.join(root, LAYOUT_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    if order["seed"] is None:
        return
    log = os.path.join(root, ORDER_LOG)
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        for epoch, indices in enumerate(layout["orders"]):
            f.write(
                json.dumps({"epoch": epoch, "rows": len(indices), "seed": order["seed"], "indices": indices}) + "\n"
            )


def file_row_positions(spec: dict[str, Any], laid_out: int, root: str = ".") -> list[int]:
    """Where each record of the training split (file order) is in the converted parquet file of `laid_out` rows:
    its first place in the layout (``epochs``), its place for vERL's sampler (``sampler_file_order``) or itself."""
    layout = spec["splits"]["train"].get("layout")
    if layout == "sampler_file_order":
        return sampler_order(laid_out, spec["sampler_seed"])
    if layout != "epochs":
        return list(range(laid_out))
    with open(os.path.join(root, LAYOUT_FILE)) as f:
        rows = json.load(f)["rows"]
    sequence = epoch_layout(rows, spec["order"])["sequence"]
    positions = sampler_order(len(sequence), spec["sampler_seed"])
    first: dict[int, int] = {}
    for j, row in enumerate(sequence):
        if row is not None and row not in first:
            first[row] = positions[j]
    return [first[i] for i in range(rows)]


def filler_position(spec: dict[str, Any], root: str = ".") -> int | None:
    """The parquet position of one filler row (layout ``epochs``), None when there is none."""
    if spec["splits"]["train"].get("layout") != "epochs":
        return None
    with open(os.path.join(root, LAYOUT_FILE)) as f:
        rows = json.load(f)["rows"]
    sequence = epoch_layout(rows, spec["order"])["sequence"]
    j = next((j for j, row in enumerate(sequence) if row is None), None)
    return None if j is None else sampler_order(len(sequence), spec["sampler_seed"])[j]


def held_out_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held out) record indices, each in file order: the split datasets' ``train_test_split(test_size=
    fraction, seed=seed)`` makes of n records (the held-out share rounded up, as datasets rounds it)."""
    import datasets

    if n < 2:
        return list(range(n)), []
    parts = datasets.Dataset.from_dict({"i": list(range(n))}).train_test_split(test_size=fraction, seed=seed)
    return sorted(parts["train"]["i"]), sorted(parts["test"]["i"])


def write_rows(
    rows: list[Any], root: str, target: str, field: str, expected: int | None = None
) -> tuple[int, list[str]]:
    """Rows to a parquet file under root; (rows written, error lines)."""
    import datasets
    import pyarrow.parquet as pq

    out = os.path.join(root, target)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    datasets.Dataset.from_list(rows).to_parquet(out)
    written = pq.read_metadata(out).num_rows
    if written != (len(rows) if expected is None else expected):
        return written, [f"{field}: wrote {written} rows to {target} from {len(rows)} records"]
    return written, []


def sampler_order(n: int, seed: int) -> list[int]:
    """The row indices vERL's SFT sampler draws in its first epoch, as torch's own DistributedSampler gives them.
    (With several GPUs each rank takes every world-size-th index, so global batch k is still block k.)"""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(0)
    return list(sampler)


def sampler_file_order(rows: list[Any], seed: int) -> list[Any]:
    """The rows placed so that the sampler's i-th draw is the file's i-th record."""
    out: list[Any] = [None] * len(rows)
    for i, position in enumerate(sampler_order(len(rows), seed)):
        out[position] = rows[i]
    return out


def compose(kind: str, overrides: list[str]) -> Any:
    """vERL's own Hydra config (``sft_trainer_engine`` or ``ppo_trainer``) with the overrides applied."""
    import verl.trainer.main_ppo
    from hydra import compose as hydra_compose, initialize_config_dir

    config_dir = os.path.join(os.path.dirname(os.path.abspath(verl.trainer.main_ppo.__file__)), "config")
    name = "sft_trainer_engine" if kind == "sft" else "ppo_trainer"
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return hydra_compose(config_name=name, overrides=overrides)


def fingerprint(spec: dict[str, Any], root: str = ".") -> str:
    """Tokenize the converted training rows with vERL's SFT dataset class (built as its trainer builds it)
    and write their fingerprint with ptsdk_runtime, in the file's order."""
    cfg = compose("sft", spec["fingerprint_overrides"])
    if not os.path.isdir(cfg.model.path):
        return f"verl data: {cfg.model.path} is not a local folder: no tokenized-data fingerprint"
    import datasets
    from ptsdk_runtime import FINGERPRINT, write_data_fingerprint  # copied beside this file
    from verl.trainer.sft_trainer import create_sft_dataset
    from verl.utils import hf_tokenizer

    tokenizer = hf_tokenizer(cfg.model.path, trust_remote_code=cfg.model.trust_remote_code)
    train_files = os.path.join(root, cfg.data.train_files)
    dataset = create_sft_dataset(train_files, cfg.data, tokenizer, None, max_samples=cfg.data.train_max_samples)
    rows = [dataset[i]["input_ids"].tolist() for i in file_row_positions(spec, len(dataset), root)]
    write_data_fingerprint(datasets.Dataset.from_dict({"input_ids": rows}), os.path.join(root, FINGERPRINT))
    filler = filler_position(spec, root)
    if filler is not None:  # what vERL counts of a filler row in its train/global_tokens (ptsdk subtracts it)
        item = dataset[filler]
        tokens = int(item["attention_mask"].sum()) if "attention_mask" in item else len(item["input_ids"])
        with open(os.path.join(root, LAYOUT_FILE)) as f:
            summary = json.load(f)
        summary["filler_row_tokens"] = tokens
        with open(os.path.join(root, LAYOUT_FILE), "w") as f:
            json.dump(summary, f, indent=1)
    return f"verl data: {len(rows)} rows tokenized by vERL's SFT dataset, fingerprint in {FINGERPRINT}"


def convert(spec_path: str, root: str = ".") -> tuple[dict[str, int], list[str]]:
    """Convert every split named in the spec, relative to root; returns (rows per split, error lines)."""
    with open(os.path.join(root, spec_path)) as f:
        spec = json.load(f)
    counts, errors = {}, []
    for name, split in spec["splits"].items():
        counts[name], problems = convert_split(spec, name, split, root)
        errors += problems
        if split.get("hold_out") and "held_out_rows" in split:
            counts[split["hold_out"]["name"]] = split["held_out_rows"]
    return counts, errors


def main() -> None:
    counts, errors = convert(sys.argv[1] if len(sys.argv) > 1 else "verl_data.json")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(2)
    print("verl data: " + ", ".join(f"{name} {n} rows" for name, n in counts.items()))
    with open(sys.argv[1] if len(sys.argv) > 1 else "verl_data.json") as f:
        spec = json.load(f)
    if spec["splits"]["train"].get("layout") == "epochs":
        with open(LAYOUT_FILE) as f:
            laid = json.load(f)
        whose = "the file's order" if spec["order"]["seed"] is None else f"ptsdk's order (seed {spec['order']['seed']})"
        print(
            f"verl data: {laid['epochs']} epoch(s) of {laid['rows']} rows in {whose}, {laid['steps_per_epoch']} "
            f"step(s) each, laid out for vERL's sampler as one pass ({sum(laid['filler_rows'].values())} filler "
            f"row(s) without loss tokens complete short steps; {LAYOUT_FILE})"
        )
    if spec.get("fingerprint_overrides") is not None:
        print(fingerprint(spec))


if __name__ == "__main__":
    main()
