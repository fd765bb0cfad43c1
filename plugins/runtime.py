"""Code that runs inside a framework's own process, copied into each run directory as ptsdk_runtime.py.

It imports nothing from ptsdk and no framework at module level, so ptsdk can read its constants and
every Hugging Face Trainer-based runner or plugin can import it from the run directory:

- :func:`write_data_fingerprint`: a hash of the tokenized training data (equal hashes mean two
  frameworks train on the same token sequences);
- :func:`iter_records`: a job's data file read record by record, bad records kept with where they are;
- :func:`canonical_messages`: a message list with the job's ``data.message_keys`` and ``data.role_names``
  applied (ShareGPT's from/value, human/gpt become role/content, user/assistant);
- :func:`image_parts`: a record's images (its column, placeholders and path parts) as one form, a
  ``{type: image, path}`` part for each, where the spec places it;
- :func:`alpaca_prompt`: the Alpaca prompt text (Axolotl's) for ``data.format: instruction``;
- :func:`load_reward`: a job's ``file.py:fn`` / ``module:fn`` reward function, the same on every backend;
- :func:`jsonl_metrics_callback`: a transformers ``TrainerCallback`` writing every logged metrics
  dict as one JSON line (with the step, epoch and seconds since training began), optionally
  counting real (non-padding) tokens for frameworks whose logs lack TRL's ``num_tokens``; its
  counters continue across a resume, and it checks the trained weights are finite at the end;
- :func:`tracking_callback`: the run's name and ptsdk's job in the Trainer's own trackers (``report_to``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import random
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
#: ptsdk's training order, one JSON line per pass read: {"epoch", "rows", "seed", "indices"} (rank 0).
ORDER_LOG = os.path.join("logs", "data_order.jsonl")
#: The starting adapter ptsdk made from the job's seed, and its fingerprint.
START_ADAPTER = "start_adapter"
START_ADAPTER_LOG = os.path.join("logs", "start_adapter.json")
#: What ptsdk owns of the optimization, set by the backend in the trainer's environment and applied by
#: :func:`own_the_optimization`: the seed of ptsdk's per-epoch order, and the loss normalization.
ORDER_ENV = "PTSDK_ORDER"
SEED_ENV = "PTSDK_SEED"
WARMUP_ENV = "PTSDK_WARMUP"
START_ADAPTER_ENV = "PTSDK_START_ADAPTER"
#: Online RL: the prompts, completions and rewards of the first ROLLOUT_LOG_CALLS reward calls (rank 0), one JSON
#: line per reward function and call, so two frameworks' rollouts can be compared where they first part.
ROLLOUT_LOG = os.path.join("logs", "rollouts.jsonl")
ROLLOUT_LOG_CALLS = 100
LOSS_NORMALIZATION_ENV = "PTSDK_LOSS_NORMALIZATION"
#: One file per training process, ``<global rank>.json``: a multi-node run whose nodes each have their own run
#: directory (a SkyPilot task) tells the node of global rank 0, which saves the model and logs the metrics.
RANKS_DIR = os.path.join("logs", "ranks")


def note_rank(args: Any) -> None:
    """This process's global rank, the world size and the host, into RANKS_DIR (every process)."""
    import socket

    os.makedirs(RANKS_DIR, exist_ok=True)
    with open(os.path.join(RANKS_DIR, f"{args.process_index}.json"), "w") as f:
        json.dump({"rank": args.process_index, "world_size": args.world_size, "host": socket.gethostname()}, f)


MODEL_SUMMARY = os.path.join("logs", "model.json")


def note_model(model: Any, path: str = MODEL_SUMMARY) -> dict[str, Any]:
    """What the trainer trains: its parameters, how many of them train, and its bitsandbytes layers by class
    (Linear4bit, Linear8bitLt), so that a quantized base that loaded unquantized shows. peft's LoRA wrappers are
    not counted, only the bitsandbytes layers they wrap. `parameters` counts stored elements: a 4-bit layer packs two
    weights a byte, so a 4-bit base shows about half its weights."""
    quantized: dict[str, int] = {}
    for module in model.modules():
        cls = type(module)
        if cls.__module__.startswith("bitsandbytes"):
            quantized[cls.__name__] = quantized.get(cls.__name__, 0) + 1
    summary = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "bitsandbytes_layers": quantized,
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(summary, f)
    return summary


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


