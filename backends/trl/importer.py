"""`ptsdk import --from trl`: a TRL launch (command line or --config YAML) read back as a ptsdk job.

Accepted input:

- a shell script or text file holding one launch: ``python trl/scripts/dpo.py --flag value ...``,
  ``accelerate launch [accelerate flags] examples/scripts/x.py --flag value ...`` or
  ``trl dpo --flag value`` (the method comes from the script or subcommand name);
- a TRL config YAML (the flat keys `--config` reads); its method comes from a ``method:`` key or from
  the file name (``dpo.yaml``, ``grpo_zero3.yaml``).

Every native setting either becomes a job field, lands in ``backend_options.trl`` (a "passthrough"
note), or is dropped or approximated with a note naming the native key. TRL's own defaults (1.16) are
written into the job where ptsdk's defaults differ, so the job trains what the TRL command trained.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from ptsdk.backends.trl.backend import TRLBackend
from ptsdk.errors import PtsdkError, brief
from ptsdk.plugins.backend import ImportResult, Note
from ptsdk.plugins.kit import HF_OPTIMIZERS, logical_lines

OWNED = TRLBackend.passthrough_owned

#: TRL trainer names (script stems, `trl` subcommands, method: keys) -> the TRL trainer.
TRL_METHODS = ("sft", "dpo", "kto", "orpo", "cpo", "grpo", "rloo", "gspo")
#: Example scripts that fix their reward functions in code rather than flags (TRL 1.16 examples/scripts).
SCRIPT_REWARDS = {"gspo": ["trl.rewards:accuracy_reward", "trl.rewards:think_format_reward"]}
#: Reward names TRL's CLI scripts resolve themselves (trl/scripts/grpo.py reward_funcs_registry).
TRL_REWARDS = ("accuracy_reward", "reasoning_accuracy_reward", "think_format_reward")
#: TRL 1.16 config defaults that differ from ptsdk's (trl/trainer/*_config.py, transformers TrainingArguments).
TRL_LR = {"sft": 2e-5}  # every other trainer: 1e-6
RL_DEFAULTS: dict[str, dict[str, Any]] = {
    "grpo": {"num_generations": 8, "beta": 0.0, "loss_type": "dapo", "max_completion_length": 512},
    "rloo": {"num_generations": 2, "beta": 0.05, "max_completion_length": 512},
}
#: Settings of the run's environment, not of the job: dropped with a note.
ENVIRONMENT = {
    "output_dir": "the run directory is ptsdk's (output.dir/NAME-BACKEND-TIME)",
    "run_name": "ptsdk names runs after the job",
    "logging_dir": "ptsdk keeps logs in the run directory",
    "push_to_hub": "ptsdk does not push to the Hub; push the trained model/ folder yourself",
    "hub_model_id": "ptsdk does not push to the Hub",
    "hub_strategy": "ptsdk does not push to the Hub",
    "hub_private_repo": "ptsdk does not push to the Hub",
    "overwrite_output_dir": "every ptsdk run has a new run directory",
    "disable_tqdm": "ptsdk's runner turns progress bars off",
}
#: Keys ptsdk's translation always writes: an unmapped value for them needs ptsdk_override.
PTSDK_SETS = {
    "lr_scheduler_type",
    "warmup_steps",
    "optim",
    "data_seed",
    "save_strategy",
    "eval_strategy",
    "loss_type",
    "report_to",
    "logging_steps",
}
#: accelerate's own flags (accelerate launch, or given to the `trl` CLI, which hands them to accelerate).
ACCELERATE_FLAGS = {
    "config_file",
    "accelerate_config",
    "num_processes",
    "num_machines",
    "machine_rank",
    "main_process_ip",
    "main_process_port",
    "multi_gpu",
    "mixed_precision",
    "use_deepspeed",
    "zero_stage",
    "use_fsdp",
    "rdzv_backend",
    "same_network",
    "deepspeed_multinode_launcher",
    "offload_optimizer_device",
    "offload_param_device",
}
#: TRL's predefined accelerate profiles (trl/accelerate_configs/*.yaml, examples/accelerate_configs/*.yaml)
#: by stem: distributed type, ZeRO stage, processes.
PROFILES: dict[str, dict[str, Any]] = {
    "zero1": {"distributed_type": "DEEPSPEED", "zero_stage": 1, "num_processes": 8},
    "zero2": {"distributed_type": "DEEPSPEED", "zero_stage": 2, "num_processes": 8},
    "zero3": {"distributed_type": "DEEPSPEED", "zero_stage": 3, "num_processes": 8},
    "deepspeed_zero1": {"distributed_type": "DEEPSPEED", "zero_stage": 1, "num_processes": 8},
    "deepspeed_zero2": {"distributed_type": "DEEPSPEED", "zero_stage": 2, "num_processes": 8},
    "deepspeed_zero3": {"distributed_type": "DEEPSPEED", "zero_stage": 3, "num_processes": 8},
    "fsdp1": {"distributed_type": "FSDP", "num_processes": 8},
    "fsdp2": {"distributed_type": "FSDP", "num_processes": 8},
    "multi_gpu": {"distributed_type": "MULTI_GPU", "num_processes": 8},
    "single_gpu": {"distributed_type": "NO", "num_processes": 1},
}
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTENTION = ("eager", "sdpa", "flash_attention_2")
TRACKERS = ("tensorboard", "wandb", "mlflow", "trackio")


def import_trl(source: Path) -> ImportResult:
    if source.suffix in (".yaml", ".yml"):
        method, settings, launcher, line = _read_yaml(source)
    else:
        method, settings, launcher, line = _read_command(source)
    return _Importer(source, line, method, settings, launcher).run()


# --- reading -----------------------------------------------------------------------------


def _read_yaml(source: Path) -> tuple[str, dict[str, Any], dict[str, Any], int]:
    try:
        raw = yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else str(source)
        raise PtsdkError(f"{where}: not readable YAML ({getattr(exc, 'problem', None) or exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PtsdkError(f"{source}: cannot read it ({exc})") from None
    if not isinstance(raw, dict) or not raw:
        raise PtsdkError(f"{source}:1: not a TRL config (a TRL --config YAML is a mapping of TRL keys)")
    settings = _flat(raw)
    method = str(settings.pop("method", "") or "") or _method_from_name(source.stem)
    if not method:
        raise PtsdkError(
            f"{source}:1: a TRL config does not say its trainer; add `method: <{'|'.join(TRL_METHODS)}>` "
            "or import the launch command instead"
        )
    if method not in TRL_METHODS:
        raise PtsdkError(f"{source}:1: method {brief(method)} is not a TRL trainer ({', '.join(TRL_METHODS)})")
    return method, settings, {}, 1


def _read_command(source: Path) -> tuple[str, dict[str, Any], dict[str, Any], int]:
    try:
        text = source.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PtsdkError(f"{source}: cannot read it ({exc})") from None
    for number, line in logical_lines(text):
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise PtsdkError(f"{source}:{number}: not a readable command line ({exc})") from None
        found = _find_script(tokens)
        if found is None:
            continue
        index, method, consumed = found
        launcher = _flags(tokens[:index], source, number, launcher=True)
        settings = _flags(tokens[index + consumed :], source, number)
        for key in [k for k in settings if k in ACCELERATE_FLAGS]:
            launcher[key] = settings.pop(key)  # `trl grpo --num_processes 4`: the trl CLI hands these to accelerate
        if "config" in settings:
            settings = {**_config_file(source, number, settings.pop("config")), **settings}
        return method, settings, launcher, number
    raise PtsdkError(
        f"{source}:1: not a TRL launch: no line runs a TRL script (trl/scripts/<method>.py, "
        "examples/scripts/<method>.py), `trl <method>` or `accelerate launch ... <script>.py`"
    )


def _find_script(tokens: list[str]) -> tuple[int, str, int] | None:
    """(index of the script or `trl`, the method, tokens it takes) in a command line, or None."""
    for i, token in enumerate(tokens):
        if token.startswith("-"):
            continue
        words = token.split()
        if words and words[0] == "trl":  # `trl dpo`, or `python -m 'trl dpo'` as one word
            sub = words[1] if len(words) > 1 else (tokens[i + 1] if i + 1 < len(tokens) else "")
            if sub in TRL_METHODS:
                return i, sub, 1 if len(words) > 1 else 2
            continue
        if words and words[0].endswith(".py"):
            method = _method_from_name(Path(words[0]).stem)
            if method:
                return i, method, 1
    return None


def _method_from_name(stem: str) -> str:
    parts = re.split(r"[^a-z0-9]+", stem.lower())
    for part in parts:
        if part in TRL_METHODS:
            return part
    return ""


def _flags(tokens: list[str], source: Path, line: int, launcher: bool = False) -> dict[str, Any]:
    """`--k v`, `--k=v`, `--k` (true) and `--k a b` (a list) into a flat mapping of strings."""
    out: dict[str, Any] = {}
    key: str | None = None
    values: list[str] = []

    def close() -> None:
        if key is not None:
            out[key] = True if not values else values[0] if len(values) == 1 else list(values)

    for token in tokens:
        if token.startswith("--"):
            close()
            key, values = token[2:], []
            if "=" in key:
                key, value = key.split("=", 1)
                values.append(value)
            if not key:
                raise PtsdkError(f"{source}:{line}: a bare '--' is not a TRL flag")
        elif key is not None:
            values.append(token)
        elif not launcher:
            raise PtsdkError(f"{source}:{line}: {brief(token)} is not a --flag; TRL scripts take only --flags")
    close()
    if launcher:  # the words before the script: `accelerate launch`, `python`, `srun ...`: keep accelerate's flags
        return {k: v for k, v in out.items() if k in ACCELERATE_FLAGS}
    return out


def _config_file(source: Path, line: int, name: Any) -> dict[str, Any]:
    path = source.parent / str(name)
    if not path.is_file():
        raise PtsdkError(f"{source}:{line}: --config {brief(str(name))}: no such file beside {source.name}")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise PtsdkError(f"{path}: not a readable TRL config ({exc})") from None
    if not isinstance(raw, dict):
        raise PtsdkError(f"{path}:1: not a TRL config (a mapping of TRL keys)")
    return _flat(raw)


def _flat(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value and dotted not in ("lr_scheduler_kwargs", "model_init_kwargs"):
            out.update(_flat(value, dotted))
        else:
            out[dotted] = value
    return out


def _typed(value: Any) -> Any:
    """A flag's text as the value TRL's parser makes of it (numbers, booleans, JSON mappings)."""
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            return value
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return value


# --- mapping ----------------------------------------------------------------------------


class _Importer:
    def __init__(
        self, source: Path, line: int, method: str, settings: dict[str, Any], launcher: dict[str, Any]
    ) -> None:
        self.source, self.line, self.trl_method = source, line, method
        self.settings = dict(settings)
        self.launcher = launcher
        self.left = dict(settings)
        self.notes: list[Note] = []
        self.options: dict[str, Any] = {}
        self.override: list[str] = []

    # helpers

    def take(self, key: str, default: Any = None) -> Any:
        return _typed(self.left.pop(key)) if key in self.left else default

    def number(self, key: str, default: Any, kind: type = float) -> Any:
        value = self.take(key, default)
        if value is None or value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PtsdkError(f"{self.source}:{self.line}: --{key} {brief(str(value))} is not a number")
        if kind is int:
            if float(value) != int(value):
                raise PtsdkError(f"{self.source}:{self.line}: --{key} {value} is not a whole number")
            return int(value)
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.take(key, None)
        if ("no_" + key) in self.left:
            self.left.pop("no_" + key)
            return False
        if value is None:
            return default
        if not isinstance(value, bool):
            raise PtsdkError(f"{self.source}:{self.line}: --{key} {brief(str(value))} is not true or false")
        return value

    def note(self, key: str, kind: str, message: str) -> None:
        self.notes.append(Note(key, kind, message))  # type: ignore[arg-type]

    def passthrough(self, key: str, value: Any, why: str = "", override: bool = False) -> None:
        self.options[key] = value
        if override:
            self.override.append(key)
        self.note(
            key,
            "passthrough",
            f"backend_options.trl.{key}: {brief(json.dumps(value) if not isinstance(value, str) else value)}"
            + (" (ptsdk_override: it replaces ptsdk's value)" if override else "")
            + (f"; {why}" if why else ""),
        )

    # the whole job

    def run(self) -> ImportResult:
        m = self.trl_method
        method = self._method()
        model, adapter = self._model()
        data = self._data(method)
        training = self._training(method)
        distributed = self._distributed(training)
        rollout = self._generation(method, training, distributed)
        output = self._output(data, training)
        self._rest()
        job: dict[str, Any] = {
            "version": 1,
            "name": _job_name(self.source.stem),
            "method": method,
            "model": model,
            "adapter": adapter,
            "data": data,
            "training": training,
            "distributed": distributed,
            "output": output,
        }
        if rollout is not None:
            job["rollout"] = rollout
        if self.options:
            if self.override:
                self.options["ptsdk_override"] = sorted(set(self.override))
            job["backend_options"] = {"trl": self.options}
        if method["name"] in ("grpo", "rloo") and not method.get("rewards") and not method.get("reward_model"):
            raise PtsdkError(
                f"{self.source}:{self.line}: this {m} launch names no reward (--reward_funcs or "
                "--reward_model_name_or_path); the script sets them in code, which ptsdk cannot read: add "
                "--reward_funcs module.function"
            )
        settings = {**self.settings, **{f"accelerate.{k}": v for k, v in self.launcher.items()}}
        return ImportResult(job=job, notes=self.notes, settings=settings)

    def _method(self) -> dict[str, Any]:
        m = self.trl_method
        if m == "gspo":
            self.note(
                "importance_sampling_level",
                "set",
                "gspo.py is TRL's GRPO trainer (GSPO = importance_sampling_level sequence, passed through)",
            )
            m = "grpo"
        if m == "sft":
            return {"name": "sft", **self._sft()}
        if m in ("dpo", "kto", "orpo", "cpo"):
            return self._preference(m)
        return self._rl(m)

    def _sft(self) -> dict[str, Any]:
        completion_only = self.take("completion_only_loss", None)
        assistant_only = self.take("assistant_only_loss", None)
        if assistant_only:
            return {"loss_on": "completion"}
        if completion_only is False:
            return {"loss_on": "all"}
        self.note(
            "completion_only_loss",
            "approximated",
            "TRL's default (None) computes the loss on completions of prompt/completion records and on every "
            "token of chat records (assistant_only_loss false); ptsdk's loss_on completion applies to both: set "
            "method.loss_on: all for chat data trained on every token",
        )
        return {"loss_on": "completion"}

    def _preference(self, m: str) -> dict[str, Any]:
        beta = self.number("beta", 0.1)
        if m == "dpo":
            loss = self.take("loss_type", ["sigmoid"])
            losses = loss if isinstance(loss, list) else [loss]
            if len(losses) != 1:
                self.passthrough("loss_type", losses, "ptsdk's DPO has one loss_type", override=True)
                self.note("loss_type", "approximated", f"method.loss_type {losses[0]}: the first of {losses}")
                losses = losses[:1]
            if losses[0] == "ipo":
                self._drop_unused("label_smoothing")
                return {"name": "ipo", "beta": beta}
            weights = self.take("loss_weights", None)
            if weights is not None:
                self.passthrough("loss_weights", weights)
            return {
                "name": "dpo",
                "beta": beta,
                "loss_type": losses[0],
                "label_smoothing": self.number("label_smoothing", 0.0),
            }
        if m == "kto":
            return {
                "name": "kto",
                "beta": beta,
                "desirable_weight": self.number("desirable_weight", 1.0),
                "undesirable_weight": self.number("undesirable_weight", 1.0),
            }
        if m == "orpo":
            return {"name": "orpo", "beta": beta}
        loss = self.take("loss_type", "sigmoid")
        alpha = self.number("cpo_alpha", 1.0)
        gamma = self.number("simpo_gamma", 0.5)
        if loss == "simpo":
            return {"name": "simpo", "beta": beta, "gamma": gamma, "sft_weight": alpha}
        if "simpo_gamma" in self.settings:
            self.note("simpo_gamma", "dropped", f"only used by loss_type simpo, not {loss}")
        if loss not in ("sigmoid", "hinge", "ipo"):
            raise PtsdkError(f"{self.source}:{self.line}: --loss_type {brief(str(loss))}: ptsdk's CPO has no such loss")
        return {"name": "cpo", "beta": beta, "loss_type": loss, "sft_weight": alpha}

    def _drop_unused(self, key: str) -> None:
        if key in self.left:
            self.left.pop(key)
            self.note(key, "dropped", "not used by this loss")

    def _rl(self, m: str) -> dict[str, Any]:
        d = RL_DEFAULTS[m]
        out: dict[str, Any] = {
            "name": m,
            "num_generations": self.number("num_generations", d["num_generations"], int),
            "max_completion_length": self.number("max_completion_length", d["max_completion_length"], int),
            "temperature": self.number("temperature", 1.0),
            "kl_coef": self.number("beta", d["beta"]),
            "clip_epsilon": self.number("epsilon", 0.2),
        }
        if m == "grpo":
            out["loss_type"] = self.take("loss_type", d["loss_type"])
        rewards: list[str] = []
        funcs = self.take("reward_funcs", None)
        if funcs is None and self.trl_method in SCRIPT_REWARDS:
            rewards = list(SCRIPT_REWARDS[self.trl_method])
            self.note("reward_funcs", "set", f"{self.trl_method}.py fixes its rewards in code: {', '.join(rewards)}")
        for ref in [] if funcs is None else funcs if isinstance(funcs, list) else [funcs]:
            ref = str(ref)
            if ref in TRL_REWARDS:
                rewards.append(f"trl.rewards:{ref}")
            elif ":" not in ref and "." in ref and "/" not in ref:
                module, fn = ref.rsplit(".", 1)
                rewards.append(f"{module}:{fn}")
            else:
                rewards.append(ref)
        if funcs is not None:
            self.note(
                "reward_funcs",
                "set",
                f"method.rewards {rewards}: TRL's names and dotted paths written as ptsdk's 'module:function'",
            )
        if rewards:
            out["rewards"] = rewards
        model = self.take("reward_model_name_or_path", None)
        if model:
            out["reward_model"] = str(model)
            self.note("reward_model_name_or_path", "set", "method.reward_model (the last of TRL's reward_funcs)")
        if "max_prompt_length" in self.left:
            self.take("max_prompt_length")
            self.note("max_prompt_length", "dropped", "TRL 1.16 has no prompt-length limit for online RL")
        return out

    def _model(self) -> tuple[dict[str, Any], dict[str, Any]]:
        name = self.take("model_name_or_path", None)
        if not name:
            raise PtsdkError(
                f"{self.source}:{self.line}: no --model_name_or_path: a fragment of a launch, not a whole TRL job"
            )
        model: dict[str, Any] = {"name_or_path": str(name)}
        dtype = self.take("dtype", "float32")  # TRL's ModelConfig default
        if dtype in DTYPES:
            model["dtype"] = dtype
        else:
            raise PtsdkError(f"{self.source}:{self.line}: --dtype {brief(str(dtype))}: one of {', '.join(DTYPES)}")
        if "dtype" not in self.settings:
            self.note("dtype", "set", "model.dtype float32: TRL's ModelConfig default when --dtype is not given")
        attn = self.take("attn_implementation", None)
        if attn in ATTENTION:
            model["attn_implementation"] = attn
        elif attn is not None:
            self.passthrough("attn_implementation", attn, "ptsdk's model.attn_implementation has no such kernel")
        if self.flag("trust_remote_code", False):
            model["trust_remote_code"] = True
        for key in ("pad_token", "eos_token"):
            token = self.take(key, None)
            if token is not None:
                model[key] = str(token)
                self.note(key, "set", f"model.{key} {token}")
        four, eight = self.flag("load_in_4bit", False), self.flag("load_in_8bit", False)
        peft = self.flag("use_peft", False)
        lora_keys = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")
        if not peft:
            for key in lora_keys:
                if key in self.left:
                    self.take(key)
                    self.note(key, "dropped", "TRL ignores LoRA settings without --use_peft")
            if four or eight:
                raise PtsdkError(
                    f"{self.source}:{self.line}: --load_in_{4 if four else 8}bit without --use_peft: quantized "
                    "weights cannot be fully fine-tuned"
                )
            return model, {"type": "full"}
        adapter: dict[str, Any] = {
            "type": "qlora" if four else "lora",
            "r": self.number("lora_r", 16, int),
            "alpha": self.number("lora_alpha", 32, int),
            "dropout": self.number("lora_dropout", 0.05),
        }
        if four:
            model["quantization"] = "4bit"
            quant = self.take("bnb_4bit_quant_type", "nf4")
            if quant != "nf4":
                self.note("bnb_4bit_quant_type", "approximated", f"{quant} -> nf4, ptsdk's QLoRA quantization")
        elif eight:
            model["quantization"] = "8bit"
        targets = self.take("lora_target_modules", None)
        if targets is None:
            adapter["target_modules"] = "all-linear"
            self.note(
                "lora_target_modules",
                "approximated",
                "not given: PEFT's per-architecture default targets (often q_proj, v_proj); ptsdk adapts all-linear",
            )
        else:
            names = [str(t).strip().strip(",").strip() for t in (targets if isinstance(targets, list) else [targets])]
            names = [n for part in names for n in part.split(",") if n.strip()]
            adapter["target_modules"] = "all-linear" if names == ["all-linear"] else names
            if names != (targets if isinstance(targets, list) else [targets]):
                self.note("lora_target_modules", "approximated", f"{targets!r} read as {names}")
        return model, adapter

    def _data(self, method: dict[str, Any]) -> dict[str, Any]:
        path = self.take("dataset_name", None)
        if not path:
            raise PtsdkError(
                f"{self.source}:{self.line}: no --dataset_name: a fragment of a launch (the script loads its "
                "data in code), not a whole TRL job"
            )
        self.note("dataset_name", "set", f"data.train.path {path} (ptsdk's TRL runner reads it as train_path)")
        data: dict[str, Any] = {"train": {"path": str(path), "split": str(self.take("dataset_train_split", "train"))}}
        if "dataset_train_split" in self.settings:
            self.note("dataset_train_split", "set", "data.train.split (train_split in ptsdk's runner)")
        test_split = str(self.take("dataset_test_split", "test"))
        subset = self.take("dataset_config", None)
        if subset is not None:
            data["train"]["subset"] = str(subset)
            self.note("dataset_config", "set", f"data.train.subset {subset} (load_dataset's name)")
        strategy = self.take("eval_strategy", "no")
        if strategy != "no":
            data["eval"] = {"path": str(path), "split": test_split}
            if subset is not None:
                data["eval"]["subset"] = str(subset)
            self.note(
                "eval_strategy",
                "set",
                f"data.eval: split {test_split!r} of {path}, which TRL's script evaluates on (dataset_test_split)",
            )
            if strategy not in ("steps", "epoch"):
                self.note("eval_strategy", "approximated", f"{strategy} -> every output.eval_steps steps")
        self.eval_strategy = strategy
        data.update(self._record_shape(str(path)))
        length = self.number("max_length", None, int)
        if length is not None:
            if method["name"] in ("grpo", "rloo"):
                self.passthrough("max_length", length)
            else:
                data["max_length"] = length
        elif method["name"] not in ("grpo", "rloo"):
            data["max_length"] = 1024
        return data

    def _record_shape(self, path: str) -> dict[str, Any]:
        """What TRL decides from the records themselves, read from a local data file's first record: SFTTrainer
        converts a `conversations` column of {from, value} turns to messages (trl/data_utils.py
        maybe_convert_to_chatml), the preference trainers extract a prompt that chosen/rejected share when the
        records have no prompt column (extract_prompt; ORPO/CPO also when the prompt is text and the answers
        conversations, maybe_extract_prompt). A hub dataset is not read here: TRL still decides at run time."""
        from ptsdk.plugins.runtime import iter_records

        local = Path(path) if Path(path).is_absolute() else self.source.parent / path
        if not local.is_file() or local.suffix not in (".jsonl", ".json", ".parquet"):
            return {}
        try:
            record = next((r for _, r in iter_records(str(local), limit=1)), None)
        except (OSError, ValueError):
            return {}
        if not isinstance(record, dict):
            return {}
        out: dict[str, Any] = {}
        turns = record.get("conversations")
        if self.trl_method == "sft" and "messages" not in record and _from_value(turns):
            out.update(format="messages", columns={"messages": "conversations"})
            out["message_keys"] = {"role": "from", "content": "value"}
            self.note(
                "dataset_name",
                "set",
                "conversations of {from, value} turns, which TRL's SFTTrainer renames itself "
                "(maybe_convert_to_chatml): data.columns messages: conversations, "
                "data.message_keys role: from, content: value",
            )
        if self.trl_method in ("dpo", "orpo", "cpo") and isinstance(record.get("chosen"), list):
            prompt = record.get("prompt")
            text_prompt = self.trl_method in ("orpo", "cpo") and isinstance(prompt, str)
            if "prompt" not in record or text_prompt:
                out["prompt_in_answers"] = True
                self.note(
                    "dataset_name",
                    "set",
                    "data.prompt_in_answers: the records' chosen/rejected conversations hold the prompt, which TRL "
                    "extracts (extract_prompt)" + ("; the prompt column is not read" if text_prompt else ""),
                )
        return out

    def _order(self, t: dict[str, Any]) -> None:
        """TRL's data order as training.shuffle: GRPO/RLOO's RepeatSampler reads shuffle_dataset; the other
        trainers the sampling strategy (KTO's default is sequential, which ptsdk's translation keeps)."""
        if self.trl_method in ("grpo", "rloo", "gspo"):
            if not self.flag("shuffle_dataset", True):
                t["shuffle"] = False
                self.note("shuffle_dataset", "set", "training.shuffle: false (the prompts in file order)")
            return
        default = "sequential" if self.trl_method == "kto" else "random"
        strategy = self.take("train_sampling_strategy", default)
        if strategy == "sequential" and self.trl_method != "kto":
            t["shuffle"] = False
            self.note("train_sampling_strategy", "set", "training.shuffle: false (file order)")
        elif strategy != default:
            self.passthrough(
                "train_sampling_strategy", strategy, "ptsdk's training.shuffle is a seeded shuffle or file order", True
            )

    def _training(self, method: dict[str, Any]) -> dict[str, Any]:
        micro = self.number("per_device_train_batch_size", 8, int)
        accumulation = self.number("gradient_accumulation_steps", 1, int)
        lr_default = TRL_LR.get(self.trl_method, 1e-6)
        t: dict[str, Any] = {
            "micro_batch_size": micro,
            "learning_rate": self.number("learning_rate", lr_default),
            "weight_decay": self.number("weight_decay", 0.0),
            "max_grad_norm": self.number("max_grad_norm", 1.0),
            "seed": self.number("seed", 42, int),
        }
        self.accumulation = accumulation
        self._order(t)
        if "learning_rate" not in self.settings:
            self.note("learning_rate", "set", f"TRL's {self.trl_method} default {lr_default}")
        scheduler = self.take("lr_scheduler_type", "linear")
        kwargs = self.take("lr_scheduler_kwargs", None)
        floor = _cosine_floor(scheduler, kwargs, t["learning_rate"])
        if floor is not None:
            t["lr_scheduler"], t["min_lr_ratio"], kwargs = "cosine", floor, None
            self.note(
                "lr_scheduler_kwargs",
                "set",
                f"training.min_lr_ratio {floor} (lr_scheduler cosine; ptsdk writes cosine_with_min_lr + min_lr_rate)",
            )
        elif scheduler in SCHEDULERS:
            t["lr_scheduler"] = scheduler
        else:
            t["lr_scheduler"] = "cosine" if "cosine" in str(scheduler) else "linear"
            self.passthrough("lr_scheduler_type", scheduler, "ptsdk's lr_scheduler has no such schedule", True)
        if kwargs is not None:
            self.passthrough("lr_scheduler_kwargs", kwargs)
        for key in ("adam_beta1", "adam_beta2", "adam_epsilon"):
            value = self.number(key, None)
            if value is not None:
                t[key] = value
        steps = self.number("max_steps", None, int)
        epochs = self.number("num_train_epochs", None)
        if steps is not None and steps > 0:
            t["max_steps"] = steps
            if epochs is not None:
                self.note("num_train_epochs", "dropped", f"max_steps={steps} overrides it (transformers' Trainer)")
        else:
            t["epochs"] = epochs if epochs is not None else 3.0
            if epochs is None:
                self.note("num_train_epochs", "set", "training.epochs 3: transformers' default")
        self._warmup(t, steps if steps is not None and steps > 0 else None)
        bf16, fp16 = self.take("bf16", None), self.take("fp16", None)
        t["precision"] = "fp16" if fp16 else ("bf16" if bf16 is not False else "fp32")
        if bf16 is None and not fp16:
            self.note("bf16", "set", "training.precision bf16: TRL's default when neither bf16 nor fp16 is set")
        self.precision_given = bf16 is not None or fp16 is not None
        optim = self.take("optim", "adamw_torch_fused")
        names = {v: k for k, v in HF_OPTIMIZERS.items()}
        if optim in names:
            t["optimizer"] = names[optim]
        else:
            t["optimizer"] = "adamw_fused"
            self.passthrough("optim", optim, "ptsdk's training.optimizer has no such optimizer", True)
        checkpointing = self.flag("gradient_checkpointing", True)
        t["gradient_checkpointing"] = checkpointing
        if "gradient_checkpointing" in self.settings or "no_gradient_checkpointing" in self.settings:
            self.note("gradient_checkpointing", "set", "training.gradient_checkpointing (activation_checkpointing)")
        if self.trl_method == "sft":
            t["packing"] = self.flag("packing", False)
            if self.flag("padding_free", False):
                t["padding_free"] = True
        elif "padding_free" in self.left:
            self.take("padding_free")
            self.note("padding_free", "dropped", f"TRL's {self.trl_method} trainer pads (DPOTrainer turns it off)")
        data_seed = self.take("data_seed", None)
        if data_seed is not None and data_seed != t["seed"]:
            self.passthrough("data_seed", data_seed, "ptsdk seeds the data with training.seed", True)
        return t

    def _warmup(self, t: dict[str, Any], max_steps: int | None) -> None:
        ratio = self.number("warmup_ratio", None)
        warmup = self.number("warmup_steps", None)
        if ratio is not None:
            t["warmup_ratio"] = ratio
        if warmup is None or warmup == 0:
            return
        if warmup < 1:  # transformers 5: a float below 1 is a fraction of the run
            t["warmup_ratio"] = warmup
            return
        steps = int(warmup)
        if max_steps is not None and steps < max_steps:
            t["warmup_ratio"] = _ratio(steps, max_steps)
            self.note("warmup_steps", "set", f"training.warmup_ratio {steps}/{max_steps}")
            return
        self.passthrough("warmup_steps", steps, "whole warmup steps without max_steps", True)

    def _distributed(self, training: dict[str, Any]) -> dict[str, Any]:
        launch = dict(self.launcher)
        profile: dict[str, Any] = {}
        name = launch.pop("config_file", None) or launch.pop("accelerate_config", None)
        if name:
            profile = self._profile(str(name))
        processes = int(_typed(launch.pop("num_processes", profile.get("num_processes", 1))))
        nodes = int(_typed(launch.pop("num_machines", profile.get("num_machines", 1))))
        if processes % nodes:
            raise PtsdkError(f"{self.source}:{self.line}: {processes} processes do not split over {nodes} machines")
        d: dict[str, Any] = {"nodes": nodes, "gpus_per_node": processes // nodes}
        host = launch.pop("main_process_ip", None)
        if host:
            d["master_addr"] = str(host)
        port = launch.pop("main_process_port", None)
        if port:
            d["master_port"] = int(_typed(port))
        kind = str(profile.get("distributed_type", "")).upper()
        stage = launch.pop("zero_stage", profile.get("zero_stage"))
        if launch.pop("use_deepspeed", None) or kind == "DEEPSPEED":
            d["strategy"], d["zero_stage"] = "deepspeed", int(_typed(stage if stage is not None else 2))
        elif launch.pop("use_fsdp", None) or kind == "FSDP":
            d["strategy"] = "fsdp"
        offload = str(profile.get("offload_optimizer_device", "none")), str(profile.get("offload_param_device", "none"))
        if d.get("strategy") in ("fsdp", "deepspeed") and offload[0] == "cpu":
            d["offload"] = "optimizer_and_params" if offload[1] == "cpu" else "optimizer"
        precision = launch.pop("mixed_precision", profile.get("mixed_precision"))
        if precision in ("bf16", "fp16", "no") and not self.precision_given:
            training["precision"] = {"no": "fp32"}.get(str(precision), str(precision))
        deepspeed = self.take("deepspeed", None)
        if deepspeed is not None:
            d["strategy"], d["zero_stage"] = "deepspeed", self._zero_stage(str(deepspeed))
        if self.flag("use_cpu", False):
            d["device"] = "cpu"
        if self.take("fsdp", None):
            d["strategy"] = "fsdp"
            self.note("fsdp", "approximated", "ptsdk's FSDP: full_shard auto_wrap, FSDP2")
        for key in launch:
            self.note(f"accelerate.{key}", "dropped", "an accelerate launch setting ptsdk chooses itself")
        world = processes
        micro = training["micro_batch_size"]
        training["global_batch_size"] = micro * self.accumulation * world
        return d

    def _generation(self, method: dict[str, Any], training: dict[str, Any], d: dict[str, Any]) -> dict[str, Any] | None:
        """GRPO/RLOO's generation batch, passes per generation and vLLM engine as method/rollout fields; what
        the spec cannot say stays for backend_options (_rest). Returns the job's rollout section, if any."""
        if method["name"] not in ("grpo", "rloo"):
            return None
        g, world = method["num_generations"], d["nodes"] * d["gpus_per_node"]
        for key in ("generation_batch_size", "steps_per_generation"):
            value = _typed(self.left.get(key))
            if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 1:
                continue
            completions = value if key == "generation_batch_size" else value * training["micro_batch_size"] * world
            if completions % g or completions % training["global_batch_size"]:
                continue  # a generation batch that splits into no whole groups or steps: passed through
            self.take(key)
            method["rollout_batch_size"] = completions // g
            self.note(key, "set", f"method.rollout_batch_size {completions // g} prompts ({completions} completions)")
            break
        iterations = self.number("num_iterations", None, int)
        if iterations is not None:
            method["epochs_per_rollout"] = iterations
        if _typed(self.left.get("use_vllm")) is not True:
            return None
        mode = self.left.get("vllm_mode", "colocate")
        if mode == "server":
            host, port = self.left.get("vllm_server_host", "0.0.0.0"), self.left.get("vllm_server_port", 8000)
            server = f"{host}:{port}"
            if "vllm_server_base_url" in self.left or not re.fullmatch(r"[A-Za-z0-9_.\[\]:-]+:[0-9]{1,5}", server):
                return None  # a URL or a shell variable: use_vllm and the vllm_* keys are passed through
            for key in ("use_vllm", "vllm_mode", "vllm_server_host", "vllm_server_port"):
                if key in self.left:
                    self.take(key)
                    self.note(key, "set", f"rollout.server {server}")
            return {"engine": "vllm", "server": server}
        if mode != "colocate":
            return None
        rollout = {
            "engine": "vllm",
            "colocate": True,
            "gpu_memory_utilization": self.number("vllm_gpu_memory_utilization", 0.3),
            "tensor_parallel_size": self.number("vllm_tensor_parallel_size", 1, int),
        }
        self.take("use_vllm")
        self.take("vllm_mode")
        self.note("use_vllm", "set", "rollout: vLLM colocated with training (vllm_mode colocate)")
        return rollout

    def _profile(self, name: str) -> dict[str, Any]:
        path = self.source.parent / name
        if path.is_file():
            try:
                raw = yaml.safe_load(path.read_text())
            except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
                raise PtsdkError(f"{path}: not a readable accelerate config ({exc})") from None
            if isinstance(raw, dict):
                return {**raw, **(raw.get("deepspeed_config") or {})}
        stem = Path(name).stem
        if stem in PROFILES:
            self.note(
                "accelerate.config_file",
                "set",
                f"{name}: not beside the script; read as TRL's predefined profile {stem}",
            )
            return dict(PROFILES[stem])
        raise PtsdkError(f"{self.source}:{self.line}: accelerate config {brief(name)}: no such file beside the script")

    def _zero_stage(self, name: str) -> int:
        path = self.source.parent / name
        try:
            stage = json.loads(path.read_text())["zero_optimization"]["stage"]
            self.note("deepspeed", "approximated", f"{name}: ZeRO stage {stage}; ptsdk writes its own DeepSpeed config")
            return int(stage)
        except (OSError, ValueError, KeyError, TypeError):
            raise PtsdkError(
                f"{self.source}:{self.line}: --deepspeed {brief(name)}: no readable DeepSpeed JSON with a ZeRO stage"
            ) from None

    def _per_epoch(self, key: str, training: dict[str, Any]) -> int | None:
        """A fractional save_steps/eval_steps (a share of the whole run in transformers) as N per epoch, where
        the run is given in epochs and the share is a whole number per epoch; else None (the key stays)."""
        value = _typed(self.left.get(key))
        epochs = training.get("epochs")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1 or not epochs:
            return None
        n = 1 / (value * epochs)
        if n < 1 or abs(n - round(n)) > 1e-6:
            return None
        self.take(key)
        self.note(key, "set", f"output.{key.split('_')[0]}s_per_epoch {round(n)}: {value} of a {epochs}-epoch run")
        return round(n)

    def _output(self, data: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"logging_steps": self.number("logging_steps", 10, int)}
        if "logging_steps" not in self.settings:
            self.note("logging_steps", "set", "output.logging_steps 10: TRL's default")
        strategy = self.take("save_strategy", "steps")
        per_epoch = self._per_epoch("save_steps", training) if strategy == "steps" else None
        if per_epoch is not None or strategy == "epoch":
            out["save_steps"] = None
            out["saves_per_epoch"] = per_epoch or 1
            out["save_total_limit"] = self.number("save_total_limit", None, int)
            if strategy == "epoch":
                self.note("save_strategy", "set", "output.saves_per_epoch 1")
                if "save_steps" in self.left:
                    self.take("save_steps")
                    self.note("save_steps", "dropped", "save_strategy is epoch")
        elif strategy == "steps":
            share = _typed(self.left.get("save_steps"))
            if isinstance(share, float) and 0 < share < 1:  # a share of a run given in steps: no spec field
                out["save_steps"] = 1
                self.passthrough("save_steps", self.take("save_steps"), "a share of the whole run", True)
            else:
                out["save_steps"] = self.number("save_steps", 500, int)
            out["save_total_limit"] = self.number("save_total_limit", None, int)
        else:
            out["save_steps"] = None
            for key in ("save_steps", "save_total_limit"):
                if key in self.left:
                    self.take(key)
                    self.note(key, "dropped", f"save_strategy is {strategy}")
            if strategy != "no":
                self.passthrough("save_strategy", strategy, "ptsdk saves every save_steps or only at the end", True)
        evals = self._per_epoch("eval_steps", training) if "eval" in data else None
        if "eval" in data and (evals is not None or self.eval_strategy == "epoch"):
            out["evals_per_epoch"] = evals or 1
            if self.eval_strategy == "epoch" and "eval_steps" in self.left:
                self.take("eval_steps")
                self.note("eval_steps", "dropped", "eval_strategy is epoch")
            return self._report(out)
        eval_steps = self.number("eval_steps", None, int)
        if "eval" in data:
            out["eval_steps"] = eval_steps or out["logging_steps"]
        elif eval_steps is not None:
            self.note("eval_steps", "dropped", "eval_strategy is 'no' (TRL's default): TRL never evaluates")
        return self._report(out)

    def _report(self, out: dict[str, Any]) -> dict[str, Any]:
        report = self.take("report_to", None)
        if report is not None:
            items = report if isinstance(report, list) else [report]
            # The trackers TRL runs here (its tracking_* capabilities): Trackio is not in TRL's environment.
            runs = {c.name.removeprefix("tracking_") for c in TRLBackend.capabilities if c.name.startswith("tracking_")}
            known = [str(r) for r in items if r in TRACKERS and r in runs]
            out["report_to"] = known
            other = [r for r in items if r not in TRACKERS and r != "none"]
            unrun = [r for r in items if r in TRACKERS and r not in runs]
            self.note(
                "report_to",
                "dropped" if other or unrun else "set",
                f"output.report_to {known}"
                + (f"; ptsdk has no tracker {other}" if other else "")
                + (f"; ptsdk's TRL environment has no {unrun}" if unrun else ""),
            )
        return out

    def _rest(self) -> None:
        for key in list(self.left):
            value = self.left.pop(key)
            if key in ENVIRONMENT:
                self.note(key, "dropped", ENVIRONMENT[key])
            elif key in OWNED or key.split(".")[0] in OWNED:
                self.note(
                    key, "dropped", f"{value!r}: a TRL key the job owns ({OWNED[key.split('.')[0]]}) with no mapping"
                )
            elif key.startswith("no_"):
                self.passthrough(key[3:], False, f"from --{key}")
            elif key in PTSDK_SETS:
                self.passthrough(key, _typed(value), "", True)
            else:
                self.passthrough(key, _typed(value))


