#!/usr/bin/env python
"""Run one TRL 1.16 trainer from a YAML config, parsed by TRL's own TrlParser.

    python train_trl.py --config trl_config.yaml
    python -m torch.distributed.run --nproc_per_node 2 train_trl.py --config trl_config.yaml

The YAML holds `method:` plus the fields of ScriptArgs below, of the method's TRL config class
(SFTConfig, DPOConfig, ...) and of trl.ModelConfig; unknown keys are an error, as with `trl sft
--config`. Written by ptsdk into the run directory beside ptsdk_runtime.py (metrics callback, data fingerprint).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import time
from dataclasses import dataclass, field

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# method -> (module, config class, trainer class). ORPO and CPO live in trl.experimental in 1.16.
METHODS = {
    "sft": ("trl", "SFTConfig", "SFTTrainer"),
    "dpo": ("trl", "DPOConfig", "DPOTrainer"),
    "kto": ("trl", "KTOConfig", "KTOTrainer"),
    "orpo": ("trl.experimental.orpo", "ORPOConfig", "ORPOTrainer"),
    "cpo": ("trl.experimental.cpo", "CPOConfig", "CPOTrainer"),
    "grpo": ("trl", "GRPOConfig", "GRPOTrainer"),
    "rloo": ("trl", "RLOOConfig", "RLOOTrainer"),
}


@dataclass
class ScriptArgs:
    method: str = field(metadata={"help": f"one of {sorted(METHODS)}"})
    train_path: str = field(metadata={"help": "local .jsonl/.json/.parquet file or a hub dataset id"})
    train_split: str = field(default="train", metadata={"help": "split of a hub dataset"})
    eval_path: str | None = field(default=None, metadata={"help": "evaluation data, like train_path"})
    eval_split: str = field(default="train", metadata={"help": "split of a hub eval dataset"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N training rows"})
    rename_columns: list[str] | None = field(default=None, metadata={"help": "source=target column renames"})
    reward_funcs: list[str] | None = field(
        default=None, metadata={"help": "'file.py:fn', 'module:fn' or a reward model path"}
    )
    tokenizer_chat_template: str | None = field(
        default=None, metadata={"help": "a .jinja chat template replacing the tokenizer's"}
    )
    train_subset: str | None = field(default=None, metadata={"help": "configuration (subset) of a hub dataset"})
    eval_subset: str | None = field(default=None, metadata={"help": "configuration of a hub eval dataset"})
    eval_holdout: float | None = field(
        default=None, metadata={"help": "hold out this fraction of the training rows as evaluation data (seeded)"}
    )
    instruction_records: bool = field(
        default=False, metadata={"help": "Alpaca rows (instruction, input, output) -> prompt/completion"}
    )
    tokenizer_pad_token: str | None = field(default=None, metadata={"help": "the tokenizer's pad token"})
    tokenizer_eos_token: str | None = field(default=None, metadata={"help": "the tokenizer's eos token"})
    message_keys: list[str] | None = field(
        default=None, metadata={"help": "canonical=data key inside messages: role=from, content=value, thinking=..."}
    )
    role_names: list[str] | None = field(default=None, metadata={"help": "data role=canonical role, e.g. human=user"})
    prompt_in_answers: bool = field(
        default=False,
        metadata={"help": "preference rows whose chosen/rejected hold the prompt: leave it to TRL's extract_prompt"},
    )
    drop_prompts_over: int | None = field(
        default=None, metadata={"help": "drop rows whose prompt is longer than this many tokens (online RL)"}
    )
    images: bool = field(
        default=False,
        metadata={"help": "rows hold image file paths in an `images` column: train with the model's processor"},
    )
    images_root: str | None = field(
        default=None, metadata={"help": "folder relative image paths are under (default: the data file's folder)"}
    )
    final_model_dir: str = field(default="model", metadata={"help": "where the trained model or adapter is saved"})
    adapter_init_path: str | None = field(default=None, metadata={"help": "start from this saved PEFT adapter"})
    start_adapter_seed: int | None = field(
        default=None,
        metadata={"help": "first make ptsdk's seeded starting adapter at adapter_init_path (unless it is there)"},
    )


def trainer_classes(method: str | None):
    if method is None or method not in METHODS:
        raise SystemExit(f"method must be one of {sorted(METHODS)}, got {method!r}")
    module_name, config_name, trainer_name = METHODS[method]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, trainer_name)


def parse(argv: list[str] | None = None):
    """TRL's own parser, with the config class chosen by the YAML's `method`."""
    import yaml
    from trl import ModelConfig, TrlParser

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    with open(known.config) as f:
        method = (yaml.safe_load(f) or {}).get("method")
    config_cls, trainer_cls = trainer_classes(method)
    parser = TrlParser((ScriptArgs, config_cls, ModelConfig))
    script, training, model = parser.parse_args_and_config(args=argv)
    return script, training, model, trainer_cls


def is_reward_model(ref: str) -> bool:
    """A reward model (a local folder or a hub id, never holding ':') rather than 'file.py:fn' / 'module:fn'."""
    return os.path.isdir(ref) or ":" not in ref


def load_reward(ref: str):
    if is_reward_model(ref):
        # GRPOTrainer/RLOOTrainer load a string as AutoModelForSequenceClassification(num_labels=1) with
        # args.model_init_kwargs (TRL 1.16 trl/trainer/grpo_trainer.py:550-560, rloo_trainer.py:468-478).
        return ref
    from ptsdk_runtime import load_reward as load_function  # copied beside this script

    try:
        return load_function(ref)
    except TypeError as exc:  # TRL's parser reports a SystemExit's message as the problem
        raise SystemExit(str(exc)) from None


def alpaca(row: dict) -> dict:
    """One Alpaca record as SFT prompt/completion: the loss falls on the output only."""
    from ptsdk_runtime import alpaca_prompt  # copied beside this file

    return {"prompt": alpaca_prompt(row["instruction"], row.get("input")), "completion": row["output"]}


def load_data(path: str, split: str, renames: list[str] | None, limit: int | None, subset: str | None = None):
    from datasets import load_dataset

    if path.endswith((".jsonl", ".json")):
        ds = load_dataset("json", data_files=path, split="train")
    elif path.endswith(".parquet"):
        ds = load_dataset("parquet", data_files=path, split="train")
    else:
        ds = load_dataset(path, name=subset, split=split)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    mapping = dict(item.split("=", 1) for item in renames or [])
    return ds.rename_columns(mapping) if mapping else ds


#: The columns that may hold message lists, by TRL's dataset formats (trl/data_utils.py is_conversational).
MESSAGE_COLUMNS = ("messages", "prompt", "completion", "chosen", "rejected")
ROW = "__ptsdk_row"


def hold_out(train, fraction: float, seed: int):
    """A seeded share of the training rows as evaluation data (datasets' train_test_split); the training
    rows that remain keep their file order, so the sampler alone decides the order (sequential or seeded)."""
    parts = train.add_column(ROW, list(range(len(train)))).train_test_split(test_size=fraction, seed=seed)
    return parts["train"].sort(ROW).remove_columns(ROW), parts["test"].remove_columns(ROW)


def canonical_columns(ds, keys: dict[str, str], roles: dict[str, str]):
    """The job's message key and role mappings on every column holding message lists (ptsdk_runtime's
    canonical_messages: {role, content[, reasoning_content]}), before TRL reads them."""
    from ptsdk_runtime import canonical_messages  # copied beside this script

    columns = [c for c in MESSAGE_COLUMNS if c in ds.column_names]

    def canonical(row: dict) -> dict:
        return {c: canonical_messages(row[c], keys, roles) if isinstance(row[c], list) else row[c] for c in columns}

    return ds.map(canonical) if columns else ds


def implicit_prompt(ds):
    """Preference rows whose chosen/rejected begin with the prompt: without a prompt column DPOTrainer runs
    TRL's extract_prompt (dpo_trainer.py:1049-1054) and ORPO/CPO maybe_extract_prompt (orpo_trainer.py:362,
    cpo_trainer.py:377), the longest shared leading turns. A prompt column would stop that: drop it."""
    return ds.remove_columns("prompt") if "prompt" in ds.column_names else ds


def prepared(ds, script: ScriptArgs):
    if script.instruction_records:
        columns = ["instruction", "input", "output"]
        ds = ds.map(alpaca, remove_columns=[c for c in columns if c in ds.column_names])
    if script.message_keys or script.role_names:
        keys = dict(item.split("=", 1) for item in script.message_keys or [])
        roles = dict(item.rsplit("=", 1) for item in script.role_names or [])
        ds = canonical_columns(ds, keys, roles)
    if script.prompt_in_answers:
        ds = implicit_prompt(ds)
    return ds


def checkpoint_dtype(model_args, training) -> str:
    """The dtype the checkpoint's config names (what dtype "auto" loads), float32 when it names none."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_args.model_name_or_path, trust_remote_code=training.trust_remote_code)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else "float32"