def image_parts(messages: list[dict[str, Any]], images: list[str] | None, folder: str | None) -> list[dict[str, Any]]:
    """Canonical messages with every image of the record as a ``{type: image, path}`` part, the path joined to
    ``folder`` (data.images.root, else the data file's folder). Where the spec puts them: ``{type: image}``
    placeholders take the record's images column in order; a string content of the first user turn gets the
    images not yet placed before its text (TRL's prepare_multimodal_messages does the same). Raises ValueError
    when the images column and the placeholders do not match."""
    queue = list(images or [])

    def path(name: str) -> str:
        return os.path.join(folder, name) if folder and not os.path.isabs(name) else name

    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image":
                    if part.get("path"):
                        parts.append({"type": "image", "path": path(part["path"])})
                    elif queue:
                        parts.append({"type": "image", "path": path(queue.pop(0))})
                    else:
                        raise ValueError("more {type: image} parts than files in the images column")
                else:
                    parts.append(part)
            content = parts
        out.append({**message, "content": content})
    if queue:
        for i, message in enumerate(out):
            if message["role"] == "user" and isinstance(message["content"], str):
                text = [{"type": "text", "text": message["content"]}]
                out[i] = {**message, "content": [{"type": "image", "path": path(n)} for n in queue] + text}
                return out
        raise ValueError(f"{len(queue)} image(s) in the images column with no place in the messages")
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


#: Where the trackers of ``output.report_to`` write (TensorBoard events, the MLflow file store, W&B's offline
#: run, Trackio's database), one folder each under this one in the run directory.
TRACKING_DIR = "tracking"
#: What the trackers record of ptsdk, written by the plan for a job with trackers: {"job", "name", "sha256",
#: "backend"} (the job as JSON, its name, the hash of that JSON, the backend).
TRACKING_JOB = os.path.join(TRACKING_DIR, "ptsdk_job.json")


def tracking_callback(path: str = TRACKING_JOB) -> Any:
    """A TrainerCallback giving the Trainer's own trackers (``report_to``) the run's name and ptsdk's job.

    - Before they start (``on_init_end``): ``run_name`` becomes the run directory's name (the working directory,
      where ptsdk starts every framework) when the framework set none, and ``project`` (Trackio's) the job's name
      when it is transformers' default.
    - Once they have (``on_train_begin``, after the trainer's tracker callbacks, rank 0): the job record at
      `path` goes to TensorBoard (text ``ptsdk/job`` and ``ptsdk/run`` in its log folder), MLflow (the tag
      ``ptsdk.run`` and the artifact ``ptsdk_job.json``; the job's name and hash are tags from the environment),
      W&B and Trackio (config ``ptsdk``).

    Without the file at `path` (a job with no trackers) it does nothing.
    """
    from transformers import TrainerCallback

    class TrackerRecord(TrainerCallback):
        def __init__(self) -> None:
            self.record: dict[str, Any] | None = None
            if os.path.isfile(path):
                with open(path) as f:
                    self.record = json.load(f)
            self.run = os.path.basename(os.getcwd())

        def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.record is None:
                return
            if not args.run_name or args.run_name == args.output_dir:
                args.run_name = self.run
            if getattr(args, "project", None) == "huggingface":
                args.project = self.record["name"]

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.record is None or not state.is_world_process_zero:
                return
            report = reports_to(args)
            record = {**self.record, "run": args.run_name or self.run}
            text = json.dumps(record, indent=1)
            if "tensorboard" in report and os.environ.get("TENSORBOARD_LOGGING_DIR"):
                from torch.utils.tensorboard import SummaryWriter

                # A second event file in the Trainer's TensorBoard folder: TensorBoard reads both as one run.
                writer = SummaryWriter(log_dir=os.environ["TENSORBOARD_LOGGING_DIR"])
                writer.add_text("ptsdk/run", record["run"])
                writer.add_text("ptsdk/job", f"```json\n{text}\n```")
                writer.close()
            if "mlflow" in report:
                import mlflow  # type: ignore[import-not-found]

                if mlflow.active_run() is not None:  # ptsdk.job, job_sha256, backend: MLFLOW_RUN_CONTEXT's tags
                    mlflow.set_tag("ptsdk.run", record["run"])
                    mlflow.log_dict(record, "ptsdk_job.json")
            if "wandb" in report:
                import wandb  # type: ignore[import-not-found]

                if wandb.run is not None:
                    wandb.run.config.update({"ptsdk": record}, allow_val_change=True)
            if "trackio" in report:
                import trackio  # type: ignore[import-not-found]

                trackio.config.update({"ptsdk": record})

    return TrackerRecord()


