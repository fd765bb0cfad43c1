"""`ptsdk import --from openrlhf`: an OpenRLHF launch script read back as a ptsdk job.

The input is a shell script (or a bare command line) that runs one of OpenRLHF 0.11.2's CLIs:
``python -m openrlhf.cli.train_sft|train_dpo|train_ppo_ray --flag value ...``, possibly behind
``deepspeed --module``, ``torchrun`` or ``ray job submit ... --``. It is parsed with shlex (never run).
Every flag is mapped onto the job where the spec holds it; what the spec cannot hold goes to
``backend_options.openrlhf`` (never a flag the translation sets or a job field owns: those are mapped
or dropped), and every approximation, drop and passthrough gets a Note naming the native flag.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ptsdk.errors import PtsdkError
from ptsdk.plugins.backend import ImportResult, Note
from ptsdk.plugins.kit import logical_lines
from ptsdk.plugins.passthrough import parse_flags

#: The CLIs a ptsdk job can stand for, and the ones it cannot (with the reason).
FAMILIES = {"train_sft": "sft", "train_dpo": "preference", "train_ppo_ray": "rl"}
NOT_JOBS = {
    "train_rm": "trains a reward model (a sequence classifier); ptsdk has no reward-model training method",
    "train_prm": "trains a process reward model; ptsdk has no such method",
    "train_kd": "distils from a teacher model; ptsdk has no knowledge-distillation method",
    "train_kto": "KTO: the openrlhf backend does not translate kto jobs (use --from trl)",
    "batch_inference": "runs inference, not training",
}
#: OpenRLHF advantage estimator -> ptsdk method (and GRPO loss).
ESTIMATOR_METHODS: dict[str, tuple[str, str | None]] = {
    "gae": ("ppo", None),
    "group_norm": ("grpo", "grpo"),
    "dr_grpo": ("grpo", "dr_grpo"),
    "rloo": ("rloo", None),
    "reinforce": ("reinforce_pp", None),
    "reinforce_baseline": ("reinforce_pp", None),
}
#: Train/rollout importance-sampling correction scheme (before 0.11) -> 0.11.2's (level, mode).
CORRECTIONS = {"tis": ("token", "clip"), "icepop": ("token", "mask"), "seq-mask-tis": ("seq", "mask")}
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
ATTENTION = ("eager", "sdpa", "flash_attention_2")
#: OpenRLHF 0.11.2 defaults the import relies on when a flag is absent.
DEFAULT_MAX_NEW_TOKENS = 1024
DEFAULT_ZERO_STAGE = 2
DEFAULT_MIN_LR_RATIO = 0.1
DEFAULT_MAX_TOKENS_PER_GPU = 16192
#: Flags that describe where and how the run is recorded, not the training: dropped with a note.
ENVIRONMENT = ("ckpt.output_dir", "ckpt.path", "ckpt.load_enable", "logger.*", "*.push_to_hub", "*hub*")


@dataclass
class Launch:
    """The OpenRLHF command found in the file."""

    module: str
    line: int
    flags: dict[str, Any]
    launcher: str | None = None
    launcher_flags: dict[str, Any] = field(default_factory=dict)


def import_openrlhf(source: Path, owned: dict[str, str]) -> ImportResult:
    launch = read_launch(source)
    return _Importer(source, launch, owned).run()


# --- reading the script -----------------------------------------------------------------------------


def read_launch(source: Path) -> Launch:
    """The first line of `source` that runs an openrlhf.cli module, as its module, flags and launcher."""
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PtsdkError(f"{source}: cannot read it as a text file ({exc})") from None
    for lineno, line in logical_lines(text):
        if "openrlhf.cli." not in line:
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise PtsdkError(f"{source}:{lineno}: cannot parse the command line ({exc})") from None
        found = _find_module(tokens)
        if found is None:
            continue
        before, module, after = found
        where = f"{source}:{lineno}"
        return Launch(
            module=module,
            line=lineno,
            flags=_flags(after, where),
            launcher=_launcher_name(before),
            launcher_flags=_loose_flags(before),
        )
    raise PtsdkError(
        f"{source}:1: not an OpenRLHF launch: no line runs an openrlhf.cli module "
        "(python -m openrlhf.cli.train_sft|train_dpo|train_ppo_ray --flag value ...)"
    )


def _find_module(tokens: list[str]) -> tuple[list[str], str, list[str]] | None:
    for i, token in enumerate(tokens):
        if token.startswith("openrlhf.cli."):
            return tokens[:i], token, tokens[i + 1 :]
        if "openrlhf.cli." in token and " " in token:  # bash -c '...', srun ... bash -c "..."
            try:
                inner = _find_module(shlex.split(token, comments=True))
            except ValueError:
                return None
            if inner is not None:
                return [*tokens[:i], *inner[0]], inner[1], inner[2]
    return None


def _flags(argv: list[str], where: str) -> dict[str, Any]:
    """OpenRLHF's flags: a bare flag is True, one value a string, several a list of strings."""
    if argv and not argv[0].startswith("--"):
        raise PtsdkError(f"{where}: expected --flag after the module, got {argv[0]!r}")
    expanded: list[str] = []
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            expanded += arg.split("=", 1)
        else:
            expanded.append(arg)
    out: dict[str, Any] = {}
    for flag, values in parse_flags(expanded).items():
        name = flag[2:]
        if not name:
            raise PtsdkError(f"{where}: a bare '--' among OpenRLHF's flags")
        out[name] = True if values is None else values[0] if len(values) == 1 else list(values)
    return out