def images_from_parts(ds, content_key: str = "content"):
    """Image parts that name their file ({type: image, path: ...}) become TRL's placeholders ({type: image}) and
    the files the row's images column, in order: TRL fills placeholders from that column only
    (trl/data_utils.py:97-121) and takes a dataset without one for text (sft_trainer.py:762)."""
    from datasets import Sequence, Value

    columns = [c for c in MESSAGE_COLUMNS if c in ds.column_names]
    if "images" not in ds.column_names:
        ds = ds.add_column("images", [None] * len(ds))
    features = ds.features.copy()
    features["images"] = Sequence(Value("string"))

    def move(row: dict) -> dict:
        found: list[str] = []
        out = {}
        for column in columns:
            if not isinstance(row[column], list):
                continue
            messages = []
            for message in row[column]:
                content = message.get(content_key)
                if isinstance(content, list):
                    found += [p["path"] for p in content if p.get("type") == "image" and p.get("path")]
                    content = [{"type": "image"} if p.get("type") == "image" else p for p in content]
                messages.append({**message, content_key: content})
            out[column] = messages
        return {**out, "images": found or row["images"]}

    return ds.map(move, features=features)


def absolute_images(ds, data_path: str, root: str | None):
    """Each row's image paths made absolute (the run's working directory is the run directory), against root or
    the local data file's folder; TRL's collators open them with the processor (sft_trainer.py:369-376)."""
    folder = root or (os.path.dirname(os.path.abspath(data_path)) if data_path.endswith(LOCAL_DATA) else None)
    if folder is None:
        return ds
    return ds.map(lambda row: {"images": [os.path.join(folder, p) for p in row["images"]]})


