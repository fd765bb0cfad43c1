"""`ptsdk import --from axolotl`: an Axolotl YAML config (what `axolotl train` reads) as a ptsdk job.

Every native setting the job spec can say is mapped onto the job; the rest goes to
``backend_options.axolotl`` when the passthrough may carry it (a key ptsdk neither sets from the job nor
leaves to a job field), or is dropped; each approximation, passthrough and drop gets a Note naming the
dotted native key. The batch arithmetic inverts AxolotlBackend.translate: translate writes
``micro_batch_size = training.micro_batch_size`` and ``gradient_accumulation_steps = global_batch_size //
(micro_batch_size x data-parallel size)``, so ``global_batch_size = micro x accumulation x data-parallel
size``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ptsdk.backends.axolotl.backend import PLUGIN
from ptsdk.errors import PtsdkError
from ptsdk.plugins.backend import ImportResult, Note
from ptsdk.plugins.kit import HF_OPTIMIZERS

#: Axolotl's optimizer names (transformers' `optim` plus Axolotl's own aliases) -> ptsdk's.
OPTIMIZERS = {
    **{native: ours for ours, native in HF_OPTIMIZERS.items()},
    "adamw_8bit": "adamw_8bit",  # Axolotl's alias of bitsandbytes' 8-bit AdamW
}
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
ATTENTION = ("eager", "sdpa", "flash_attention_2")
#: Native keys that describe where and how the run is hosted, not the training: dropped with a note.
ENVIRONMENT = re.compile(
    r"(wandb_.*|mlflow_.*|comet_.*|hub_.*|push_.*|output_dir|dataset_prepared_path|resume_from_checkpoint"
    r"|auto_resume_from_checkpoints|use_ray|ray_.*|strict|debug.*|use_wandb|use_mlflow|save_safetensors)"
)
#: Keys the importer reads (or whose whole subtree it reads) while building the job.
FSDP_KEYS = ("fsdp", "fsdp_config", "fsdp_version")


def import_axolotl(source: Path, backend: Any) -> ImportResult:
    raw = _load(source)
    settings = flatten(raw)
    return _Importer(source, raw, settings, backend).run()


def _load(source: Path) -> dict[str, Any]:
    try:
        text = source.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PtsdkError(f"{source}: cannot read it ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else str(source)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PtsdkError(f"{where}: not an Axolotl config: YAML does not parse ({problem})") from None
    if not isinstance(data, dict):
        raise PtsdkError(
            f"{source}:1: not an Axolotl config: an Axolotl config is a YAML mapping of settings "
            f"(base_model, datasets, ...), this file holds {type(data).__name__}"
        )
    if not isinstance(data.get("base_model"), str) or not data["base_model"].strip():
        raise PtsdkError(
            f"{source}:1: not a complete Axolotl config: it has no base_model (the model `axolotl train` "
            "fine-tunes); add base_model: <hub id or path>"
        )
    return data


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and empty mappings stay values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _int(value: Any) -> int | None:
    n = _number(value)
    return int(n) if n is not None and n == int(n) else None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    ba, bb = _bool(a), _bool(b)
    if ba is not None or bb is not None:
        return ba == bb
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return math.isclose(na, nb, rel_tol=1e-9)
    return bool(a == b)


class _Importer:
    def __init__(self, source: Path, raw: dict[str, Any], settings: dict[str, Any], backend: Any) -> None:
        self.source, self.raw, self.s, self.backend = source, raw, settings, backend
        self.used: set[str] = set()
        self.notes: list[Note] = []

    # --- helpers ---------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """A setting, marked as read (a null reads as unset)."""
        if key in self.s and self.s[key] is not None:
            self.used.add(key)
            return self.s[key]
        return default  # a null is left to environment(): dropped with a note

    def under(self, prefix: str) -> dict[str, Any]:
        return {k: v for k, v in self.s.items() if k == prefix or k.startswith(prefix + ".")}

    def note(self, key: str, kind: Any, message: str) -> None:
        self.used.add(key)
        self.notes.append(Note(key, kind, message))

    # --- the job ---------------------------------------------------------------------------------

    def run(self) -> ImportResult:
        job: dict[str, Any] = {"version": 1, "name": _job_name(self.source.stem)}
        job["model"] = self.model()
        job["method"] = self.method()
        job["adapter"] = self.adapter(job["model"])
        job["data"] = self.data(job["method"])
        job["training"] = self.training(job["method"])
        job["distributed"] = self.distributed()
        job["training"]["global_batch_size"] = self.global_batch(job)
        job["output"] = self.output(job)
        rollout = self.rollout(job["method"])
        if rollout:
            job["rollout"] = rollout
        self.environment()
        self.rest(job)
        return ImportResult(job=job, notes=self.notes, settings=dict(self.s))

    def model(self) -> dict[str, Any]:
        m: dict[str, Any] = {"name_or_path": str(self.get("base_model")).strip()}
        if self.get("trust_remote_code") is not None:
            m["trust_remote_code"] = bool(_bool(self.get("trust_remote_code")))
        attn = self.get("attn_implementation")
        if attn in ATTENTION:
            m["attn_implementation"] = attn
        elif attn is not None:
            self.used.discard("attn_implementation")  # not a spec value: the passthrough carries it
        if _bool(self.get("load_in_4bit")):
            m["quantization"] = "4bit"
        elif _bool(self.get("load_in_8bit")):
            m["quantization"] = "8bit"
        for key in ("load_in_4bit", "load_in_8bit"):
            if key in self.s and not _bool(self.s[key]):
                self.note(key, "dropped", f"{key}: false is Axolotl's default; ptsdk writes nothing for it")
        for key in ("pad_token", "eos_token"):
            token = self.get(f"special_tokens.{key}")
            if isinstance(token, str) and token:
                m[key] = token
        jinja = self.s.get("chat_template_jinja")
        if self.s.get("chat_template") == "jinja" and jinja:
            m["chat_template"] = jinja
            self.used.update(("chat_template", "chat_template_jinja"))
        # A named Axolotl template (llama3, chatml, tokenizer_default) is no job field: rest() passes it
        # through, or notes it where ptsdk writes its own.
        return m

    def method(self) -> dict[str, Any]:
        rl = self.get("rl")
        if rl is None:
            loss_all = _bool(self.get("train_on_inputs"))
            return {"name": "sft", "loss_on": "all" if loss_all else "completion"}
        rl = str(rl)
        beta = self.get("rl_beta")
        if rl in ("dpo", "ipo"):
            losses = self.get("dpo_loss_type")
            losses = losses if isinstance(losses, list) else [losses] if losses else []
            if rl == "dpo" and losses == ["ipo"]:
                rl = "ipo"
                self.note("rl", "approximated", "rl: dpo with dpo_loss_type [ipo] is ptsdk's method ipo (rl: ipo)")
                self.note("dpo_loss_type", "approximated", "dpo_loss_type [ipo] is method.name ipo")
            elif losses and losses != ["sigmoid"]:
                self.used.discard("dpo_loss_type")  # not a loss ptsdk's Axolotl translation writes: passthrough
            out: dict[str, Any] = {"name": rl}
            if beta is not None:
                out["beta"] = float(beta)
            return out
        if rl == "orpo":
            alpha = self.get("orpo_alpha")
            return {"name": "orpo", **({"beta": float(alpha)} if alpha is not None else {})}
        if rl == "simpo":
            out = {"name": "simpo"}
            for key, field in (("rl_beta", "beta"), ("simpo_gamma", "gamma"), ("cpo_alpha", "sft_weight")):
                if self.get(key) is not None:
                    out[field] = float(self.get(key))
            return out
        if rl == "kto":
            out = {"name": "kto"}
            if beta is not None:
                out["beta"] = float(beta)
            for key, field in (
                ("kto_desirable_weight", "desirable_weight"),
                ("kto_undesirable_weight", "undesirable_weight"),
            ):
                if self.get(key) is not None:
                    out[field] = float(self.get(key))
            if "remove_unused_columns" in self.s and _bool(self.s["remove_unused_columns"]) is False:
                self.used.add("remove_unused_columns")  # ptsdk writes the same for KTO
            return out
        if rl == "grpo":
            return self.grpo()
        raise PtsdkError(
            f"{self.source}:{_line(self.source, 'rl')}: rl: {rl} has no ptsdk method "
            "(ptsdk's methods: sft, dpo, ipo, orpo, simpo, kto, grpo on Axolotl)"
        )

    def grpo(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": "grpo"}
        for key, field in (
            ("trl.num_generations", "num_generations"),
            ("trl.max_completion_length", "max_completion_length"),
            ("trl.temperature", "temperature"),
            ("trl.beta", "kl_coef"),
            ("trl.epsilon", "clip_epsilon"),
            ("trl.loss_type", "loss_type"),
        ):
            value = self.get(key)
            if value is not None:
                out[field] = value if field == "loss_type" else _number(value)
                if field in ("num_generations", "max_completion_length"):
                    out[field] = int(out[field])
        rewards = []
        for ref in self.get("trl.reward_funcs", []) or []:
            ref = str(ref)
            if "." in ref and "/" not in ref:
                module, fn = ref.rsplit(".", 1)
                rewards.append(f"{module}:{fn}")
            else:
                out["reward_model"] = ref
        if rewards:
            out["rewards"] = rewards
        if rewards:
            self.note(
                "trl.reward_funcs",
                "approximated",
                "module.function references become method.rewards 'module:function'; the module must be "
                "importable from the job's folder (Axolotl imports it from the working directory)",
            )
        # TRL's GRPO through Axolotl has no prompt limit (its blocklist drops max_prompt_length).
        out["max_prompt_length"] = None
        iterations = _int(self.get("trl.num_iterations"))
        if iterations:
            out["epochs_per_rollout"] = iterations
        generation = _int(self.get("trl.generation_batch_size"))
        if generation:
            groups = int(out.get("num_generations", 8))
            if generation % groups:
                self.used.discard("trl.generation_batch_size")  # not whole prompts: the passthrough keeps it
            else:
                out["rollout_batch_size"] = generation // groups
        weights = self.get("trl.reward_weights")
        if weights is not None:
            self.used.discard("trl.reward_weights")  # the spec has no reward weights: passthrough below
        return out

    def adapter(self, model: dict[str, Any]) -> dict[str, Any]:
        kind = self.get("adapter")
        if kind is None:
            return {"type": "full"}
        if kind not in ("lora", "qlora"):
            raise PtsdkError(
                f"{self.source}:{_line(self.source, 'adapter')}: adapter: {kind} has no ptsdk adapter "
                "(ptsdk has full fine-tuning, lora and qlora)"
            )
        a: dict[str, Any] = {"type": kind}
        for key, field in (("lora_r", "r"), ("lora_alpha", "alpha"), ("lora_dropout", "dropout")):
            value = self.get(key)
            if value is not None:
                a[field] = float(value) if field == "dropout" else int(value)
        targets = self.get("lora_target_modules")
        linear = _bool(self.get("lora_target_linear"))
        if linear:
            a["target_modules"] = "all-linear"
            if targets:
                self.note(
                    "lora_target_modules",
                    "dropped",
                    "lora_target_linear: true already adapts every linear layer (Axolotl adds these names to it); "
                    "ptsdk writes target_modules all-linear",
                )
        elif isinstance(targets, list) and targets:
            a["target_modules"] = [str(t) for t in targets]
            if "lora_target_linear" in self.s and self.s["lora_target_linear"] is not None:
                self.note("lora_target_linear", "dropped", "false: the listed lora_target_modules are the targets")
        else:
            a["target_modules"] = "all-linear"
            self.note(
                "lora_target_modules",
                "approximated",
                "no lora_target_modules nor lora_target_linear: ptsdk adapts every linear layer (all-linear)",
            )
        if self.get("lora_model_dir"):
            a["init_path"] = self.get("lora_model_dir")
        if kind == "qlora" and model.get("quantization") != "4bit":
            model["quantization"] = "4bit"
            self.note("adapter", "approximated", "adapter: qlora trains on a 4-bit base: model.quantization 4bit")
        if kind == "lora" and model.get("quantization") == "4bit":
            a["type"] = "qlora"
            self.note("adapter", "approximated", "adapter: lora on load_in_4bit is ptsdk's qlora")
        return a

    def data(self, method: dict[str, Any]) -> dict[str, Any]:
        name = method["name"]
        family = {"sft": "sft", "kto": "unpaired_preference", "grpo": "rl"}.get(name, "preference")
        datasets = self.get("datasets")
        if not isinstance(datasets, list) or not datasets or not isinstance(datasets[0], dict):
            raise PtsdkError(
                f"{self.source}:{_line(self.source, 'datasets')}: not a complete Axolotl config: datasets must "
                "list at least one dataset (path: <file or hub id>)"
            )
        first = datasets[0]
        if not first.get("path"):
            raise PtsdkError(f"{self.source}:{_line(self.source, 'datasets')}: datasets[0] has no path")
        d: dict[str, Any] = {"train": self._source(first)}
        kind = first.get("type")
        fmt = {"sft": "prompt_completion", "rl": "prompt"}.get(family, family)
        columns: dict[str, str] = {}
        mapped: list[str] = []  # the entry's keys that became job fields besides path, split and name
        if family == "sft" and isinstance(kind, str) and kind.startswith("chat_template"):
            fmt = "messages"
            field = first.get("field_messages")
            if field and field != "messages":
                columns["messages"] = str(field)
            d.update(_message_fields(first))
            mapped = ["type", *(k for k in (*MESSAGE_KEYS, "field_messages") if k in first)]
        elif family == "sft" and kind == "alpaca":
            fmt = "instruction"  # Axolotl's Alpaca prompter: ptsdk's instruction records, written back as alpaca
        elif family == "preference" and kind == (
            "chat_template.argilla" if name == "orpo" else "chat_template.argilla_chat"
        ):
            # Whole conversations in chosen/rejected (axolotl/prompt_strategies/dpo/chat_template.py:126-244; ORPO's
            # own: orpo/chat_template.py:251-280): the translation writes the same type back for
            # data.prompt_in_answers.
            d["prompt_in_answers"] = True
            for canon in ("chosen", "rejected") if name != "orpo" else ():  # ORPO's loader reads fixed columns
                native = first.get(f"field_{canon}")
                if native and native != canon:
                    columns[canon] = str(native)
            mapped = ["type", *(k for k in ("field_chosen", "field_rejected") if k in first)]
        d["format"] = fmt
        if columns:
            d["columns"] = columns
        kept = "path" + (" and split" if "split" in first else "") + (" and name (subset)" if "name" in first else "")
        if d.get("prompt_in_answers") or "message_keys" in d or "role_names" in d:
            rest = sorted(set(first) - {"path", "split", "name", *mapped})
            said = ", ".join(
                f"{k} {d[k]}"
                for k in ("format", "columns", "message_keys", "role_names", "prompt_in_answers")
                if k in d
            )
            self.note(
                "datasets",
                "approximated",
                f"ptsdk keeps the first dataset's {kept}; its {', '.join(mapped)} "
                f"{'is' if len(mapped) == 1 else 'are'} data.{said}"
                + (
                    "; no roles: Axolotl's default role map (human -> user, gpt -> assistant) is data.role_names"
                    if "role_names" in d and "roles" not in first
                    else ""
                )
                + (f"; {rest} have no job field" if rest else "")
                + (f"; {len(datasets) - 1} more dataset(s) dropped" if len(datasets) > 1 else ""),
            )
        elif fmt == "instruction":
            rest = sorted(set(first) - {"path", "split", "name", "type"})
            self.note(
                "datasets",
                "approximated",
                f"ptsdk keeps the first dataset's {kept}; type alpaca is data.format instruction"
                + (f"; {rest} have no job field" if rest else "")
                + (f"; {len(datasets) - 1} more dataset(s) dropped" if len(datasets) > 1 else ""),
            )
        else:
            self.note(
                "datasets",
                "approximated",
                f"ptsdk keeps the first dataset's {kept} and reads it as canonical {fmt} records; Axolotl's dataset "
                f"type {kind!r} (prompt format, field and role mappings: "
                f"{sorted(set(first) - {'path', 'split', 'name'})}) has no job field: convert the data to the "
                "canonical format" + (f"; {len(datasets) - 1} more dataset(s) dropped" if len(datasets) > 1 else ""),
            )
        evals = self.get("test_datasets")
        if isinstance(evals, list) and evals and isinstance(evals[0], dict) and evals[0].get("path"):
            d["eval"] = self._source(evals[0])
            self.note("test_datasets", "approximated", "ptsdk keeps the first eval dataset's path and split")
        val = _number(self.get("val_set_size"))
        if val and "eval" not in d:
            if 0 < val < 1:
                d["eval_split"] = val
            else:
                self.note(
                    "val_set_size",
                    "dropped",
                    f"{val:g} rows: ptsdk holds out a fraction (data.eval_split), not a count; the import trains on "
                    "all rows and evaluates nothing",
                )
        seq = _int(self.get("sequence_len"))
        if seq is not None and family != "rl":
            d["max_length"] = seq
        elif seq is not None:
            self.note(
                "sequence_len",
                "dropped",
                "Axolotl's GRPO keeps every prompt whatever its length (axolotl/utils/data/rl.py:176-177) and "
                "generates trl.max_completion_length tokens: ptsdk writes no sequence_len for it (method."
                "max_prompt_length null, max_completion_length)",
            )
        strategy = self.get("excess_length_strategy")
        d["truncation"] = "truncate" if strategy == "truncate" else "drop"
        if strategy not in (None, "truncate", "drop"):
            self.note("excess_length_strategy", "approximated", f"{strategy}: ptsdk drops over-long sequences")
        return d

    def _source(self, entry: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(entry["path"])}  # ${VAR} strings and hub ids stay as written
        if entry.get("split"):
            out["split"] = str(entry["split"])
        if (
            isinstance(entry.get("name"), str)
            and entry["name"]
            and not out["path"].endswith((".jsonl", ".json", ".parquet"))
        ):
            out["subset"] = entry["name"]
        return out

    def training(self, method: dict[str, Any]) -> dict[str, Any]:
        t: dict[str, Any] = {}
        micro = _int(self.get("micro_batch_size"))
        t["micro_batch_size"] = micro or 1
        lr = _number(self.get("learning_rate"))
        if lr is not None:
            t["learning_rate"] = lr
        sched = self.get("lr_scheduler")
        if sched in SCHEDULERS:
            t["lr_scheduler"] = sched
        elif sched is not None:
            self.note("lr_scheduler", "approximated", f"{sched} has no ptsdk schedule; ptsdk uses cosine")
        steps = _int(self.get("max_steps"))
        epochs = _number(self.get("num_epochs"))
        if steps:
            t["max_steps"] = steps
            if epochs is not None:
                self.note("num_epochs", "dropped", "max_steps is set and overrides it")
        elif epochs is not None:
            t["epochs"] = epochs
        ratio = _number(self.get("warmup_ratio"))
        warm = _int(self.get("warmup_steps"))
        if warm is not None:
            if steps:
                r = warm / steps
                while math.ceil(r * steps) > warm:  # translate writes ceil(ratio x max_steps): land on warm
                    r = math.nextafter(r, 0.0)
                t["warmup_ratio"] = r
                self.note("warmup_steps", "approximated", f"training.warmup_ratio {r:g} of max_steps {steps}")
            else:
                self.note("warmup_steps", "dropped", "ptsdk states warmup as a ratio; without max_steps it cannot")
        elif ratio is not None:
            t["warmup_ratio"] = ratio
            if steps:
                self.note("warmup_ratio", "approximated", "with max_steps ptsdk writes warmup_steps (rounded up)")
        for key in ("adam_beta1", "adam_beta2", "adam_epsilon"):
            value = _number(self.get(key))
            if value is not None:
                t[key] = value
        floor = _number(self.get("cosine_min_lr_ratio"))
        if floor is not None and t.get("lr_scheduler", "cosine") == "cosine" and 0 <= floor < 1:
            t["min_lr_ratio"] = floor
        elif floor is not None:
            self.used.discard("cosine_min_lr_ratio")  # no cosine schedule to floor: the passthrough keeps it
        if _bool(self.get("batch_flattening")):
            t["padding_free"] = True
        elif self.s.get("batch_flattening") is not None:
            self.used.discard("batch_flattening")  # false or "auto": Axolotl's own choice, passed through
        for key, field in (("weight_decay", "weight_decay"), ("max_grad_norm", "max_grad_norm")):
            value = _number(self.get(key))
            if value is not None:
                t[field] = value
        opt = self.get("optimizer")
        if opt is not None:
            ours = OPTIMIZERS.get(str(opt))
            if ours:
                t["optimizer"] = ours
                if HF_OPTIMIZERS[ours] != opt:
                    self.note("optimizer", "approximated", f"{opt} is ptsdk's {ours}, written {HF_OPTIMIZERS[ours]}")
            else:
                self.note("optimizer", "approximated", f"{opt} has no ptsdk optimizer; ptsdk uses adamw")
        bf16, fp16 = self.get("bf16"), self.get("fp16")
        if bf16 == "auto":
            t["precision"] = "bf16"
            self.note("bf16", "approximated", "auto (bf16 where the GPU has it) is training.precision bf16")
        elif _bool(bf16):
            t["precision"] = "bf16"
        elif _bool(fp16):
            t["precision"] = "fp16"
        else:
            t["precision"] = "fp32"
        if fp16 == "auto":
            self.note("fp16", "approximated", "auto: ptsdk writes fp16 from training.precision")
        if "tf32" in self.s and _bool(self.s["tf32"]):
            self.note("tf32", "dropped", "ptsdk writes tf32: false (full fp32 matmuls, comparable across backends)")
        gc = _bool(self.get("gradient_checkpointing"))
        if gc is not None:
            t["gradient_checkpointing"] = gc
        packing = _bool(self.get("sample_packing"))
        if packing is not None:
            t["packing"] = packing
        seed = _int(self.get("seed"))
        if seed is not None:
            t["seed"] = seed
        shuffle = _bool(self.get("shuffle_merged_datasets"))
        if shuffle is not None:
            t["shuffle"] = shuffle
        return t

    def distributed(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        sizes = {k: _int(self.s.get(k)) for k in ("dp_shard_size", "dp_replicate_size", "context_parallel_size")}
        tp = _int(self.get("tensor_parallel_size"))
        world = 1
        for key, n in sizes.items():
            if n and n > 1:
                world *= n
                self.used.discard(key)  # Axolotl's own mesh layout: passthrough below
        if tp and tp > 1:
            world *= tp
            d["tensor_parallel_size"] = tp
            self.note("tensor_parallel_size", "set", f"distributed.tensor_parallel_size {tp}")
        workers = _int(self.s.get("ray_num_workers"))
        if _bool(self.s.get("use_ray")) and workers:
            world = max(world, workers)
            self.note(
                "ray_num_workers",
                "approximated",
                f"{workers} Ray workers are distributed.gpus_per_node {workers}; ptsdk starts the processes itself",
            )
        if world > 1:
            d["gpus_per_node"] = world
            if sizes["context_parallel_size"] and sizes["context_parallel_size"] > 1:
                self.note(
                    "context_parallel_size",
                    "approximated",
                    "ptsdk has no context parallelism: its data-parallel size (and so global_batch_size) counts "
                    "the context-parallel ranks too",
                )
        else:
            self.notes.append(
                Note(
                    "distributed",
                    "defaulted",
                    "an Axolotl config does not say how many processes run it (the launcher does): one process; "
                    "set distributed.gpus_per_node (global_batch_size scales with it)",
                )
            )
        ds = self.under("deepspeed")
        fsdp = {k: v for k, v in self.s.items() if k.split(".")[0] in FSDP_KEYS and v is not None}
        if self.s.get("deepspeed") is not None or any(k.startswith("deepspeed.") for k in ds):
            d["strategy"] = "deepspeed"
            stage, offload = _deepspeed(self.s)
            d["zero_stage"] = stage
            if offload != "none":
                d["offload"] = offload
            for key in ds:
                self.note(
                    key,
                    "approximated",
                    f"ptsdk writes its own DeepSpeed config (ds_config.json) with ZeRO-{stage} and offload {offload}; "
                    "other settings of the referenced file are not read",
                )
        elif fsdp:
            d["strategy"] = "fsdp"
            off = _bool(self.s.get("fsdp_config.offload_params", self.s.get("fsdp_config.fsdp_offload_params")))
            if off:
                d["offload"] = "optimizer_and_params"
            # The fsdp keys themselves are the job's (distributed.strategy): rest() notes each one ptsdk
            # writes otherwise (ptsdk writes FSDP2).
        return d

    def global_batch(self, job: dict[str, Any]) -> int:
        d = job["distributed"]
        world = int(d.get("gpus_per_node", 1))
        dp = world // int(d.get("tensor_parallel_size", 1))
        accumulation = _int(self.get("gradient_accumulation_steps")) or 1
        return int(job["training"]["micro_batch_size"]) * accumulation * dp

    def output(self, job: dict[str, Any]) -> dict[str, Any]:
        o: dict[str, Any] = {}
        logging = _int(self.get("logging_steps"))
        if logging:
            o["logging_steps"] = logging
        save = _int(self.get("save_steps"))
        limit = _int(self.get("save_total_limit"))
        if save:
            o["save_steps"] = save
        if limit:
            o["save_total_limit"] = limit
            if not save:
                self.note("save_total_limit", "dropped", "ptsdk saves only at the end without save_steps")
        has_eval = "eval" in job["data"] or "eval_split" in job["data"]
        evals = _int(self.get("eval_steps"))
        if evals:
            if has_eval:
                o["eval_steps"] = evals
            else:
                self.note("eval_steps", "dropped", "no data.eval nor data.eval_split: nothing to evaluate")
        saves_per = _int(self.get("saves_per_epoch"))
        if saves_per and not save:
            o["saves_per_epoch"] = saves_per
            if limit:
                self.used.add("save_total_limit")
                self.notes[:] = [n for n in self.notes if n.field != "save_total_limit"]
        elif saves_per:
            self.note("saves_per_epoch", "dropped", "save_steps is set too (Axolotl refuses both)")
        evals_per = _int(self.get("evals_per_epoch"))
        if evals_per and has_eval and not evals:
            o["evals_per_epoch"] = evals_per
        elif evals_per:
            self.note(
                "evals_per_epoch",
                "dropped",
                "no data.eval nor data.eval_split: nothing to evaluate" if not has_eval else "eval_steps is set too",
            )
        if _bool(self.get("use_tensorboard")):
            o["report_to"] = ["tensorboard"]
        return o

    def rollout(self, method: dict[str, Any]) -> dict[str, Any] | None:
        if method["name"] != "grpo" or not _bool(self.get("trl.use_vllm")):
            return None
        colocate = self.get("trl.vllm_mode") == "colocate"
        r: dict[str, Any] = {"engine": "vllm", "colocate": colocate}
        # Axolotl reads trl.vllm_server_host/port, else vllm.host/port (axolotl/core/trainers/grpo/__init__.py:
        # 80-81); the vllm: section stays the passthrough's (it configures `axolotl vllm-serve`).
        host = self.get("trl.vllm_server_host") or self.s.get("vllm.host")
        port = _int(self.get("trl.vllm_server_port") or self.s.get("vllm.port"))
        if not colocate and host and port and re.fullmatch(r"[A-Za-z0-9_.\[\]:-]+", str(host)):
            r["server"] = f"{host}:{port}"
            r.pop("colocate")
            self.used.add("trl.use_vllm")
            self.used.discard("trl.vllm_mode")
            if self.s.get("trl.vllm_mode") == "server":
                self.used.add("trl.vllm_mode")
            return r
        self.note(
            "trl.use_vllm",
            "approximated",
            "rollout.engine vllm (trl.vllm_mode server unless colocate: rollout.colocate); the vLLM server's "
            "address and options go to backend_options",
        )
        util = _number(self.get("vllm.gpu_memory_utilization"))
        if util:
            r["gpu_memory_utilization"] = util
        tp = _int(self.get("vllm.tensor_parallel_size"))
        if tp:
            r["tensor_parallel_size"] = tp
        return r

    def environment(self) -> None:
        for key, value in self.s.items():
            if key in self.used:
                continue
            if ENVIRONMENT.fullmatch(key.split(".")[0]):
                self.note(key, "dropped", "where or how the run is hosted, not the training: ptsdk sets its own")
            elif value is None:
                self.note(key, "dropped", "null: unset, Axolotl's default")

    def rest(self, job: dict[str, Any]) -> None:
        """The settings no job field took: the passthrough where it may carry them, else a drop with a note."""
        from ptsdk.spec import validate_job

        left = {k: v for k, v in self.s.items() if k not in self.used}
        if not left:
            return
        try:
            native = flatten(_native_config(self.backend, validate_job(dict(job), source=str(self.source))))
        except PtsdkError:
            native = {}
        owned = self.backend.passthrough_owned
        options: dict[str, Any] = {}
        for key, value in left.items():
            top = key.split(".")[0]
            if key in native and same(native[key], value):
                continue  # ptsdk writes the same value
            if top in FSDP_KEYS:
                self._fsdp_note(key, value)
                continue
            if top in owned:
                self.note(key, "dropped", f"the job field {owned[top]} owns {top}; it has no place for this setting")
                continue
            if top == "plugins" and isinstance(value, list):
                mine = native.get("plugins", [f"{PLUGIN}.JsonlMetricsPlugin"])
                options[key] = [*mine, *(v for v in value if v not in mine)]
                self.note(key, "passthrough", f"backend_options.axolotl.plugins: ptsdk's metrics plugin, then {value}")
                continue
            clash = [k for k in native if k == key or k.startswith(key + ".") or key.startswith(k + ".")]
            if clash:
                if key in native and same(native[key], value):
                    continue  # ptsdk writes the same value
                shown = {k: native[k] for k in clash[:3]}
                self.note(key, "dropped", f"ptsdk writes {shown} from the job here; {value!r} is not kept")
                continue
            options[key] = value
            self.note(key, "passthrough", f"backend_options.axolotl: {value!r} (no job field says this)")
        if options:
            job["backend_options"] = {"axolotl": nest(options)}

    def _fsdp_note(self, key: str, value: Any) -> None:
        leaf = key.split(".")[-1].removeprefix("fsdp_")
        if key in ("fsdp", "fsdp_version") or leaf in ("offload_params", "state_dict_type", "auto_wrap_policy"):
            self.note(
                key,
                "approximated",
                f"{value!r} is distributed.strategy fsdp (offload: distributed.offload); ptsdk writes FSDP2 "
                "(fsdp_version 2, fsdp_config offload_params/state_dict_type FULL_STATE_DICT/auto_wrap_policy "
                "TRANSFORMER_BASED_WRAP) from the job",
            )
        else:
            self.note(
                key,
                "dropped",
                f"{value!r}: ptsdk writes the FSDP config from distributed.strategy/offload alone (the job owns "
                "fsdp_config, the passthrough cannot carry it); FSDP2 picks its own defaults for the rest",
            )


MESSAGE_KEYS = (
    "message_property_mappings",
    "message_field_role",
    "message_field_content",
    "field_thinking",
    "template_thinking_key",
    "roles",
)
CANONICAL_ROLES = ("system", "user", "assistant", "tool")


def _message_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A chat_template entry's message mappings as data.message_keys / data.role_names, read the way Axolotl reads
    them: the legacy message_field_role/content join message_property_mappings (axolotl/utils/schemas/utils.py:8-80);
    field_thinking counts only when there are no mappings (chat_template.py:61-68); `roles` replaces the default
    role map, which (unset) maps human -> user and gpt -> assistant (chat_template.py:70-80)."""
    mappings = entry.get("message_property_mappings")
    mappings = dict(mappings) if isinstance(mappings, Mapping) else {}
    for legacy, canon in (("message_field_role", "role"), ("message_field_content", "content")):
        if isinstance(entry.get(legacy), str) and entry[legacy]:
            mappings.setdefault(canon, entry[legacy])
    keys: dict[str, str] = {}
    for canon in ("role", "content"):
        value = mappings.get(canon)
        if isinstance(value, str) and value and value != canon:
            keys[canon] = value
    target = entry.get("template_thinking_key") or "reasoning_content"
    thinking = mappings.get(target) if mappings else entry.get("field_thinking")
    if isinstance(thinking, str) and thinking and thinking != "reasoning_content" and target == "reasoning_content":
        keys["thinking"] = thinking
    out: dict[str, Any] = {"message_keys": keys} if keys else {}
    roles = entry.get("roles")
    if isinstance(roles, Mapping):
        names = {
            str(source): role
            for role, sources in roles.items()
            if role in CANONICAL_ROLES and isinstance(sources, list)
            for source in sources
            if isinstance(source, str) and source and source != role
        }
    else:
        # Axolotl's default map: of its entries only these two are not canonical roles already. ShareGPT-style
        # keys (role read from another key) are where such names are found: say them then.
        names = {"human": "user", "gpt": "assistant"} if "role" in keys else {}
    if names:
        out["role_names"] = names
    return out