def _from_value(turns: Any) -> bool:
    """A list of ShareGPT {from, value} turns (TRL's is_conversational_from_value)."""
    return isinstance(turns, list) and bool(turns) and isinstance(turns[0], dict) and {"from", "value"} <= set(turns[0])


def _cosine_floor(scheduler: Any, kwargs: Any, lr: float) -> float | None:
    """transformers' cosine_with_min_lr with only min_lr_rate (or an absolute min_lr) as ptsdk's min_lr_ratio."""
    if scheduler != "cosine_with_min_lr" or not isinstance(kwargs, dict) or len(kwargs) != 1:
        return None
    if "min_lr_rate" in kwargs:
        rate = kwargs["min_lr_rate"]
    elif "min_lr" in kwargs and lr > 0:
        rate = kwargs["min_lr"] / lr
    else:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
        return None
    return float(rate)


def _ratio(steps: int, total: int) -> float:
    """A warmup ratio r with ceil(r * total) == steps (ptsdk's translation rounds up)."""
    ratio = steps / total
    while math.ceil(ratio * total) > steps:
        ratio = math.nextafter(ratio, 0.0)
    while math.ceil(ratio * total) < steps:
        ratio = math.nextafter(ratio, 1.0)
    return ratio


def _job_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).lstrip(".-")[:100]
    return name or "imported"