LOCAL_DATA = (".jsonl", ".json", ".parquet")


def datasets_of(script: ScriptArgs, seed: int):
    """Training and evaluation data as the job says: subsets, a seeded held-out share, Alpaca rendering,
    message key/role mappings and an implicit prompt."""
    train = load_data(
        script.train_path, script.train_split, script.rename_columns, script.max_train_samples, script.train_subset
    )
    content_key = dict(item.split("=", 1) for item in script.message_keys or []).get("content", "content")
    if script.images:
        train = absolute_images(images_from_parts(train, content_key), script.train_path, script.images_root)
    evals = None
    if script.eval_path:
        evals = load_data(script.eval_path, script.eval_split, script.rename_columns, None, script.eval_subset)
        if script.images:
            evals = absolute_images(images_from_parts(evals, content_key), script.eval_path, script.images_root)
    elif script.eval_holdout:
        train, evals = hold_out(train, script.eval_holdout, seed)
    return prepared(train, script), prepared(evals, script) if evals is not None else None


def set_special_tokens(tokenizer, pad: str | None, eos: str | None) -> None:
    """The job's pad/eos tokens; like TRL's own eos_token/pad_token checks, they must be in the vocabulary."""
    vocab = tokenizer.get_vocab()
    for role, token in (("pad", pad), ("eos", eos)):
        if token is None:
            continue
        if token not in vocab:
            raise SystemExit(f"model.{role}_token {token!r} is not in the tokenizer's vocabulary")
        setattr(tokenizer, f"{role}_token", token)