def reports_to(args: Any) -> list[str]:
    """The trackers a Trainer's arguments report to (``report_to``: a list, one name, or unset) as a list."""
    report = args.report_to or []
    return report if isinstance(report, list) else [report]


def trackio_takes_what_transformers_passes() -> None:
    """Make ``trackio.init`` drop the keywords its version does not take when transformers passes them unset (None).

    Axolotl 0.19 pins transformers 5.16.1, whose TrackioCallback calls ``trackio.init(..., bucket_id=None)``, and
    trackio 0.19.0, whose init has no ``bucket_id`` (TypeError as training starts). A keyword with a value is
    passed on as it is: a setting is never dropped in silence."""
    import functools
    import inspect

    import trackio

    init = trackio.init
    takes = inspect.signature(init).parameters
    if getattr(init, "__ptsdk_compat__", False) or any(p.kind is p.VAR_KEYWORD for p in takes.values()):
        return

    @functools.wraps(init)
    def compat_init(*args: Any, **kwargs: Any) -> Any:
        return init(*args, **{k: v for k, v in kwargs.items() if k in takes or v is not None})

    compat_init.__ptsdk_compat__ = True  # type: ignore[attr-defined]
    trackio.init = compat_init


def model_card_without_trackio(trainer: Any) -> None:
    """Spare a run that reports to no Trackio the import of trackio (and gradio: about 6 s on a small CPU) that TRL's
    model card makes to ask for the current Trackio run's Space.

    TRL writes the card with every checkpoint, and Axolotl after training; its ``get_trackio_space_url`` imports
    trackio whenever it is installed (TRL's and Axolotl's environments have it) and answers None when no Trackio run
    is current. No Trackio run is ever started when ``report_to`` leaves Trackio out and nothing imported it: the
    answer is None without the import."""
    import sys

    if "trackio" in reports_to(trainer.args) or "trackio" in sys.modules:
        return
    try:
        import trl.trainer.base_trainer as base_trainer
    except ImportError:
        return
    if hasattr(base_trainer, "get_trackio_space_url"):
        base_trainer.get_trackio_space_url = lambda: None


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


def epoch_order(rows: int, seed: int, epoch: int) -> list[int]:
    """ptsdk's order of `rows` training rows in pass `epoch`: a permutation from Python's own generator seeded
    with "seed:epoch" (a string seed is hashed with SHA-512, the same in every Python 3 and every framework)."""
    order = list(range(rows))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order


def seeded_order_sampler(rows: int, seed: int, log: str | None = ORDER_LOG) -> Any:
    """A torch Sampler yielding :func:`epoch_order` for each pass. The trainer names the pass with
    ``set_epoch`` (transformers does, through accelerate); without it each new pass counts one up. Each pass's
    order is appended to `log` (None: not logged), once per epoch, so the run directory holds what was read."""
    from torch.utils.data import Sampler

    class SeededOrder(Sampler):
        def __init__(self) -> None:
            self.epoch = 0
            self.logged: set[int] = set()

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self) -> int:
            return rows

        def __iter__(self) -> Iterator[int]:
            epoch, self.epoch = self.epoch, self.epoch + 1
            order = epoch_order(rows, seed, epoch)
            if log is not None and epoch not in self.logged:
                self.logged.add(epoch)
                os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
                with open(log, "a") as f:
                    f.write(json.dumps({"epoch": epoch, "rows": rows, "seed": seed, "indices": order}) + "\n")
            return iter(order)

    return SeededOrder()