def _loose_flags(argv: list[str]) -> dict[str, Any]:
    """A launcher's options (``--k v``, ``--k=v``), as far as they read as such."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and len(arg) > 2:
            key, eq, value = arg[2:].partition("=")
            if eq:
                out[key] = value
            elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                out[key] = argv[i + 1]
                i += 1
            else:
                out[key] = True
        i += 1
    return out


def _launcher_name(before: list[str]) -> str | None:
    names = [Path(t).name for t in before]
    if "ray" in names and "submit" in names:
        return "ray"
    for name in ("deepspeed", "torchrun", "accelerate"):
        if name in names:
            return name
    return None


# --- the mapping ------------------------------------------------------------------------------------


class _Importer:
    def __init__(self, source: Path, launch: Launch, owned: dict[str, str]) -> None:
        self.source, self.launch, self.owned = source, launch, owned
        self.where = f"{source}:{launch.line}"
        self.rest = dict(launch.flags)
        self.notes: list[Note] = []
        self.options: dict[str, Any] = {}

    # helpers

    def note(self, key: str, kind: str, message: str) -> None:
        self.notes.append(Note(key, kind, message))  # type: ignore[arg-type]

    def take(self, key: str) -> Any:
        return self.rest.pop(key, None)

    def number(self, key: str, value: Any, kind: type[int] | type[float] = float) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise PtsdkError(f"{self.where}: --{key} {value!r} is not a number") from None
        if kind is int:
            if number != int(number):
                raise PtsdkError(f"{self.where}: --{key} {value!r} is not a whole number")
            return int(number)
        return number

    def int_of(self, key: str) -> int | None:
        value = self.take(key)
        return None if value is None else self.number(key, value, int)

    def float_of(self, key: str) -> float | None:
        value = self.take(key)
        return None if value is None else self.number(key, value)

    def flag(self, key: str) -> bool:
        value = self.take(key)
        return value is True or str(value).lower() == "true"

    # the whole job

    def run(self) -> ImportResult:
        name = self.launch.module.removeprefix("openrlhf.cli.")
        if name in NOT_JOBS or name not in FAMILIES:
            why = NOT_JOBS.get(name, "is not one of the CLIs ptsdk imports")
            raise PtsdkError(
                f"{self.where}: {self.launch.module} {why}; ptsdk imports "
                "openrlhf.cli.train_sft, train_dpo and train_ppo_ray"
            )
        family = FAMILIES[name]
        job: dict[str, Any] = {"version": 1}
        rl = family == "rl"
        job["method"] = self.method(family)
        model_key = "actor.model_name_or_path" if rl else "model.model_name_or_path"
        model = self.take(model_key)
        if not model:
            raise PtsdkError(f"{self.where}: --{model_key} is missing (the model to train)")
        job["model"] = {"name_or_path": str(model)}
        job["distributed"] = self.distributed(rl)
        job["training"] = self.training(job, rl)
        adapter = self.adapter(job)
        if adapter:
            job["adapter"] = adapter
        job["data"] = self.data(job, family)
        if rl:
            self.rl(job)
        job["output"] = self.output(job)
        self.renamed()
        self.leftovers(job)
        if self.options:
            job["backend_options"] = {"openrlhf": self.options}
        return ImportResult(job=job, notes=self.notes, settings=dict(self.launch.flags))

    def method(self, family: str) -> dict[str, Any]:
        if family == "sft":
            method: dict[str, Any] = {"name": "sft"}
            if self.flag("model.pretrain_mode_enable"):
                method["loss_on"] = "all"
                self.note("model.pretrain_mode_enable", "set", "method.loss_on: all (every token is trained)")
            return method
        if family == "preference":
            ipo = self.flag("model.ipo_enable")
            method = {"name": "ipo" if ipo else "dpo"}
            beta = self.float_of("model.beta")
            if beta is not None:
                method["beta"] = beta
            smoothing = self.float_of("model.label_smoothing")
            if smoothing:
                if ipo:
                    self.note("model.label_smoothing", "dropped", f"{smoothing}: IPO has no label smoothing")
                else:
                    method["label_smoothing"] = smoothing
            return method
        estimator = str(self.rest.get("algo.advantage.estimator") or "gae")
        if estimator not in ESTIMATOR_METHODS:
            raise PtsdkError(
                f"{self.where}: --algo.advantage.estimator {estimator}: ptsdk has no such method "
                f"(it imports {', '.join(ESTIMATOR_METHODS)})"
            )
        name, loss = ESTIMATOR_METHODS[estimator]
        self.take("algo.advantage.estimator")
        method = {"name": name}
        if loss:
            method["loss_type"] = loss
        if estimator == "reinforce_baseline":
            self.note(
                "algo.advantage.estimator",
                "derived",
                "reinforce_baseline: method reinforce_pp with num_generations > 1 (the group mean is subtracted)",
            )
        return method

    def distributed(self, rl: bool) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if rl:
            nodes = self.int_of("actor.num_nodes") or 1
            gpus = self.int_of("actor.num_gpus_per_node")
            if gpus is None:
                gpus = 8
                self.note("actor.num_gpus_per_node", "defaulted", "8: OpenRLHF's default")
            ray = self.launch.launcher_flags.get("address") if self.launch.launcher == "ray" else None
            if ray:
                d["ray_address"] = str(ray)
        else:
            nodes, gpus = self._launcher_world()
        d.update(nodes=nodes, gpus_per_node=gpus)
        if nodes > 1:
            addr = self.launch.launcher_flags.get("master_addr") or self.launch.launcher_flags.get("master-addr")
            d["master_addr"] = str(addr or "${MASTER_ADDR}")
            if not addr:
                self.note("distributed.master_addr", "defaulted", "${MASTER_ADDR}: the launch names no master node")
        stage = self.int_of("ds.zero_stage")
        if stage is None:
            stage = DEFAULT_ZERO_STAGE
            self.note("ds.zero_stage", "defaulted", f"{stage}: OpenRLHF's default ZeRO stage")
        if stage not in (0, 1, 2, 3):
            raise PtsdkError(f"{self.where}: --ds.zero_stage {stage}: DeepSpeed's stages are 0, 1, 2 and 3")
        d["strategy"] = "deepspeed"
        d["zero_stage"] = stage
        if self.flag("ds.adam_offload"):
            d["offload"] = "optimizer"
        return d

    def _launcher_world(self) -> tuple[int, int]:
        lf, kind = self.launch.launcher_flags, self.launch.launcher
        if kind == "deepspeed":
            nodes, gpus = lf.get("num_nodes", 1), lf.get("num_gpus")
        elif kind == "torchrun":
            nodes, gpus = lf.get("nnodes", 1), lf.get("nproc_per_node") or lf.get("nproc-per-node")
        else:
            nodes, gpus = 1, None
        out = []
        for what, value in (("nodes", nodes), ("gpus_per_node", gpus)):
            try:
                out.append(max(1, int(str(value))))
            except ValueError:
                out.append(1)
                if value is not None:
                    self.note(
                        f"distributed.{what}",
                        "approximated",
                        f"1: the launcher's {value} is not a number (set it in the job)",
                    )
        if gpus is None:
            self.note(
                "distributed.gpus_per_node",
                "defaulted",
                f"1: the launch names no GPU count ({kind or 'no launcher'}); set it in the job",
            )
        return out[0], out[1]

    def training(self, job: dict[str, Any], rl: bool) -> dict[str, Any]:
        t: dict[str, Any] = {}
        prefix = "actor." if rl else ""
        batch = self.int_of("train.batch_size")
        if batch is not None:
            t["global_batch_size"] = batch
        micro = self.int_of("train.micro_batch_size")
        if micro is not None:
            t["micro_batch_size"] = micro
        lr = self.float_of(f"{prefix}adam.lr")
        if lr is not None:
            t["learning_rate"] = lr
        wd = self.float_of(f"{prefix}adam.weight_decay")
        if wd is not None:
            t["weight_decay"] = wd
        betas = self.take(f"{prefix}adam.betas")
        if betas is not None:
            if not isinstance(betas, list) or len(betas) != 2:
                raise PtsdkError(f"{self.where}: --{prefix}adam.betas {_show(betas)}: expected two numbers")
            t["adam_beta1"], t["adam_beta2"] = (self.number(f"{prefix}adam.betas", b) for b in betas)
        eps = self.float_of(f"{prefix}adam.eps")
        if eps is not None:
            t["adam_epsilon"] = eps
        scheduler = self.take(f"{prefix}lr_scheduler")
        floor = self.float_of(f"{prefix}min_lr_ratio")
        if scheduler is not None:
            if scheduler in SCHEDULERS:
                t["lr_scheduler"] = scheduler
            elif scheduler == "cosine_with_min_lr":
                t["lr_scheduler"] = "cosine"
                t["min_lr_ratio"] = DEFAULT_MIN_LR_RATIO if floor is None else floor
                if floor is None:
                    self.note(
                        f"{prefix}min_lr_ratio",
                        "defaulted",
                        f"training.min_lr_ratio {DEFAULT_MIN_LR_RATIO}: OpenRLHF's default floor",
                    )
                floor = None
            else:
                self.note(f"{prefix}lr_scheduler", "dropped", f"{scheduler}: the spec's schedulers are {SCHEDULERS}")
        if floor is not None:
            self.note(f"{prefix}min_lr_ratio", "dropped", f"{floor}: only the cosine_with_min_lr schedule has a floor")
        warmup = self.float_of(f"{prefix}lr_warmup_ratio")
        if warmup is not None:
            t["warmup_ratio"] = warmup
        norm = self.float_of(f"{prefix}max_norm")
        if norm is not None:
            t["max_grad_norm"] = norm
        if not rl:
            epochs = self.int_of("train.max_epochs")
            if epochs is not None:
                t["epochs"] = epochs
        else:
            episodes = self.int_of("train.num_episodes")
            if episodes is not None:
                t["epochs"] = episodes
            if self.flag("train.dynamic_batch_enable"):
                budget = self.int_of("train.max_tokens_per_gpu")
                t["max_tokens_per_micro_batch"] = budget or DEFAULT_MAX_TOKENS_PER_GPU
                if budget is None:
                    self.note(
                        "train.max_tokens_per_gpu",
                        "defaulted",
                        f"training.max_tokens_per_micro_batch {DEFAULT_MAX_TOKENS_PER_GPU}: OpenRLHF's default",
                    )
        seed = self.int_of("train.seed")
        if seed is not None:
            t["seed"] = seed
        dtype = self.take("ds.param_dtype")
        if dtype is not None:
            if dtype not in ("bf16", "fp16"):
                raise PtsdkError(f"{self.where}: --ds.param_dtype {dtype}: OpenRLHF trains in bf16 or fp16")
            t["precision"] = dtype
        if self.flag(f"{'actor' if rl else 'model'}.gradient_checkpointing_enable"):
            t["gradient_checkpointing"] = True
        if self.flag("ds.packing_samples"):
            # Each micro-batch unpadded into one row (flash-attn varlen): the spec's padding_free.
            t["padding_free"] = True
        attn = self.rest.get("ds.attn_implementation")
        if attn in ATTENTION:
            job["model"]["attn_implementation"] = self.take("ds.attn_implementation")
        if self.rest.get("optim") == "adam":
            self.take("optim")
        return t

    def adapter(self, job: dict[str, Any]) -> dict[str, Any] | None:
        rank = self.int_of("ds.lora.rank")
        four_bit = self.flag("ds.load_in_4bit")
        if not rank:
            for key in ("ds.lora.alpha", "ds.lora.dropout", "ds.lora.target_modules"):
                if key in self.rest:
                    self.note(key, "dropped", f"{self.take(key)}: no LoRA (--ds.lora.rank is 0)")
            if four_bit:
                raise PtsdkError(f"{self.where}: --ds.load_in_4bit without --ds.lora.rank: a 4-bit base needs LoRA")
            return None
        adapter: dict[str, Any] = {"type": "qlora" if four_bit else "lora", "r": rank}
        if four_bit:
            job["model"]["quantization"] = "4bit"
        alpha = self.int_of("ds.lora.alpha")
        adapter["alpha"] = alpha if alpha is not None else 16
        if alpha is None:
            self.note("ds.lora.alpha", "defaulted", "16: OpenRLHF's default")
        dropout = self.float_of("ds.lora.dropout")
        adapter["dropout"] = dropout or 0.0
        targets = self.take("ds.lora.target_modules")
        if targets is None or targets == "all-linear" or targets == ["all-linear"]:
            adapter["target_modules"] = "all-linear"
        else:
            adapter["target_modules"] = [targets] if isinstance(targets, str) else list(targets)
        return adapter

    def data(self, job: dict[str, Any], family: str) -> dict[str, Any]:
        rl = family == "rl"
        key = "data.prompt_dataset" if rl else "data.dataset"
        path = self.take(key)
        if not path:
            raise PtsdkError(f"{self.where}: --{key} is missing (the training data)")
        if isinstance(path, list):
            raise PtsdkError(f"{self.where}: --{key} names several datasets; ptsdk reads one (mix them first)")
        data: dict[str, Any] = {"train": {"path": str(path)}}
        self.note(key, "derived", "data.train.path: ptsdk converts it to data/train.jsonl, which the launch reads")
        split = self.take("data.split") if not rl else self.take("data.prompt_split")
        if split is not None:
            data["train"]["split"] = str(split)
            self.note("data.split" if not rl else "data.prompt_split", "derived", "data.train.split")
        cap = self.int_of("data.max_samples")
        if cap is not None:
            data["train"]["max_samples"] = cap
            self.note("data.max_samples", "derived", "data.train.max_samples: applied when data/train.jsonl is written")
        max_len = self.int_of("data.max_len")
        if max_len is not None and not rl:
            data["max_length"] = max_len
        elif rl:
            self._rl_lengths(job, max_len, data)
        chat = self.flag("data.apply_chat_template")
        columns: dict[str, str] = {}
        input_key = self.take("data.input_key")
        if family == "sft":
            output_key = self.take("data.output_key")
            multiturn = self.flag("data.multiturn")
            if multiturn or (chat and output_key is None):
                data["format"] = "messages"
                columns["messages"] = str(input_key or "input")
            else:
                columns["prompt"] = str(input_key or "input")
                columns["completion"] = str(output_key or "output")
        elif family == "preference":
            prompt_key = self.take("data.prompt_key")
            if chat and prompt_key is None:
                # train_dpo without a prompt key takes chosen's turns before its last as the prompt
                # (openrlhf/datasets/reward_dataset.py preprocess_data, is_dpo).
                data["prompt_in_answers"] = True
                self.note(
                    "data.apply_chat_template",
                    "derived",
                    "no --data.prompt_key: chosen and rejected are whole conversations holding the prompt "
                    "(data.prompt_in_answers: true; ptsdk takes their shared leading turns, OpenRLHF chosen's turns "
                    "before the last: the same where only the last turn differs)",
                )
            else:
                columns["prompt"] = str(prompt_key or "prompt")
            columns["chosen"] = str(self.take("data.chosen_key") or "chosen")
            columns["rejected"] = str(self.take("data.rejected_key") or "rejected")
            if input_key is not None:
                self.note("data.input_key", "dropped", f"{input_key}: train_dpo reads --data.prompt_key")
        else:
            columns["prompt"] = str(input_key or "input")
            label = self.take("data.label_key")
            if label is not None:
                columns["ground_truth"] = str(label)
        for field_name, column in columns.items():
            native = {
                "prompt": "data.prompt_key" if family == "preference" else "data.input_key",
                "completion": "data.output_key",
                "messages": "data.input_key",
                "chosen": "data.chosen_key",
                "rejected": "data.rejected_key",
                "ground_truth": "data.label_key",
            }[field_name]
            self.note(native, "derived", f"data.columns.{field_name}: {column} (the prepared file uses ptsdk's keys)")
        data["columns"] = {k: v for k, v in columns.items() if k != v}
        if not data["columns"]:
            del data["columns"]
        if chat and data.get("format") != "messages" and not data.get("prompt_in_answers"):
            self.note(
                "data.apply_chat_template",
                "approximated",
                "ptsdk applies the chat template to message records only; these records are converted "
                "to ptsdk's keys and trained as plain text unless model.chat_template is set",
            )
        eval_path = self.take("eval.dataset")
        if eval_path is not None:
            data["eval"] = {"path": str(eval_path)}
            self.note("eval.dataset", "derived", "data.eval.path: converted to data/eval.jsonl")
            eval_split = self.take("eval.split")
            if eval_split is not None:
                data["eval"]["split"] = str(eval_split)
                self.note("eval.split", "derived", "data.eval.split (the converted file is one 'train' split)")
        return data

    def _rl_lengths(self, job: dict[str, Any], max_len: int | None, data: dict[str, Any]) -> None:
        m = job["method"]
        new = self.int_of("rollout.max_new_tokens")
        if new is None:
            new = DEFAULT_MAX_NEW_TOKENS
            self.note("rollout.max_new_tokens", "defaulted", f"{new}: OpenRLHF's default")
        m["max_completion_length"] = new
        if max_len is None:
            m["max_prompt_length"] = 1024
            data["max_length"] = 1024 + new
            self.note("data.max_len", "defaulted", "absent: max_prompt_length 1024 assumed")
        elif max_len > new:
            m["max_prompt_length"] = max_len - new
            data["max_length"] = max_len
        else:
            m["max_prompt_length"] = 1
            data["max_length"] = max(8, new + 1)
            self.note("data.max_len", "approximated", f"{max_len} leaves no prompt budget after {new} new tokens")

    def rl(self, job: dict[str, Any]) -> None:
        m, t = job["method"], job["training"]
        n = self.int_of("rollout.n_samples_per_prompt")
        if n is not None:
            m["num_generations"] = n
        elif m["name"] in ("grpo", "rloo"):
            m["num_generations"] = 1
        temperature = self.float_of("rollout.temperature")
        if temperature is not None:
            m["temperature"] = temperature
        kl = self.float_of("algo.kl.init_coef")
        if kl is not None:
            m["kl_coef"] = kl
        # OpenRLHF's KL goes into the token rewards unless --algo.kl.use_loss; its estimator defaults to k1.
        m["kl_placement"] = "loss" if self.flag("algo.kl.use_loss") else "reward"
        estimator = self.take("algo.kl.estimator")
        if estimator is not None and estimator not in ("k1", "k2", "k3"):
            raise PtsdkError(f"{self.where}: --algo.kl.estimator {estimator}: OpenRLHF's estimators are k1, k2, k3")
        m["kl_estimator"] = str(estimator or "k1")
        epochs = self.int_of("train.max_epochs")
        if epochs is not None:
            m["epochs_per_rollout"] = epochs
        clip = self.float_of("actor.eps_clip")
        if clip is not None:
            m["clip_epsilon"] = clip
        if m["name"] == "ppo":
            for native, spec in (
                ("critic.adam.lr", "critic_learning_rate"),
                ("algo.advantage.gamma", "gamma"),
                ("algo.advantage.lambd", "lam"),
            ):
                value = self.float_of(native)
                if value is not None:
                    m[spec] = value
            for native, default in (("algo.advantage.gamma", "gamma"), ("algo.advantage.lambd", "lam")):
                if default not in m:
                    m[default] = 1.0
                    self.note(native, "defaulted", f"method.{default} 1.0: OpenRLHF's default")
        reward_model = self.take("reward.model_name_or_path")
        if reward_model:
            m["reward_model"] = str(reward_model)
        remote = self.take("reward.remote_url")
        if remote is not None:
            if not str(remote).endswith(".py"):
                raise PtsdkError(
                    f"{self.where}: --reward.remote_url {remote}: a reward server; a ptsdk job scores with reward "
                    "functions (a .py file) or a reward model"
                )
            m["rewards"] = [f"{remote}:reward_func"]
            self.note(
                "reward.remote_url",
                "approximated",
                f"method.rewards {remote}:reward_func; ptsdk calls fn(prompts, completions, **columns), OpenRLHF "
                "calls reward_func(queries, prompts, labels): adapt the function",
            )
        if not m.get("rewards") and not m.get("reward_model"):
            agent = self.rest.get("train.agent_func_path")
            why = (
                f"--train.agent_func_path {agent}: an agent function rolls out and scores"
                if agent
                else "no --reward.model_name_or_path or --reward.remote_url"
            )
            raise PtsdkError(
                f"{self.where}: {why}; a ptsdk job scores with reward functions or a reward model (no agent loops)"
            )
        gens = int(m.get("num_generations") or 1)
        prompts = self.int_of("rollout.batch_size")
        if "global_batch_size" not in t:
            t["global_batch_size"] = (prompts or 1) * gens
        if prompts is not None and prompts * gens != t["global_batch_size"]:
            if (prompts * gens) % t["global_batch_size"] == 0:
                m["rollout_batch_size"] = prompts
            else:
                self.note(
                    "rollout.batch_size",
                    "approximated",
                    f"{prompts} prompts x {gens} samples do not split into optimizer steps of --train.batch_size "
                    f"{t['global_batch_size']}; ptsdk generates {t['global_batch_size'] // max(gens, 1)} prompts "
                    "at a time (one step per rollout)",
                )
        rollout_micro = self.int_of("rollout.micro_batch_size")
        if rollout_micro is not None and rollout_micro != t.get("micro_batch_size", 1):
            self.note(
                "rollout.micro_batch_size",
                "approximated",
                f"{rollout_micro}: ptsdk uses training.micro_batch_size for generation scoring too",
            )
        engines = self.int_of("vllm.num_engines")
        if engines:
            rollout: dict[str, Any] = {"engine": "vllm", "num_engines": engines}
            tp = self.int_of("vllm.tensor_parallel_size")
            if tp is not None:
                rollout["tensor_parallel_size"] = tp
            mem = self.float_of("vllm.gpu_memory_utilization")
            if mem is not None:
                rollout["gpu_memory_utilization"] = mem
            rollout["colocate"] = self.flag("train.colocate_all")
            job["rollout"] = rollout
        else:
            self.note(
                "vllm.num_engines",
                "approximated",
                "absent: OpenRLHF generates with the training engine; ptsdk always generates with vLLM",
            )

    def output(self, job: dict[str, Any]) -> dict[str, Any]:
        o: dict[str, Any] = {}
        steps = self.int_of("logger.logging_steps")
        if steps is not None and steps >= 1:
            o["logging_steps"] = steps
        save = self.int_of("ckpt.save_steps")
        if save is not None:
            if save >= 1:
                o["save_steps"] = save
            else:
                self.note("ckpt.save_steps", "derived", f"{save}: no periodic checkpoints (output.save_steps unset)")
        keep = self.int_of("ckpt.max_num")
        if keep is not None:
            o["save_total_limit"] = keep
            if save is None or save < 1:
                self.note("ckpt.max_num", "dropped", f"{keep}: no periodic checkpoints to keep")
        every = self.int_of("eval.steps")
        if every is not None:
            if every >= 1 and "eval" in job["data"]:
                o["eval_steps"] = every
            else:
                self.note("eval.steps", "dropped", f"{every}: no periodic evaluation (no --eval.dataset or < 1)")
        return o

    def renamed(self) -> None:
        """Flags of other OpenRLHF releases that 0.11.2's parser spells differently: the train/rollout
        importance-sampling correction (--algo.advantage.is_correction_enable / _type tis|icepop|seq-mask-tis
        became --algo.advantage.is_correction_level / _mode; the parser's help names the same schemes)."""
        enabled = self.rest.get("algo.advantage.is_correction_enable")
        kind = self.rest.get("algo.advantage.is_correction_type")
        if enabled is None and kind is None:
            return
        self.take("algo.advantage.is_correction_enable")
        self.take("algo.advantage.is_correction_type")
        if enabled is not True and str(enabled).lower() != "true":
            for key in ("algo.advantage.is_correction_enable", "algo.advantage.is_correction_type"):
                if key in self.launch.flags:
                    self.note(key, "dropped", "the correction is off (OpenRLHF 0.11.2's default)")
            return
        scheme = str(kind or "tis")
        level, mode = CORRECTIONS.get(scheme, (None, None))
        if level is None or mode is None:
            raise PtsdkError(
                f"{self.where}: --algo.advantage.is_correction_type {scheme}: OpenRLHF 0.11.2 offers "
                f"{', '.join(CORRECTIONS)} (as --algo.advantage.is_correction_level / _mode)"
            )
        self.rest.setdefault("algo.advantage.is_correction_level", level)
        self.rest.setdefault("algo.advantage.is_correction_mode", mode)
        for key in ("algo.advantage.is_correction_enable", "algo.advantage.is_correction_type"):
            if key in self.launch.flags:
                self.note(
                    key,
                    "derived",
                    f"{scheme}{'' if kind else ' (the default scheme)'}: OpenRLHF 0.11.2's "
                    f"--algo.advantage.is_correction_level {level} --algo.advantage.is_correction_mode {mode}",
                )

    # what is left

    def leftovers(self, job: dict[str, Any]) -> None:
        """Flags not mapped: the translation's own value (nothing to say), dropped (a flag ptsdk sets or the
        job owns, or the run's environment), or passed through in backend_options.openrlhf."""
        ours = self._translated(job)
        for key, value in list(self.rest.items()):
            if any(fnmatchcase(key, p) for p in ENVIRONMENT):
                self.note(key, "dropped", f"{_show(value)}: where and how the run is recorded; ptsdk decides it")
                continue
            owner = next((f for p, f in self.owned.items() if fnmatchcase(key, p)), None)
            if key in ours:
                if _same(value, ours[key]):
                    continue
                self.note(
                    key,
                    "dropped",
                    f"{_show(value)}: ptsdk sets --{key} {_show(ours[key])} from the job"
                    + (f" ({owner})" if owner else ""),
                )
                continue
            if owner is not None:
                self.note(key, "dropped", f"{_show(value)}: the job's {owner} decides it")
                continue
            self.options[key] = value
            self.note(key, "passthrough", f"backend_options.openrlhf: {_show(value)} (the spec has no field for it)")

    def _translated(self, job: dict[str, Any]) -> dict[str, Any]:
        """The flags the translation sets for the job as mapped so far (empty when it cannot translate)."""
        from ptsdk.backends.openrlhf.backend import OpenRLHFBackend
        from ptsdk.spec import validate_job

        try:
            plan = OpenRLHFBackend().translate(validate_job(job, source=str(self.source)))
        except PtsdkError:
            return {}
        return {
            flag[2:]: True if values is None else values[0] if len(values) == 1 else values
            for flag, values in parse_flags(plan.args).items()
        }


def _show(value: Any) -> str:
    if value is True:
        return "on"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        a_list = a if isinstance(a, list) else [a]
        b_list = b if isinstance(b, list) else [b]
        return len(a_list) == len(b_list) and all(_same(x, y) for x, y in zip(a_list, b_list, strict=True))
    if a is True or b is True:
        return a is True and b is True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)
