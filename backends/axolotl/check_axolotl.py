"""Axolotl's own validation of a ptsdk translation, run by ptsdk's check harness in the Axolotl environment.

request: Backend.check_request (workdir, config = axolotl_config.yaml, target "cpu"|"gpu", world_size,
launcher) plus "preprocess": bool. Result: errors, notes and "unknown_keys".

Axolotl drops unknown top-level keys silently, so they are compared here with its schema's
fields and aliases. With "preprocess", dataset types are loaded and tokenized the way
`axolotl preprocess` does, into a scratch folder, without training.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import tempfile
from typing import Any

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")

VERSIONS = ("axolotl", "transformers", "trl", "torch", "peft")


def schema_keys(cfg: Any) -> set[str]:
    from axolotl.utils.config import merge_input_args

    keys: set[str] = set()
    for model in merge_input_args():  # the schema as extended by the configured plugins
        if not hasattr(model, "model_fields"):
            continue
        for name, info in model.model_fields.items():
            keys.add(name)
            for alias in (info.alias, info.validation_alias, info.serialization_alias):
                if isinstance(alias, str):
                    keys.add(alias)
                elif alias is not None and hasattr(alias, "choices"):
                    keys.update(c for c in alias.choices if isinstance(c, str))
    return keys


def model_keys(model: Any) -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        if isinstance(info.alias, str):
            keys.add(info.alias)
    return keys


def nested_unknown_keys(raw: dict[str, Any]) -> list[str]:
    """Keys inside datasets entries and the trl section that Axolotl's schema has no field for
    (their pydantic models drop extras silently too)."""
    from axolotl.utils.schemas.datasets import (
        DPODataset,
        KTODataset,
        SFTDataset,
        UserDefinedDPOType,
        UserDefinedKTOType,
        UserDefinedPrompterType,
    )
    from axolotl.utils.schemas.trl import TRLConfig

    rl = raw.get("rl")
    entry_model = KTODataset if rl == "kto" else DPODataset if rl in ("dpo", "ipo", "orpo", "simpo") else SFTDataset
    type_model = (
        UserDefinedKTOType
        if rl == "kto"
        else UserDefinedDPOType
        if rl in ("dpo", "ipo", "orpo", "simpo")
        else UserDefinedPrompterType
    )
    out = []
    for section in ("datasets", "test_datasets"):
        for i, entry in enumerate(raw.get(section) or []):
            out += [f"{section}.{i}.{k}" for k in entry if k not in model_keys(entry_model)]
            if isinstance(entry.get("type"), dict):
                out += [f"{section}.{i}.type.{k}" for k in entry["type"] if k not in model_keys(type_model)]
    out += [f"trl.{k}" for k in (raw.get("trl") or {}) if k not in model_keys(TRLConfig)]
    return out


def check(request: dict[str, Any]) -> dict[str, Any]:
    import torch
    import yaml
    from axolotl.cli.config import prepare_plugins
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    out: dict[str, Any] = {"errors": [], "unknown_keys": [], "notes": []}
    with open(request["config"]) as f:
        raw = yaml.safe_load(f)
    cfg = DictDefault(copy.deepcopy(raw))
    cfg.axolotl_config_path = request["config"]
    prepare_plugins(cfg)
    out["unknown_keys"] = sorted(k for k in raw if k not in schema_keys(cfg)) + nested_unknown_keys(raw)
    out["errors"] += [f"{k}: Axolotl would drop this key silently (not in its schema)" for k in out["unknown_keys"]]
    if torch.cuda.is_available():
        gpu = {"bf16": torch.cuda.is_bf16_supported(), "tf32": True, "compute_capability": None}
    elif request.get("target") == "gpu":
        # Validate a GPU job against the GPU it is meant for (an Ampere-or-newer card), not this machine.
        gpu = {"bf16": True, "tf32": True, "compute_capability": "sm_90"}
        out["notes"].append("no GPU here: validated with the capabilities of a bf16-capable GPU")
    else:
        gpu = {"bf16": False, "tf32": False, "compute_capability": None}
    capabilities = {**gpu, "fp8": False, "n_gpu": int(request.get("world_size", 1))}
    try:
        validate_config(
            cfg, capabilities=capabilities, env_capabilities={"torch_version": torch.__version__.split("+", 1)[0]}
        )
    except Exception as exc:  # Axolotl's verdict; the unknown keys above are reported too
        out["errors"] = problems_of(exc) + out["errors"]
    if not out["errors"] and raw.get("deepspeed"):
        out["errors"] += deepspeed_problems(raw, out["notes"])
    if not out["errors"] and raw.get("processor_type"):
        out["errors"] += multimodal_problems(raw, request["workdir"], out["notes"])
    if not out["errors"] and request.get("preprocess"):
        out["errors"] += preprocess(request["config"])
    return out


def deepspeed_problems(raw: dict[str, Any], notes: list[str]) -> list[str]:
    """The DeepSpeed JSON the config names, checked as a run would meet it: transformers reads it with the
    trainer arguments Axolotl derives from the config (per-device batch = micro_batch_size, accumulation,
    max_grad_norm, bf16/fp16: axolotl/core/builders/base.py:270-278), fills every "auto" and refuses values
    that disagree (HfTrainerDeepSpeedConfig, as the Trainer does at start-up); then DeepSpeed's own schema
    (extra keys forbidden) reads the resulting ZeRO section."""
    import types

    import torch
    from transformers import AutoConfig, TrainingArguments

    path = raw["deepspeed"]
    if not isinstance(path, str) or not os.path.isfile(path):
        return [f"deepspeed: {path!r} is not a file beside the config"]
    if importlib.util.find_spec("deepspeed") is None:
        return [
            "deepspeed: DeepSpeed is not installed in the Axolotl environment (Axolotl's `deepspeed` extra); "
            "rebuild it with `ptsdk env create axolotl`"
        ]
    saved = dict(os.environ)
    try:
        args = TrainingArguments(
            output_dir=tempfile.mkdtemp(prefix="ptsdk-axolotl-ds-"),
            per_device_train_batch_size=raw["micro_batch_size"],
            gradient_accumulation_steps=raw.get("gradient_accumulation_steps") or 1,
            max_grad_norm=raw.get("max_grad_norm", 1.0),
            learning_rate=raw["learning_rate"],
            weight_decay=raw.get("weight_decay") or 0.0,
            bf16=raw.get("bf16") is True or bool(raw.get("bfloat16")),
            fp16=raw.get("fp16") is True,
            use_cpu=not torch.cuda.is_available(),
            deepspeed=path,
        )
        try:
            model_config = AutoConfig.from_pretrained(
                raw["base_model"], trust_remote_code=bool(raw.get("trust_remote_code"))
            )
        except Exception:  # a hub model on an offline machine: size the "auto" buckets from a stand-in
            model_config = types.SimpleNamespace(hidden_size=1024)
            notes.append("model config not readable here: DeepSpeed's hidden-size 'auto' values checked with 1024")
        steps = raw.get("max_steps") or 1000
        ds = args.hf_deepspeed_config
        ds.trainer_config_finalize(args, types.SimpleNamespace(config=model_config), steps)
        from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

        DeepSpeedZeroConfig(**ds.config.get("zero_optimization", {}))
    except Exception as exc:  # the verdict of transformers or DeepSpeed
        return ["deepspeed: " + p for p in problems_of(exc)]
    finally:
        os.environ.clear()
        os.environ.update(saved)
        from accelerate.state import AcceleratorState, PartialState

        AcceleratorState._reset_state(reset_partial_state=True)
        PartialState._reset_state()
    return []


def multimodal_problems(raw: dict[str, Any], workdir: str, notes: list[str]) -> list[str]:
    """An image job through Axolotl's own multimodal path, as its trainer builds it (axolotl/core/builders/
    causal.py:535-594): the records converted by the run's axolotl_images.py, the model's processor, Axolotl's
    processing strategy for it and its MultiModalChatDataCollator on the first records. A job whose loss is on
    the assistant turns is refused when the strategy has no role markers for the model: the collator would then
    train on every token (axolotl/processing_strategies.py:344-356)."""
    import json
    import sys

    from axolotl.processing_strategies import get_processing_strategy
    from axolotl.utils.collators.mm_chat import MultiModalChatDataCollator
    from axolotl.utils.dict import DictDefault
    from transformers import AutoConfig, AutoProcessor

    sys.path.insert(0, workdir)  # axolotl_images.py and ptsdk_runtime.py, written beside the config
    try:
        import axolotl_images  # type: ignore[import-not-found]
    finally:
        sys.path.remove(workdir)
    with open(os.path.join(workdir, axolotl_images.__name__ + ".json")) as f:
        spec = json.load(f)
    rows, problems = axolotl_images.convert_split(spec, spec["splits"]["train"])
    if problems:
        return [f"data.train.path: {p}" for p in problems]
    trust = bool(raw.get("trust_remote_code"))
    try:
        processor = AutoProcessor.from_pretrained(raw["base_model"], trust_remote_code=trust)
        model_type = AutoConfig.from_pretrained(raw["base_model"], trust_remote_code=trust).model_type
    except Exception as exc:  # a hub model on an offline machine
        notes.append(f"multimodal path not checked: the model's processor did not load here ({exc.__class__.__name__})")
        return []
    entry = (raw.get("datasets") or [{}])[0]
    train_on_inputs = bool(raw.get("train_on_inputs"))
    # As the trainer reads them: cfg is a DictDefault, and so is each role_boundaries entry (causal.py:558-561).
    cfg = DictDefault(copy.deepcopy(raw))
    try:
        strategy = get_processing_strategy(
            processor,
            raw.get("chat_template_jinja"),
            raw.get("chat_template"),
            image_size=raw.get("image_size"),
            train_on_inputs=train_on_inputs,
            roles_to_train=entry.get("roles_to_train"),
            train_on_eos=entry.get("train_on_eos"),
            role_boundaries_override=list(cfg.role_boundaries) if cfg.role_boundaries else None,
            field_messages=[entry.get("field_messages") or "messages"],
            model_type=model_type,
        )
    except Exception as exc:  # Axolotl's verdict, as its trainer would meet it
        where = "backend_options.axolotl.role_boundaries" if raw.get("role_boundaries") else "processor_type"
        return [f"{where}: Axolotl's multimodal processing strategy failed: {p}" for p in problems_of(exc)]
    if not train_on_inputs and not strategy.role_boundaries:
        return [
            f"method.loss_on: completion: Axolotl's multimodal collator has no role markers for this model "
            f"(model_type {model_type}, {type(strategy).__name__}) and would train on every token "
            "(axolotl/processing_strategies.py:344-356); set method.loss_on: all, or use --backend trl (TRL masks "
            "by the chat template's generation markers). Axolotl 0.19's own override, role_boundaries, fails in "
            "its trainer when read from a config file"
        ]
    try:
        collator = MultiModalChatDataCollator(tokenizer=processor.tokenizer, processing_strategy=strategy)
        batch = collator.torch_call(rows[:2])
    except Exception as exc:  # Axolotl's or the processor's verdict on the records
        return [
            f"data.images: Axolotl's multimodal collator failed on the first records: {p}" for p in problems_of(exc)
        ]
    if "pixel_values" not in batch or not bool((batch["labels"] != -100).any()):
        return ["data.images: Axolotl's multimodal collator made no image input or no trained token from the records"]
    notes.append(f"{len(rows)} image records passed Axolotl's multimodal collator ({type(strategy).__name__})")
    return []


def preprocess(config: str) -> list[str]:
    """What `axolotl preprocess` does, into a scratch folder: dataset types load and tokenize."""
    from axolotl.cli.args import PreprocessCliArgs
    from axolotl.cli.config import load_cfg
    from axolotl.cli.preprocess import do_preprocess

    tmp = tempfile.mkdtemp(prefix="ptsdk-axolotl-preprocess-")
    os.environ["AXOLOTL_IS_PREPROCESS"] = "1"
    try:
        pcfg = load_cfg(
            config,
            is_preprocess=True,
            dataset_prepared_path=os.path.join(tmp, "prepared"),
            output_dir=os.path.join(tmp, "out"),
        )
        pcfg.is_preprocess = True
        do_preprocess(pcfg, PreprocessCliArgs())
    except Exception as exc:  # the framework's verdict, whatever form it takes
        return ["preprocess: " + p for p in problems_of(exc)]
    finally:
        os.environ.pop("AXOLOTL_IS_PREPROCESS", None)
    return []


def problems_of(exc: Exception) -> list[str]:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return [f"{'.'.join(str(x) for x in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()]
    return [f"{exc.__class__.__name__}: {exc}"]