def prompt_length(row: dict, tokenizer) -> int:
    prompt = row["prompt"]
    if isinstance(prompt, list):  # messages, rendered as GRPOTrainer/RLOOTrainer do (grpo_trainer.py:1737-1745)
        ids = tokenizer.apply_chat_template(
            conversation=[prompt], add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        return len(ids[0])
    return len(tokenizer(text=prompt)["input_ids"])  # grpo_trainer.py:1758


def drop_long_prompts(ds, tokenizer, limit: int):
    kept = ds.filter(lambda row: prompt_length(row, tokenizer) <= limit)
    print(f"[ptsdk] kept {len(kept)} of {len(ds)} records with prompts of at most {limit} tokens", flush=True)
    if len(kept) == 0:
        raise SystemExit(f"every prompt is longer than max_prompt_length={limit} tokens: nothing left to train on")
    return kept


def make_start_adapter(script: ScriptArgs, model_args, training) -> None:
    """ptsdk's seeded starting adapter at adapter_init_path, made once (the first process; the others wait)."""
    from ptsdk_runtime import make_start_adapter as make  # copied beside this script

    out = script.adapter_init_path or "start_adapter"
    with training.main_process_first(local=False, desc="ptsdk's starting adapter"):
        if not os.path.exists(os.path.join(out, "adapter_config.json")):
            targets = model_args.lora_target_modules
            targets = targets if isinstance(targets, str) else ",".join(targets)
            sha = make(
                model_args.model_name_or_path,
                out,
                script.start_adapter_seed,
                model_args.lora_r,
                model_args.lora_alpha,
                model_args.lora_dropout,
                targets,
            )
            print(f"[ptsdk] starting adapter (seed {script.start_adapter_seed}, sha256 {sha}) in {out}", flush=True)


def main() -> None:
    started = time.time()
    script, training, model_args, trainer_cls = parse()
    import torch.distributed as dist
    from ptsdk_runtime import (  # copied beside this script
        METRICS_LOG,
        jsonl_metrics_callback,
        model_card_without_trackio,
        note_model,
        note_rank,
        own_the_optimization,
        tracking_callback,
        write_data_fingerprint,
    )
    from transformers import AutoProcessor, AutoTokenizer
    from trl import get_peft_config

    training.model_init_kwargs = {
        **(training.model_init_kwargs or {}),
        "dtype": model_args.dtype,
        "attn_implementation": model_args.attn_implementation,
        "trust_remote_code": training.trust_remote_code,
    }
    if model_args.load_in_4bit or model_args.load_in_8bit:
        from trl import get_quantization_config

        quantized = model_args
        if model_args.load_in_4bit and model_args.dtype in (None, "auto"):
            # TRL passes dtype on as the 4-bit compute dtype (trl/trainer/utils.py:265), which transformers looks up
            # as torch.<dtype>: "auto" fails there. Compute in the dtype "auto" loads, the checkpoint's own.
            quantized = dataclasses.replace(model_args, dtype=checkpoint_dtype(model_args, training))
        training.model_init_kwargs["quantization_config"] = get_quantization_config(quantized)
    processor = None
    if script.images:
        # A vision-language model: TRL takes the processor as processing_class and then treats the model as one
        # (sft_trainer.py:718-724); pad/eos and the chat template go to the processor's tokenizer as for text.
        processor = AutoProcessor.from_pretrained(
            model_args.model_name_or_path, trust_remote_code=training.trust_remote_code
        )
        tokenizer = processor.tokenizer
    else:
        tokenizer = AutoTokenizer.from_pretrained(
            model_args.model_name_or_path, trust_remote_code=training.trust_remote_code
        )
    if script.tokenizer_chat_template:
        with open(script.tokenizer_chat_template) as f:
            tokenizer.chat_template = f.read()
        if processor is not None:
            processor.chat_template = tokenizer.chat_template  # processor.apply_chat_template reads its own
    set_special_tokens(tokenizer, script.tokenizer_pad_token, script.tokenizer_eos_token)
    train, evals = datasets_of(script, training.seed)
    if script.drop_prompts_over is not None:
        train = drop_long_prompts(train, tokenizer, script.drop_prompts_over)
        evals = drop_long_prompts(evals, tokenizer, script.drop_prompts_over) if evals is not None else None

    model = model_args.model_name_or_path
    peft_config = get_peft_config(model_args)
    if script.start_adapter_seed is not None:
        make_start_adapter(script, model_args, training)
    if script.adapter_init_path:
        # Same starting adapter as another framework: load it trainable instead of creating a random one.
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

        auto = AutoModelForImageTextToText if script.images else AutoModelForCausalLM
        base = auto.from_pretrained(model, **{k: v for k, v in training.model_init_kwargs.items() if v is not None})
        model, peft_config = PeftModel.from_pretrained(base, script.adapter_init_path, is_trainable=True), None
        if script.method in ("cpo", "orpo"):
            # The model is built: CPO and ORPO refuse model_init_kwargs beside an instantiated one (cpo_trainer.py).
            training.model_init_kwargs = None
    metrics = jsonl_metrics_callback(METRICS_LOG)
    kwargs = dict(
        model=model,
        args=training,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=processor or tokenizer,
        peft_config=peft_config,
        callbacks=[metrics, tracking_callback()],  # the run's name and the job in report_to's trackers
    )
    if script.method in ("grpo", "rloo"):
        kwargs["reward_funcs"] = [load_reward(ref) for ref in script.reward_funcs or []]
    trainer = trainer_cls(**kwargs)
    own_the_optimization(trainer)  # ptsdk's data order and loss normalization, as the plan's environment says
    model_card_without_trackio(trainer)
    note_rank(training)
    if hasattr(trainer, "_total_train_tokens"):
        # TRL's own token count (its logged num_tokens) is not in its checkpoints: ptsdk's are, and restore it.
        metrics.track(trainer, "_total_train_tokens")
    if training.process_index == 0:
        write_data_fingerprint(trainer.train_dataset)
        note_model(trainer.model)  # logs/model.json: a quantized base shows its bitsandbytes layers
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    print(
        f"[ptsdk] rank {training.process_index}: {trainer_cls.__name__}, world size {world}, device {training.device}",
        flush=True,
    )

    resume = os.environ.get("PTSDK_RESUME_FROM") or None  # the checkpoint ptsdk chose (and checked is complete)
    if resume is None and os.environ.get("PTSDK_RESUME") == "1":
        from transformers.trainer_utils import get_last_checkpoint

        resume = get_last_checkpoint(training.output_dir) if os.path.isdir(training.output_dir) else None
    if resume is not None or os.environ.get("PTSDK_RESUME") == "1":
        print(f"[ptsdk] resuming from {resume or 'the start (no checkpoint found)'}", flush=True)
    trainer.train(resume_from_checkpoint=resume)
    if evals is not None:
        trainer.evaluate()
    trainer.save_model(script.final_model_dir)
    if trainer.is_world_process_zero():
        (processor or tokenizer).save_pretrained(script.final_model_dir)
        summary = {
            "world_size": world,
            "global_step": trainer.state.global_step,
            "total_wall_s": time.time() - started,
            "num_input_tokens_seen": trainer.state.num_input_tokens_seen,
        }
        with open(os.path.join(os.path.dirname(METRICS_LOG), "trl_summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    if hasattr(trainer, "end"):
        trainer.end()
    elif dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