def log_rollouts(trainer: Any, path: str = ROLLOUT_LOG, calls: int = ROLLOUT_LOG_CALLS) -> None:
    """Wrap an online-RL trainer's reward functions (TRL's GRPO/RLOO ``reward_funcs``; reward models are left
    alone) so that each call appends {"step", "call", "reward", "rewards"} to `path`, the first function's line
    with the call's "prompts" and "completions" too. The trainer has read the functions' names already."""
    import functools

    count = {"calls": 0}
    funcs = trainer.reward_funcs
    first = next((i for i, f in enumerate(funcs) if callable(f) and not hasattr(f, "parameters")), None)

    def wrap(index: int, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def logged(*args: Any, **kwargs: Any) -> Any:
            rewards = fn(*args, **kwargs)
            if index == first:
                count["calls"] += 1
            if count["calls"] <= calls:
                record: dict[str, Any] = {
                    "step": trainer.state.global_step,
                    "call": count["calls"],
                    "reward": getattr(fn, "__name__", str(index)),
                    "rewards": list(rewards) if rewards is not None else None,
                }
                if index == first:
                    record["prompts"] = kwargs.get("prompts", args[0] if args else None)
                    record["completions"] = kwargs.get("completions", args[1] if len(args) > 1 else None)
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                with open(path, "a") as f:
                    f.write(json.dumps(record, default=_jsonable) + "\n")
            return rewards

        return logged

    trainer.reward_funcs = [
        wrap(i, f) if callable(f) and not hasattr(f, "parameters") else f for i, f in enumerate(funcs)
    ]


def load_start_adapter(trainer: Any, folder: str) -> None:
    """Copy a saved PEFT adapter's weights into the trainer's model in place (the optimizer keeps its tensors).
    Axolotl 0.19 builds a DPO/IPO/KTO adapter from its config only (axolotl/loaders/model.py:509-523) and TRL
    then draws fresh weights: without this, lora_model_dir is silently ignored for those methods."""
    from peft import set_peft_model_state_dict

    path = os.path.join(folder, "adapter_model.safetensors")
    if os.path.exists(path):
        from safetensors.torch import load_file

        weights = load_file(path)
    else:
        import torch

        weights = torch.load(os.path.join(folder, "adapter_model.bin"), map_location="cpu", weights_only=True)
    model = trainer.accelerator.unwrap_model(trainer.model)
    result = set_peft_model_state_dict(model, weights, adapter_name="default")
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise SystemExit(f"the starting adapter in {folder} does not fit the model: {unexpected[:3]} ...")
    print(f"[ptsdk] the trainer's adapter starts from {folder} ({len(weights)} tensors)", flush=True)


def _seeded_start(seed: int) -> Any:
    from transformers import TrainerCallback, set_seed

    class SeededStart(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 0:
                set_seed(seed)

    return SeededStart()


def _accepts_loss_kwargs(model: Any) -> bool:
    """transformers' own test (Trainer.__init__): the model says so, or its forward takes **kwargs."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(base, "accepts_loss_kwargs"):
        return bool(base.accepts_loss_kwargs)
    params = inspect.signature(base.forward).parameters.values()
    return any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params)


def own_the_optimization(trainer: Any) -> None:
    """Apply to a constructed transformers Trainer what ptsdk owns of the optimization, as the backend set it
    in the environment:

    - :data:`ORDER_ENV` ``seeded:<seed>``: the trainer reads the training rows in ptsdk's seeded order per epoch
      (:func:`seeded_order_sampler`) instead of its own sampler, so every framework reads the same rows in the
      same steps; ``file``: in file order, whatever the trainer would do (TRL's GRPO/RLOO RepeatSampler stops
      shuffling: ``shuffle_dataset``; other trainers read through a sequential sampler);
    - :data:`START_ADAPTER_ENV`: the trainer's adapter takes the weights of this saved adapter (a framework
      that builds the adapter from its config alone, as Axolotl does for DPO/IPO/KTO, starts from it too);
    - :data:`WARMUP_ENV`: the trainer's warmup (``args.warmup_steps``, read when its scheduler is made at the start
      of training): the job's steps, or its ratio, which transformers rounds up (Axolotl would make 1 step 2);
    - :data:`SEED_ENV`: every random generator is seeded again when training starts (not when it resumes), so
      what draws from them during training (dropout masks) starts from the same state whatever the framework
      drew before (loading, preprocessing, creating the trainer);
    - :data:`LOSS_NORMALIZATION_ENV` (token-level losses): ``tokens`` divides the summed loss by the loss tokens
      of the whole optimizer step (all accumulated micro-batches and devices: transformers passes
      ``num_items_in_batch``); ``micro_batch`` averages each micro-batch over its own tokens and the
      micro-batches over the accumulation steps.
    """
    start = os.environ.get(START_ADAPTER_ENV)
    if start is not None:
        load_start_adapter(trainer, start)
    warmup = os.environ.get(WARMUP_ENV)
    if warmup is not None:
        value = float(warmup)  # whole steps, or a ratio below 1 that get_warmup_steps rounds up
        trainer.args.warmup_steps = int(value) if value >= 1 else value
    start_seed = os.environ.get(SEED_ENV)
    if start_seed is not None:
        trainer.add_callback(_seeded_start(int(start_seed)))
    if getattr(trainer, "reward_funcs", None) and trainer.args.process_index == 0:
        log_rollouts(trainer)
    order = os.environ.get(ORDER_ENV)
    if order == "file" and hasattr(trainer, "shuffle_dataset"):
        trainer.shuffle_dataset = False  # TRL's RepeatSampler(shuffle=self.shuffle_dataset) (grpo_trainer.py)
    elif order is not None and trainer.train_dataset is not None:
        if order == "file":
            from torch.utils.data import SequentialSampler

            sampler = SequentialSampler(trainer.train_dataset)
        else:
            log = ORDER_LOG if trainer.args.process_index == 0 else None
            sampler = seeded_order_sampler(len(trainer.train_dataset), int(order.split(":", 1)[1]), log)
        trainer._get_train_sampler = lambda *args, **kwargs: sampler
    normalization = os.environ.get(LOSS_NORMALIZATION_ENV)
    if normalization == "tokens":
        model = trainer.accelerator.unwrap_model(trainer.model)
        if not _accepts_loss_kwargs(model):
            raise SystemExit(
                "training.loss_normalization: tokens needs a model whose forward takes transformers' loss kwargs "
                f"(num_items_in_batch); {type(model).__name__}'s does not: set training.loss_normalization: micro_batch"
            )
        trainer.model_accepts_loss_kwargs = True
        trainer.args.average_tokens_across_devices = True
    elif normalization == "micro_batch":
        trainer.model_accepts_loss_kwargs = False


def make_start_adapter(model_path: str, out: str, seed: int, r: int, alpha: int, dropout: float, targets: str) -> str:
    """Create the job's starting LoRA adapter once and save it to `out` (a PEFT folder every framework loads).

    peft lays the adapter out on an empty (meta-device) copy of the model, so no weights are loaded; each A
    matrix is then drawn from its own generator, seeded by the job's seed and the module's name, with peft's
    default distribution (kaiming-uniform, a=sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))), and B is zero (the
    model is unchanged at step 0). The weights depend on the seed and the module alone, not on the peft or
    framework version or on what consumed the global generator before. Returns the weights' SHA-256 (16 hex
    digits), also written to :data:`START_ADAPTER_LOG`."""
    import torch
    from accelerate import init_empty_weights
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    model_config = AutoConfig.from_pretrained(model_path)
    # A vision-language model (LLaVA: a vision tower beside its language model) has no causal-LM class.
    vision = getattr(model_config, "vision_config", None) is not None
    with init_empty_weights():
        base = (AutoModelForImageTextToText if vision else AutoModelForCausalLM).from_config(model_config)
    modules: Any = targets if targets == "all-linear" else targets.split(",")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=modules, task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    tensors, digest = {}, hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        if ".lora_A.default." in name:
            generator = torch.Generator().manual_seed(
                int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")
            )
            bound = 1.0 / param.shape[1] ** 0.5
            value = (torch.rand(tuple(param.shape), generator=generator, dtype=torch.float64) * 2 - 1) * bound
        elif ".lora_B.default." in name:
            value = torch.zeros(tuple(param.shape), dtype=torch.float64)
        else:
            continue
        key = name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")  # as peft saves
        tensors[key] = value.to(torch.float32).contiguous()
        digest.update(key.encode())
        digest.update(tensors[key].numpy().tobytes())
    saved = model.peft_config["default"]
    saved.base_model_name_or_path = model_path
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "adapter_model.safetensors"), metadata={"format": "pt"})
    saved.save_pretrained(out)  # adapter_config.json last: its presence means the folder is whole
    sha = digest.hexdigest()[:16]
    os.makedirs(os.path.dirname(os.path.abspath(START_ADAPTER_LOG)), exist_ok=True)
    with open(START_ADAPTER_LOG, "w") as f:
        json.dump({"path": out, "seed": seed, "sha256": sha, "tensors": len(tensors)}, f)
    return sha


def main(argv: list[str] | None = None) -> None:
    """``python ptsdk_runtime.py start-adapter MODEL OUT SEED R ALPHA DROPOUT TARGETS``: the plan's first
    command for a LoRA job whose starting adapter ptsdk owns (skipped when OUT exists: a resumed run)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 8 or args[0] != "start-adapter":
        raise SystemExit(main.__doc__)
    model, out, seed, r, alpha, dropout, targets = args[1:]
    if os.path.exists(os.path.join(out, "adapter_config.json")):
        print(f"[ptsdk] starting adapter already in {out}", flush=True)
        return
    sha = make_start_adapter(model, out, int(seed), int(r), int(alpha), float(dropout), targets)
    print(f"[ptsdk] starting adapter (seed {seed}, sha256 {sha}) in {out}", flush=True)


if __name__ == "__main__":
    main()
