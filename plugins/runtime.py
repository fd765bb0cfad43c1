"""Code that runs inside a framework's own process, copied into each run directory as ptsdk_runtime.py.

It imports nothing from ptsdk and no framework at module level, so ptsdk can read its constants and
every Hugging Face Trainer-based runner or plugin can import it from the run directory:

- :func:`write_data_fingerprint`: a hash of the tokenized training data (equal hashes mean two
  frameworks train on the same token sequences);
- :func:`iter_records`: a job's data file read record by record, bad records kept with where they are;
- :func:`canonical_messages`: a message list with the job's ``data.message_keys`` and ``data.role_names``
  applied (ShareGPT's from/value, human/gpt become role/content, user/assistant);
- :func:`alpaca_prompt`: the Alpaca prompt text (Axolotl's) for ``data.format: instruction``;
- :func:`load_reward`: a job's ``file.py:fn`` / ``module:fn`` reward function, the same on every backend;
- :func:`jsonl_metrics_callback`: a transformers ``TrainerCallback`` writing every logged metrics
  dict as one JSON line (with the step, epoch and seconds since training began), optionally
  counting real (non-padding) tokens for frameworks whose logs lack TRL's ``num_tokens``; its
  counters continue across a resume, and it checks the trained weights are finite at the end.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

#: Every logged metrics dict of a transformers Trainer, one JSON object a line (rank 0 only).
METRICS_LOG = os.path.join("logs", "trainer_log.jsonl")
#: The tokenized training data's fingerprint.
FINGERPRINT = os.path.join("logs", "tokenized_data.json")
#: The name this file has in a run directory.
MODULE = "ptsdk_runtime"
#: Written into each checkpoint folder by the metrics callback: the counters a resumed run continues.
COUNTERS = "ptsdk_counters.json"


def write_data_fingerprint(dataset: Any, path: str = FINGERPRINT) -> None:
    """Hash every *input_ids column of the dataset, row by row in order."""
    digest, rows, tokens = hashlib.sha256(), 0, 0
    columns = sorted(c for c in (dataset.column_names or []) if c.endswith("input_ids")) if dataset is not None else []
    for row in dataset.select_columns(columns) if columns else []:
        rows += 1
        for column in columns:
            tokens += len(row[column])
            digest.update(json.dumps(row[column]).encode())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(
            {"columns": columns, "rows": rows, "tokens": tokens, "sha256": digest.hexdigest()[:16] if rows else None}, f
        )


class BadRecord(ValueError):
    """One record's problem (the caller adds where it is)."""


def iter_records(path: str, split: str = "train", limit: int | None = None) -> Iterator[tuple[str, Any]]:
    """(where, record) for each record of a local .jsonl/.json/.parquet file or a hub dataset, in order;
    a line that is not JSON comes as a BadRecord in its place, so the caller reports it by line."""
    count = 0
    for where, record in _raw_records(path, split):
        if limit is not None and count >= limit:
            return
        count += 1
        yield where, record


def _raw_records(path: str, split: str) -> Iterator[tuple[str, Any]]:
    if path.endswith(".jsonl") or (path.endswith(".json") and _is_json_lines(path)):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield f"line {n}", json.loads(line)
                except json.JSONDecodeError as exc:
                    yield f"line {n}", BadRecord(f"not JSON ({exc.msg})")
    elif path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
        if isinstance(rows, dict) and isinstance(rows.get("data"), list):
            rows = rows["data"]
        if not isinstance(rows, list):
            raise BadRecord("a .json file must hold a list of records (or JSON lines)")
        for n, row in enumerate(rows, 1):
            yield f"record {n}", row
    elif path.endswith(".parquet"):
        import pyarrow.parquet as pq

        for n, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield f"row {n}", row
    else:
        from datasets import load_dataset

        for n, row in enumerate(load_dataset(path, split=split), 1):
            yield f"row {n}", row


def _is_json_lines(path: str) -> bool:
    with open(path, encoding="utf-8") as f:
        head = f.read(1).lstrip()
        while head == "" and f.tell() < os.fstat(f.fileno()).st_size:
            head = f.read(1).strip()
    return head == "{"