def _native_config(backend: Any, job: Any) -> dict[str, Any]:
    plan = backend.translate(job)
    for f in plan.files:
        if f.path == plan.native_config and f.content is not None:
            cfg = yaml.safe_load(f.content)
            return cfg if isinstance(cfg, dict) else {}
    return {}


def _deepspeed(s: Mapping[str, Any]) -> tuple[int, str]:
    """ZeRO stage and offload of `deepspeed:` (a path named like Axolotl's deepspeed_configs/, or inline)."""
    stage = _int(s.get("deepspeed.zero_optimization.stage"))
    params = s.get("deepspeed.zero_optimization.offload_param.device") == "cpu"
    optim = s.get("deepspeed.zero_optimization.offload_optimizer.device") == "cpu"
    path = s.get("deepspeed")
    if isinstance(path, str):
        name = Path(path).name
        found = re.search(r"zero(\d)", name)
        stage = int(found.group(1)) if found else stage
        params = params or "offload_params" in name or "cpuoffload_params" in name
        optim = optim or "offload" in name
    stage = stage if stage in (0, 1, 2, 3) else 2
    offload = "optimizer_and_params" if params else "optimizer" if optim else "none"
    return stage, offload


def _job_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".-")[:100]
    return name or "imported"


def _line(source: Path, key: str) -> int:
    try:
        for i, line in enumerate(source.read_text().splitlines(), 1):
            if line.startswith(f"{key}:"):
                return i
    except OSError:
        pass
    return 1
