#!/usr/bin/env python
"""Run Unsloth SFT from a YAML config: Unsloth's FastLanguageModel loads the model (and adds the LoRA adapter),
Unsloth's patched TRL SFTTrainer trains it.

    UNSLOTH_FORCE_CPU=1 python train_unsloth.py --config unsloth_config.yaml

The YAML holds the fields of ScriptArgs below (what FastLanguageModel.from_pretrained / get_peft_model take) and
of TRL's SFTConfig, parsed by TRL's own TrlParser after Unsloth has patched TRL; unknown keys are an error.
Unsloth's own `unsloth train -c` has no learning-rate schedule, optimizer, clipping, evaluation data or trainer
callbacks (unsloth_cli/config.py), so ptsdk drives Unsloth's Python API, as its notebooks do. Written by ptsdk into
the run directory beside ptsdk_runtime.py (metrics callback, data fingerprint).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from dataclasses import dataclass, field

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")  # no network calls at load time


@dataclass
class ScriptArgs:
    model_name_or_path: str = field(metadata={"help": "local folder or hub id, as FastLanguageModel takes it"})
    train_path: str = field(metadata={"help": "local .jsonl/.json/.parquet file or a hub dataset id"})
    eval_path: str | None = field(default=None, metadata={"help": "evaluation data, like train_path"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N training rows"})
    max_seq_length: int = field(default=2048, metadata={"help": "FastLanguageModel's max_seq_length"})
    load_dtype: str | None = field(default=None, metadata={"help": "float32, bfloat16, float16 or null (auto)"})
    load_in_4bit: bool = field(default=False, metadata={"help": "bitsandbytes NF4 base weights (QLoRA)"})
    full_finetuning: bool = field(default=False, metadata={"help": "train every weight (no adapter)"})
    lora_r: int = field(default=16, metadata={"help": "get_peft_model r"})
    lora_alpha: int = field(default=16, metadata={"help": "get_peft_model lora_alpha"})
    lora_dropout: float = field(default=0.0, metadata={"help": "get_peft_model lora_dropout"})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "get_peft_model target_modules (null: Unsloth's q/k/v/o/gate/up/down)"}
    )
    use_gradient_checkpointing: str = field(
        default="false", metadata={"help": "get_peft_model use_gradient_checkpointing: unsloth, true or false"}
    )
    tokenizer_chat_template: str | None = field(default=None, metadata={"help": "a .jinja file replacing the template"})
    final_model_dir: str = field(default="model", metadata={"help": "where the trained model or adapter is saved"})


def parse(argv: list[str] | None = None):
    """TRL's own parser on ScriptArgs and SFTConfig, after `import unsloth` patched TRL (its CPU backend
    normalizes SFTConfig in __post_init__: unsloth_zoo/cpu/trainer.py)."""
    importlib.import_module("unsloth")  # first: it patches transformers and TRL
    from trl import SFTConfig, TrlParser

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.parse_known_args(argv)
    parser = TrlParser((ScriptArgs, SFTConfig))
    script, training = parser.parse_args_and_config(args=argv)
    return script, training


def gradient_checkpointing(value: str) -> str | bool:
    return {"true": True, "false": False}.get(value.lower(), value)


def load_model(script: ScriptArgs, seed: int):
    import torch

    fast = importlib.import_module("unsloth").FastLanguageModel

    dtype = getattr(torch, script.load_dtype) if script.load_dtype else None
    model, tokenizer = fast.from_pretrained(
        model_name=script.model_name_or_path,
        max_seq_length=script.max_seq_length,
        dtype=dtype,
        load_in_4bit=script.load_in_4bit,
        full_finetuning=script.full_finetuning,
        local_files_only=os.path.isdir(script.model_name_or_path),
    )
    if not script.full_finetuning:
        kwargs = {} if script.lora_target_modules is None else {"target_modules": script.lora_target_modules}
        model = fast.get_peft_model(
            model,
            r=script.lora_r,
            lora_alpha=script.lora_alpha,
            lora_dropout=script.lora_dropout,
            use_gradient_checkpointing=gradient_checkpointing(script.use_gradient_checkpointing),
            random_state=seed,
            **kwargs,
        )
    return model, tokenizer


def load_data(path: str, limit: int | None = None):
    from datasets import load_dataset

    if path.endswith((".jsonl", ".json")):
        ds = load_dataset("json", data_files=path, split="train")
    elif path.endswith(".parquet"):
        ds = load_dataset("parquet", data_files=path, split="train")
    else:
        ds = load_dataset(path, split="train")
    return ds.select(range(min(limit, len(ds)))) if limit is not None else ds


def main() -> None:
    started = time.time()
    script, training = parse()
    from ptsdk_runtime import (  # copied beside this script
        METRICS_LOG,
        jsonl_metrics_callback,
        note_model,
        note_rank,
        own_the_optimization,
        tracking_callback,
        write_data_fingerprint,
    )
    from trl import SFTTrainer

    model, tokenizer = load_model(script, training.seed)
    # logs/model.json; Unsloth's CPU loader falls back to 16-bit weights with only a printed line when 4-bit fails
    # (unsloth_zoo/cpu/loader.py), which a QLoRA job must not take for QLoRA.
    quantized = note_model(model)["bitsandbytes_layers"].get("Linear4bit", 0)
    if script.load_in_4bit and quantized == 0:
        raise SystemExit("model.quantization: Unsloth loaded 16-bit weights, not 4-bit ones (see its log above)")
    if script.tokenizer_chat_template:
        with open(script.tokenizer_chat_template) as f:
            tokenizer.chat_template = f.read()
    train = load_data(script.train_path, script.max_train_samples)
    evals = load_data(script.eval_path) if script.eval_path else None
    trainer = SFTTrainer(
        model=model,
        args=training,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=tokenizer,
        callbacks=[jsonl_metrics_callback(METRICS_LOG), tracking_callback()],
    )
    own_the_optimization(trainer)  # ptsdk's data order, warmup, seed and loss normalization (the plan's env)
    note_rank(training)
    write_data_fingerprint(trainer.train_dataset)
    print(
        f"[ptsdk] {type(trainer).__name__} from {type(trainer).__module__}, device {training.device}, "
        f"model {type(model).__name__}",
        flush=True,
    )
    trainer.train()
    if evals is not None:
        trainer.evaluate()
    model.save_pretrained(script.final_model_dir)
    tokenizer.save_pretrained(script.final_model_dir)
    summary = {
        "unsloth_device": importlib.import_module("unsloth").DEVICE_TYPE,
        "unsloth_trainer": bool(getattr(type(trainer), "_unsloth_cpu", False)) or "unsloth" in type(trainer).__module__,
        "linear4bit_layers": quantized,
        "global_step": trainer.state.global_step,
        "total_wall_s": time.time() - started,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    with open(os.path.join(os.path.dirname(METRICS_LOG), "unsloth_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