def canonical_messages(
    messages: list[dict[str, Any]], keys: dict[str, str] | None = None, roles: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Messages as {role, content[, reasoning_content]}: `keys` maps canonical key -> the data's key (role,
    content, thinking), `roles` the data's role values -> canonical roles. Other keys are dropped."""
    keys, roles = keys or {}, roles or {}
    role_key, content_key = keys.get("role", "role"), keys.get("content", "content")
    thinking_key = keys.get("thinking")
    out = []
    for message in messages:
        role = message.get(role_key)
        item = {"role": roles.get(role, role) if isinstance(role, str) else role, "content": message.get(content_key)}
        if thinking_key and message.get(thinking_key) is not None:
            item["reasoning_content"] = message[thinking_key]
        out.append(item)
    return out


# Axolotl 0.19's AlpacaPrompter text, instruct style (axolotl/prompters.py:37-53): the one Alpaca prompt of every
# backend, so that `data.format: instruction` trains on the same text everywhere.
ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)


def alpaca_prompt(instruction: str, input: str | None = None) -> str:
    """An Alpaca record's prompt: the input section only when the input is non-empty (as Axolotl's `if input`)."""
    if input:
        return ALPACA_WITH_INPUT.format(instruction=instruction, input=input)
    return ALPACA_NO_INPUT.format(instruction=instruction)


def split_implicit_prompt(chosen: list[Any], rejected: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """(prompt, chosen, rejected) from two whole conversations: the prompt is their longest common leading run
    of turns that ends before the last turn of each (at least the answers differ or are the last turns)."""
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    return chosen[:n], chosen[n:], rejected[n:]


def load_reward(ref: str) -> Callable[..., Any]:
    """'file.py:fn' or 'module:fn' -> the function; it must accept **kwargs (it is given every column)."""
    target, name = ref.rsplit(":", 1)
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(target))[0], target)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {target} as a module")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    func: Callable[..., Any] = getattr(module, name)
    if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(func).parameters.values()):
        raise TypeError(f"reward function {ref} must accept **kwargs (it is given every column of the record)")
    return func


def _jsonable(value: Any) -> Any:
    if isinstance(value, (int, bool, str)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def jsonl_metrics_callback(path: str = METRICS_LOG, *, count_tokens: bool = False) -> Any:
    """A TrainerCallback appending each logged dict to `path` (rank 0).

    With count_tokens, train records get ``num_tokens`` from :meth:`count` calls (see
    :func:`count_tokens_in_loss`), for frameworks whose own logs do not count real tokens.

    One metrics stream across resumes: each checkpoint folder gets :data:`COUNTERS` (the seconds of
    training and the tokens so far, and any framework counter given to :meth:`track`); a run resumed
    from that checkpoint continues them, and starts its part of the log with a ``train_begin`` line
    naming the step it resumed from (a reader drops the interrupted attempt's records after it).
    The final summary record says whether the trainable weights are all finite (``weights_finite``).
    """
    from transformers import TrainerCallback

    class JsonlMetrics(TrainerCallback):
        def __init__(self) -> None:
            self.t0 = time.time()
            self.wall0 = 0.0  # seconds of training before this process started (from the resumed checkpoint)
            self.tokens = 0
            self.tracked: list[tuple[Any, str]] = []

        def count(self, n: int) -> None:
            self.tokens += n

        def track(self, obj: Any, attr: str) -> None:
            """Save ``obj.attr`` (a count) with each checkpoint and restore it on resume: a framework's own counter
            that its checkpoints leave out (TRL's token count restarts at 0 otherwise)."""
            self.tracked.append((obj, attr))

        def wall(self) -> float:
            return self.wall0 + time.time() - self.t0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.t0 = time.time()
            if state.global_step > 0:  # resumed: the trainer state is the checkpoint's already
                self._restore(os.path.join(args.output_dir, f"checkpoint-{state.global_step}"), state.global_step)
            if state.is_world_process_zero:
                self._append(
                    {
                        "event": "train_begin",
                        "step": state.global_step,
                        "wall_time_s": self.wall0,
                        "max_steps": state.max_steps,
                    }
                )

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if not state.is_world_process_zero or not os.path.isdir(folder):
                return
            counters = {
                "step": state.global_step,
                "wall_time_s": self.wall(),
                "tokens": self.tokens,
                "tracked": {attr: _jsonable(getattr(obj, attr, None)) for obj, attr in self.tracked},
            }
            tmp = os.path.join(folder, COUNTERS + ".tmp")
            with open(tmp, "w") as f:
                json.dump(counters, f)
            os.replace(tmp, os.path.join(folder, COUNTERS))

        def _restore(self, folder: str, step: int) -> None:
            try:
                with open(os.path.join(folder, COUNTERS)) as f:
                    saved = json.load(f)
            except (OSError, ValueError):
                saved = _counters_from_log(path, step)  # a checkpoint without ptsdk's counters
            self.wall0 = float(saved.get("wall_time_s") or 0.0)
            self.tokens = int(saved.get("tokens") or 0)
            tracked = saved.get("tracked")
            for obj, attr in self.tracked:
                # without ptsdk's counters the log's token count is the one counter known
                value = tracked.get(attr) if isinstance(tracked, dict) else saved.get("tokens")
                if value is not None:
                    setattr(obj, attr, int(value))

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if not state.is_world_process_zero or not logs:
                return
            record: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch, "wall_time_s": self.wall()}
            if count_tokens and not any(k.startswith("eval_") for k in logs) and "train_runtime" not in logs:
                record["num_tokens"] = self.tokens
            record.update({k: _jsonable(v) for k, v in logs.items()})
            if "train_runtime" in logs and kwargs.get("model") is not None:
                bad = _nonfinite_parameter(kwargs["model"])
                if bad is not None:
                    record["weights_finite"] = not bad
                    if bad:
                        record["nonfinite_parameter"] = bad
            self._append(record)

        def _append(self, record: dict[str, Any]) -> None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")

    return JsonlMetrics()


def _counters_from_log(path: str, step: int) -> dict[str, Any]:
    """The counters at `step` as the metrics log has them (its last train record at or before it)."""
    best: dict[str, Any] = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return best
    for line in lines:
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if raw.get("event") == "train_begin" or "train_runtime" in raw or any(k.startswith("eval_") for k in raw):
            continue
        if int(raw.get("step", step + 1)) <= step:
            best = {"wall_time_s": raw.get("wall_time_s"), "tokens": raw.get("num_tokens")}
    return best


def _nonfinite_parameter(model: Any) -> str | None:
    """'' when every trainable parameter (this process's shard of it) is finite, else the first bad one's
    name; None when it cannot be told (parameters not materialized here, say)."""
    try:
        import torch

        by_device: dict[Any, list[tuple[str, Any]]] = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            t = (p.to_local() if hasattr(p, "to_local") else p).detach()
            if t.numel() and t.device.type != "meta":
                by_device.setdefault(t.device, []).append((name, t))
        for group in by_device.values():
            ok = torch.stack([torch.isfinite(t).all() for _, t in group])
            if not bool(ok.all()):
                return str(group[int((~ok).nonzero()[0][0])][0])
        return "" if by_device else None
    except Exception:  # a check that cannot run says nothing
        return None


def count_tokens_in_loss(trainer: Any, callback: Any) -> None:
    """Count real (non-padding) training tokens of every batch, all processes, as TRL's num_tokens does."""
    import torch
    import torch.distributed as dist

    original = trainer.compute_loss

    def compute_loss(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if model.training:
            # attention_mask (SFT), chosen_/rejected_attention_mask (preference), prompt_/completion_mask (GRPO)
            masks = [v for k, v in inputs.items() if k.endswith("mask") and torch.is_tensor(v)]
            ids = [v for k, v in inputs.items() if k.endswith("input_ids") and torch.is_tensor(v)]
            count = sum(int(m.sum()) for m in masks) if masks else sum(int(t.numel()) for t in ids)
            if dist.is_available() and dist.is_initialized():
                device = (masks or ids)[0].device if (masks or ids) else "cpu"
                total = torch.tensor(count, device=device)
                dist.all_reduce(total)
                count = int(total)
            callback.count(count)
        return original(model, inputs, *args, **kwargs)

    trainer.compute_loss = compute_loss
