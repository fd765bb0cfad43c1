"""`ptsdk import --from verl`: a vERL launch script (Hydra overrides of ``verl.trainer.main_ppo`` or
``verl.trainer.sft_trainer``) read back as a ptsdk job.

The script is parsed, never run: backslash-continued lines are joined, the line that runs a vERL entry
point is split with shlex, and its ``key=value`` / ``+key=value`` / ``~key`` overrides are the native
settings. Each setting the spec can express becomes a job field, with vERL 0.9.1's own default where the
script says nothing. The job is then translated back (:meth:`VerlBackend.translate`, pure Python): a mapped
setting that does not come back as written gets a note saying what ptsdk sets instead; a setting the job
cannot hold goes to ``backend_options.verl`` when ptsdk sets nothing there, else it is dropped with a note.
"""

from __future__ import annotations

import math
import re
import shlex
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptsdk.errors import PtsdkError
from ptsdk.plugins.backend import ImportResult, Note
from ptsdk.plugins.kit import logical_lines

if TYPE_CHECKING:
    from ptsdk.backends.verl.backend import VerlBackend

ENTRYPOINTS = {"verl.trainer.main_ppo": "rl", "verl.trainer.sft_trainer": "sft"}
A, M, R, REF = (
    "actor_rollout_ref.actor",
    "actor_rollout_ref.model",
    "actor_rollout_ref.rollout",
    "actor_rollout_ref.ref",
)
# vERL advantage estimator -> ptsdk method (the inverse of backend.ADV_ESTIMATOR).
METHODS = {"grpo": "grpo", "gae": "ppo", "rloo": "rloo", "reinforce_plus_plus": "reinforce_pp"}
# (loss_agg_mode, policy_loss.loss_mode) -> GRPO loss_type (the inverse of backend.GRPO_LOSS).
GRPO_LOSSES = {
    ("seq-mean-token-mean", "vanilla"): "grpo",
    ("seq-mean-token-sum-norm", "vanilla"): "dr_grpo",
    ("token-mean", "vanilla"): "dapo",
    ("token-mean", "cispo"): "cispo",
    ("token-mean", "sapo"): "sapo",
}
#: vERL's KL estimator names (kl_loss_type, kl_penalty) -> ptsdk's kl_estimator; "abs", "full" and the
#: straight-through "k1+"/"k3+" variants have none.
KL_ESTIMATORS = {"kl": "k1", "k1": "k1", "mse": "k2", "k2": "k2", "low_var_kl": "k3", "k3": "k3"}
DTYPES = {"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16", "float16": "fp16"}
REPORTERS = ("tensorboard", "wandb", "mlflow", "trackio")
#: The run's environment rather than the job: ptsdk sets these itself for every run.
ENVIRONMENT = {
    "trainer.project_name": "the run's project name (ptsdk names the run directory instead)",
    "trainer.default_local_dir": "where checkpoints go: ptsdk keeps them under the run directory (output.dir)",
    "trainer.resume_mode": "resuming is `ptsdk resume`, not a job setting",
    "trainer.use_legacy_worker_impl": "vERL's worker implementation switch, chosen by ptsdk's translation",
    "trainer.critic_warmup": "critic warmup steps: ptsdk trains the actor from the first step",
}
#: Placeholder reward when the script scores with vERL's built-in data_source rules.
REWARD_PLACEHOLDER = "rewards.py:compute_score"


def import_verl(backend: VerlBackend, source: Path) -> ImportResult:
    entry, launcher, raw = read_launch(source)
    return Importer(backend, source, entry, launcher, raw).run()


# --- reading the script ---------------------------------------------------------------------------------


def read_launch(source: Path) -> tuple[str, dict[str, str], dict[str, str]]:
    """(entry kind "rl"/"sft", launcher options such as torchrun's, overrides as written -> text)."""
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PtsdkError(f"{source}: not a text file; give the shell script that launches vERL") from None
    except OSError as exc:
        raise PtsdkError(f"{source}: cannot read it ({exc.strerror})") from None
    for number, line in logical_lines(text):
        if not any(e in line for e in ENTRYPOINTS):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise PtsdkError(f"{source}:{number}: cannot split the vERL command line ({exc})") from None
        for i, word in enumerate(words):
            if word == "-m" and i + 1 < len(words) and words[i + 1] in ENTRYPOINTS:
                return ENTRYPOINTS[words[i + 1]], _launcher(words[:i]), _overrides(source, number, words[i + 2 :])
    raise PtsdkError(
        f"{source}: no vERL launch found; expected a line running 'python3 -m verl.trainer.main_ppo key=value ...' "
        "or '-m verl.trainer.sft_trainer'"
    )


def _launcher(words: list[str]) -> dict[str, str]:
    """torchrun's --nnodes / --nproc_per_node (either spelling, `--k v` or `--k=v`)."""
    out: dict[str, str] = {}
    for i, word in enumerate(words):
        if not word.startswith("--"):
            continue
        key, _, value = word[2:].partition("=")
        if not value and i + 1 < len(words) and not words[i + 1].startswith("-"):
            value = words[i + 1]
        out[key.replace("-", "_")] = value
    return out


def _overrides(source: Path, number: int, words: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in words:
        if word.startswith("-") or word in ("$@", "$*", "${@}", "${*}"):
            continue  # Hydra's own flags (--config-path, --config-name) and the script's own arguments
        key, eq, value = word.partition("=")
        if not eq and not key.startswith("~"):
            raise PtsdkError(f"{source}:{number}: {word!r} is not a Hydra override (key=value, +key=value or ~key)")
        if not re.fullmatch(r"[+~]{0,2}[A-Za-z_][\w.\-@/]*", key):
            raise PtsdkError(f"{source}:{number}: {key!r} is not a vERL config key")
        out[key] = value
    return out


def parse_value(text: str) -> Any:
    """A Hydra override value as Python: booleans, null, numbers, [lists], quoted strings; else the text."""
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    if t.lower() in ("null", "none", "~"):
        return None
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if t.startswith("[") and t.endswith("]"):
        inner = t[1:-1].strip()
        return [parse_value(x) for x in _split_list(inner)] if inner else []
    try:
        return int(t)
    except ValueError:
        pass
    try:
        value = float(t)
        return value if math.isfinite(value) else t
    except ValueError:
        return t


def _split_list(text: str) -> list[str]:
    out, depth, quote, current = [], 0, "", ""
    for c in text:
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(current)
            current = ""
            continue
        current += c
    return [*out, current]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        a = parse_value(a)
    if isinstance(b, str):
        b = parse_value(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return bool(a == b)


# --- the mapping ------------------------------------------------------------------------------------------


class Importer:
    def __init__(
        self, backend: VerlBackend, source: Path, entry: str, launcher: dict[str, str], raw: dict[str, str]
    ) -> None:
        self.backend, self.source, self.entry, self.launcher = backend, source, entry, launcher
        self.raw = raw
        self.values = {k.lstrip("+"): parse_value(v) for k, v in raw.items() if not k.startswith("~")}
        self.written = {k.lstrip("+"): k for k in raw if not k.startswith("~")}
        self.used: dict[str, str] = {}  # native key (bare) -> the job field it went to
        self.explained: set[str] = set()  # native keys (bare) with a specific note
        self.notes: list[Note] = []

    # helpers ------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None, *, field: str) -> Any:
        if key in self.values:
            self.used[key] = field
            return self.values[key]
        return default

    def note(self, key: str, kind: Any, message: str) -> None:
        self.notes.append(Note(self.written.get(key, key), kind, message))
        self.explained.add(key)

    def number(self, key: str, default: Any, *, field: str, kind: type = int) -> Any:
        value = self.get(key, default, field=field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if value is not None:
                self.note(key, "dropped", f"{value!r} is not a number ptsdk can hold in {field}; {default} assumed")
            return default
        return kind(value)

    # the job ------------------------------------------------------------------------------

    def run(self) -> ImportResult:
        job: dict[str, Any] = {"version": 1}
        name = self.get("trainer.experiment_name", None, field="name")
        if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][\w.\-]*", name):
            job["name"] = name
        elif name is not None:
            self.note("trainer.experiment_name", "dropped", f"{name!r} is not a ptsdk job name")
        job["distributed"] = self.distributed()
        world = job["distributed"]["nodes"] * job["distributed"]["gpus_per_node"]
        if self.entry == "sft":
            job["method"] = {"name": "sft"}
            prefix, optim = "model", "optim"
        else:
            job["method"] = self.rl_method(job)
            prefix, optim = M, f"{A}.optim"
        job["model"], job["adapter"] = self.model(prefix, job)
        job["data"] = self.data(job)
        job["training"] = self.training(job, optim, world)
        job["output"] = self.output(job)
        if self.entry == "rl":
            job["rollout"] = self.rollout(world)
        options = self.rest(job)
        if options:
            job["backend_options"] = {"verl": options}
        settings = {k: v for k, v in self.raw.items()}
        return ImportResult(job=job, notes=self.notes, settings=settings)

    def distributed(self) -> dict[str, Any]:
        d: dict[str, Any] = {"device": "gpu", "strategy": "fsdp"}
        if self.entry == "rl":
            d["nodes"] = self.number("trainer.nnodes", 1, field="distributed.nodes")
            d["gpus_per_node"] = self.number("trainer.n_gpus_per_node", 8, field="distributed.gpus_per_node")
        else:
            nodes = self.launcher.get("nnodes", "1")
            procs = self.launcher.get("nproc_per_node", "")
            d["nodes"] = int(nodes) if nodes.isdigit() else 1
            d["gpus_per_node"] = int(procs) if procs.isdigit() else 1
            if not procs.isdigit():
                self.notes.append(
                    Note(
                        "torchrun --nproc_per_node",
                        "defaulted",
                        "the script starts vERL's SFT trainer without a torchrun launcher naming its process "
                        "count: one process assumed; set distributed.gpus_per_node",
                    )
                )
        if d["nodes"] > 1:
            d["master_addr"] = self.launcher.get("master_addr") or "localhost"
            self.notes.append(
                Note("distributed.master_addr", "defaulted", f"{d['master_addr']}: set the rendezvous host")
            )
        p = f"{A}.fsdp_config" if self.entry == "rl" else "engine"
        params = self.get(f"{p}.param_offload", False, field="distributed.offload")
        optimizer = self.get(f"{p}.optimizer_offload", False, field="distributed.offload")
        if params is True and optimizer is not True:
            self.note(
                f"{p}.param_offload",
                "approximated",
                "ptsdk offloads parameters together with the optimizer state (offload: optimizer_and_params)",
            )
        d["offload"] = "optimizer_and_params" if params is True else "optimizer" if optimizer is True else "none"
        for key in ("critic.model.fsdp_config.param_offload", "critic.model.fsdp_config.optimizer_offload"):
            value = self.get(key, None, field="distributed.offload")  # older vERL's critic keys
            if value is not None:
                self.note(
                    key,
                    "approximated",
                    f"{value}: vERL 0.9.1 has no critic.model.fsdp_config; ptsdk offloads the critic as the actor "
                    f"(distributed.offload: {d['offload']})",
                )
        strategy = self.get(f"{A}.strategy" if self.entry == "rl" else "engine.strategy", None, field="distributed")
        if strategy not in (None, "fsdp2"):
            self.note(
                f"{A}.strategy" if self.entry == "rl" else "engine.strategy",
                "approximated",
                f"{strategy}: ptsdk runs vERL's fsdp2 engine (distributed.strategy: fsdp)",
            )
        for key in self.values:
            if ".megatron." in f".{key}." or key.startswith("megatron."):
                self.used[key] = "distributed.strategy"
                self.note(key, "dropped", "ptsdk runs vERL's FSDP engine; Megatron parallelism is not applied")
        return d

    def rl_method(self, job: dict[str, Any]) -> dict[str, Any]:
        est = self.get("algorithm.adv_estimator", "gae", field="method.name")
        if est not in METHODS:
            raise PtsdkError(
                f"{self.source}: algorithm.adv_estimator={est}: ptsdk has no such method; it imports "
                f"{', '.join(f'{k} ({v})' for k, v in METHODS.items())}"
            )
        m: dict[str, Any] = {"name": METHODS[est]}
        m["num_generations"] = self.number(f"{R}.n", 1, field="method.num_generations")
        m["max_prompt_length"] = self.number("data.max_prompt_length", 512, field="method.max_prompt_length")
        m["max_completion_length"] = self.number("data.max_response_length", 512, field="method.max_completion_length")
        m["temperature"] = self.number(f"{R}.temperature", 1.0, field="method.temperature", kind=float)
        m.update(self.kl())
        clip = self.number(f"{A}.clip_ratio", 0.2, field="method.clip_epsilon", kind=float)
        m["clip_epsilon"] = clip
        for side in ("low", "high"):
            key = f"{A}.clip_ratio_{side}"
            value = self.get(key, None, field="method.clip_epsilon")
            if value is not None and not same(value, clip):
                self.note(
                    key,
                    "approximated",
                    f"{value}: ptsdk clips symmetrically at method.clip_epsilon={clip} (clip_ratio_low = high)",
                )
        agg = self.get(f"{A}.loss_agg_mode", "token-mean", field="method.loss_type")
        mode = self.get(f"{A}.policy_loss.loss_mode", "vanilla", field="method.loss_type")
        if m["name"] == "grpo":
            loss = GRPO_LOSSES.get((agg, mode))
            if loss is None:
                loss = GRPO_LOSSES.get((agg, "vanilla"), "grpo")
                for key in (f"{A}.loss_agg_mode", f"{A}.policy_loss.loss_mode"):
                    self.note(
                        key,
                        "approximated",
                        f"loss_agg_mode={agg} with policy_loss.loss_mode={mode} is no ptsdk GRPO loss_type; "
                        f"imported as loss_type {loss}",
                    )
            m["loss_type"] = loss
        elif (agg, mode) != ("token-mean", "vanilla"):
            for key in (f"{A}.loss_agg_mode", f"{A}.policy_loss.loss_mode"):
                self.note(key, "approximated", f"ptsdk's {m['name']} uses token-mean with the vanilla policy loss")
        if m["name"] == "ppo":
            m["gamma"] = self.number("algorithm.gamma", 1.0, field="method.gamma", kind=float)
            m["lam"] = self.number("algorithm.lam", 1.0, field="method.lam", kind=float)
            critic_lr = self.get("critic.optim.lr", None, field="method.critic_learning_rate")
            if critic_lr is not None:
                m["critic_learning_rate"] = float(critic_lr)
        m.update(self.reward())
        return m

    def kl(self) -> dict[str, Any]:
        """The KL penalty: in the actor's loss (use_kl_loss, kl_loss_coef, kl_loss_type) or in the reward
        (use_kl_in_reward, kl_ctrl.kl_coef, kl_penalty), with vERL's defaults where the script says nothing."""
        use_kl = self.get(f"{A}.use_kl_loss", False, field="method.kl_placement") is True
        coef = self.number(f"{A}.kl_loss_coef", 0.001, field="method.kl_coef", kind=float)
        kl_type = self.get(f"{A}.kl_loss_type", "low_var_kl", field="method.kl_estimator")
        in_reward = self.get("algorithm.use_kl_in_reward", False, field="method.kl_placement") is True
        reward_coef = self.number("algorithm.kl_ctrl.kl_coef", 0.001, field="method.kl_coef", kind=float)
        penalty = self.get("algorithm.kl_penalty", "kl", field="method.kl_estimator")
        ctrl = self.get("algorithm.kl_ctrl.type", "fixed", field="method.kl_coef")
        if use_kl and in_reward:
            self.note(
                "algorithm.use_kl_in_reward",
                "approximated",
                f"the script puts a KL term in the loss and in the reward; ptsdk holds one: the loss's "
                f"(kl_coef={coef}); the reward's ({penalty}, {reward_coef}) is not applied",
            )
            for key in ("algorithm.kl_ctrl.kl_coef", "algorithm.kl_penalty", "algorithm.kl_ctrl.type"):
                if key in self.values:
                    self.explained.add(key)
        if use_kl or not in_reward:
            placement, value, name, key = "loss", coef if use_kl else 0.0, kl_type, f"{A}.kl_loss_type"
        else:
            placement, value, name, key = "reward", reward_coef, penalty, "algorithm.kl_penalty"
            if ctrl != "fixed":
                self.note(
                    "algorithm.kl_ctrl.type",
                    "approximated",
                    f"{ctrl}: ptsdk keeps the KL coefficient fixed at kl_coef={reward_coef}",
                )
        estimator = KL_ESTIMATORS.get(str(name))
        if estimator is None:
            estimator = "k3" if placement == "loss" else "k1"
            self.note(key, "approximated", f"{name}: no ptsdk kl_estimator (k1, k2, k3); imported as {estimator}")
        return {"kl_coef": value, "kl_placement": placement, "kl_estimator": estimator}

    def reward(self) -> dict[str, Any]:
        enabled = self.get("reward_model.enable", False, field="method.reward_model") is True
        enabled = self.get("reward.reward_model.enable", False, field="method.reward_model") is True or enabled
        path = self.get("reward_model.model.path", None, field="method.reward_model")
        path = self.get("reward.reward_model.model_path", path, field="method.reward_model")
        if enabled and isinstance(path, str):
            for key in ("reward_model.enable", "reward_model.model.path"):
                if key in self.values:
                    self.note(
                        key,
                        "approximated",
                        f"imported as method.reward_model={path}; ptsdk's translation writes vERL 0.9.1's "
                        "reward.reward_model.enable / reward.reward_model.model_path",
                    )
            loop = self.get("reward_model.use_reward_loop", None, field="method.reward_model")
            if loop is not None:
                self.note(
                    "reward_model.use_reward_loop",
                    "dropped" if loop is True else "approximated",
                    f"{loop}: vERL 0.9.1 has no such key; ptsdk serves the reward model with vERL's reward loop "
                    "(reward.reward_model)",
                )
            return {"reward_model": path}
        fn = self.get("reward.custom_reward_function.path", None, field="method.rewards")
        fn = self.get("custom_reward_function.path", fn, field="method.rewards")
        if fn:
            for key in ("reward.custom_reward_function.path", "custom_reward_function.path"):
                if key in self.values:
                    self.note(
                        key,
                        "dropped",
                        f"{fn}: a vERL compute_score(data_source, solution_str, ground_truth, extra_info) is not a "
                        f"ptsdk reward fn(prompts, completions, **columns); write one in {REWARD_PLACEHOLDER}",
                    )
        self.notes.append(
            Note(
                "method.rewards",
                "defaulted",
                f"{REWARD_PLACEHOLDER}: the script scores with vERL's built-in rule for each row's data_source "
                "(e.g. gsm8k, math), which ptsdk cannot call; write that reward as "
                "compute_score(prompts, completions, **columns) in rewards.py next to the job",
            )
        )
        return {"rewards": [REWARD_PLACEHOLDER]}

    def model(self, p: str, job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        path = self.get(f"{p}.path", None, field="model.name_or_path")
        if not isinstance(path, str) or not path:
            raise PtsdkError(f"{self.source}: {p}.path is not set; vERL needs the model to train")
        model: dict[str, Any] = {"name_or_path": path}
        trust = self.get(f"{p}.trust_remote_code", None, field="model.trust_remote_code")
        if trust is not None:
            model["trust_remote_code"] = trust is True
        attn = self.get(f"{p}.override_config.attn_implementation", None, field="model.attn_implementation")
        if attn in ("eager", "sdpa", "flash_attention_2", "flash_attention_3"):
            model["attn_implementation"] = attn
        dtype = self.get(f"{p}.torch_dtype", None, field="model.dtype")  # older vERL's key for the weights' dtype
        if dtype in ("float32", "bfloat16", "float16"):
            model["dtype"] = dtype
            self.note(
                f"{p}.torch_dtype",
                "approximated",
                f"{dtype} imported as model.dtype; vERL 0.9.1 has no torch_dtype here: ptsdk sets the engine's "
                "model_dtype from model.dtype",
            )
        rank = self.number(f"{p}.lora_rank", 0, field="adapter.r")
        if rank <= 0:
            return model, {"type": "full"}
        adapter: dict[str, Any] = {"type": "lora", "r": rank, "dropout": 0.0}
        adapter["alpha"] = self.number(f"{p}.lora_alpha", 16, field="adapter.alpha")
        targets = self.get(f"{p}.target_modules", "all-linear", field="adapter.target_modules")
        adapter["target_modules"] = targets if isinstance(targets, (str, list)) else "all-linear"
        init = self.get(f"{p}.lora_adapter_path", None, field="adapter.init_path")
        if isinstance(init, str) and init:
            adapter["init_path"] = init
        return model, adapter

    def data(self, job: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for split, key in (("train", "data.train_files"), ("eval", "data.val_files")):
            value = self.get(key, None, field=f"data.{split}.path")
            files = value if isinstance(value, list) else [value] if value else []
            if not files:
                continue
            data[split] = {"path": str(files[0])}
            if len(files) > 1:
                self.note(key, "approximated", f"ptsdk reads one file per split: {files[0]} (of {len(files)})")
            for k, field in (("data.train_max_samples", "train"), ("data.val_max_samples", "eval")):
                n = self.values.get(k)
                if field == split and isinstance(n, int) and n > 0:
                    self.used[k] = f"data.{split}.max_samples"
                    data[split]["max_samples"] = n
        if "train" not in data:
            raise PtsdkError(f"{self.source}: data.train_files is not set; vERL needs training data")
        # vERL reads messages (SFT) / prompts (RL) from this column; ptsdk's conversion reads the job's column and
        # always writes vERL's default name. vERL has no setting for message keys or role names (role/content only).
        if self.entry == "sft":
            data["format"] = "messages"  # vERL's SFT dataset (MultiTurnSFTDataset) reads chat messages only
        key, canonical = ("data.messages_key", "messages") if self.entry == "sft" else ("data.prompt_key", "prompt")
        column = self.get(key, canonical, field=f"data.columns.{canonical}")
        if isinstance(column, str) and column and column != canonical:
            data["columns"] = {canonical: column}
            self.note(
                key,
                "set",
                f"{column!r} imported as data.columns.{canonical}: ptsdk's conversion reads that column and writes "
                f"vERL's parquet with a {canonical!r} column (data.{key.split('.')[1]}={canonical})",
            )
        elif key in self.values and self.entry == "sft":
            self.note(key, "dropped", f"{column!r}: vERL's default, the column ptsdk's conversion writes")
        if self.entry == "sft":
            data["max_length"] = self.number("data.max_length", 1024, field="data.max_length")
        else:  # vERL bounds prompts and responses separately; the job's max_length must hold both
            data["max_length"] = job["method"]["max_prompt_length"] + job["method"]["max_completion_length"]
        if self.entry == "rl" and self.get("data.filter_overlong_prompts", False, field="data.truncation") is True:
            data["truncation"] = "drop"  # vERL drops prompts longer than data.max_prompt_length
        truncation = self.get("data.truncation", "error", field="data.truncation")
        expected = "right" if self.entry == "sft" else "left"
        what = "sequences at the end" if self.entry == "sft" else "prompts at the start"
        if truncation != expected:
            self.note(
                "data.truncation",
                "approximated",
                f"{truncation}: ptsdk truncates long {what} (data.truncation={expected}) instead",
            )
        return data

    def training(self, job: dict[str, Any], optim: str, world: int) -> dict[str, Any]:
        t: dict[str, Any] = {}
        rl = self.entry == "rl"
        if rl:
            n = job["method"]["num_generations"]
            prompts = self.number("data.train_batch_size", 1024, field="training.global_batch_size")
            mini = self.number(f"{A}.ppo_mini_batch_size", 256, field="training.global_batch_size")
            micro = self.number(f"{A}.ppo_micro_batch_size_per_gpu", 1, field="training.micro_batch_size")
            gbs = mini * n
            if prompts != mini and mini > 0 and prompts % mini == 0:
                job["method"]["rollout_batch_size"] = prompts
                self.used["data.train_batch_size"] = "method.rollout_batch_size"
            elif prompts != mini:
                self.note(
                    "data.train_batch_size",
                    "approximated",
                    f"{prompts} prompts per rollout batch is not a multiple of {mini} per optimizer step: ptsdk "
                    f"takes one optimizer step per rollout batch of global_batch_size={gbs} completions "
                    f"({mini} prompts x {n})",
                )
            epochs = self.number(f"{A}.ppo_epochs", 1, field="method.epochs_per_rollout")
            job["method"]["epochs_per_rollout"] = max(epochs, 1)
            dynamic, budget, budget_default = f"{A}.use_dynamic_bsz", f"{A}.ppo_max_token_len_per_gpu", 16384
        else:
            gbs = self.number("data.train_batch_size", 256, field="training.global_batch_size")
            micro = self.number("data.micro_batch_size_per_gpu", 4, field="training.micro_batch_size")
            dynamic, budget, budget_default = "data.use_dynamic_bsz", "data.max_token_len_per_gpu", 8192
        if self.get(dynamic, not rl, field="training.max_tokens_per_micro_batch") is True:
            t["max_tokens_per_micro_batch"] = self.number(
                budget, budget_default, field="training.max_tokens_per_micro_batch"
            )
        padding_free = [
            key
            for key in (
                (f"{M}.use_remove_padding", "critic.model.use_remove_padding") if rl else ("model.use_remove_padding",)
            )
            if self.get(key, None, field="training.padding_free") is not None
        ]
        if any(self.values[key] is True for key in padding_free):
            t["padding_free"] = True
        for key in padding_free:
            if self.values[key] is not True:
                self.note(
                    key,
                    "approximated",
                    f"{self.values[key]!r}: ptsdk's padding_free: false leaves vERL's own default "
                    "(use_remove_padding: true) in place",
                )
        micro = max(micro, 1)
        if gbs % world == 0 and gbs % (micro * world):
            fit = max(d for d in range(1, micro + 1) if (gbs // world) % d == 0)
            key = f"{A}.ppo_micro_batch_size_per_gpu" if rl else "data.micro_batch_size_per_gpu"
            self.note(
                key,
                "approximated",
                f"{micro} per GPU does not divide {gbs} sequences over {world} GPUs; micro_batch_size={fit}",
            )
            micro = fit
        t["global_batch_size"], t["micro_batch_size"] = gbs, micro
        t["learning_rate"] = self.number(
            f"{optim}.lr", 1e-6 if rl else 1e-3, field="training.learning_rate", kind=float
        )
        t["weight_decay"] = self.number(f"{optim}.weight_decay", 0.01, field="training.weight_decay", kind=float)
        clip = self.number(f"{optim}.clip_grad", 1.0, field="training.max_grad_norm", kind=float)
        t["max_grad_norm"] = self.number(f"{A}.grad_clip", clip, field="training.max_grad_norm", kind=float)
        steps = self.get("trainer.total_training_steps", None, field="training.max_steps")
        epochs = self.number("trainer.total_epochs", 30 if rl else 4, field="training.epochs")
        spr = self.steps_per_rollout(job, gbs) if rl else 1
        if isinstance(steps, int) and steps > 0:
            t["max_steps"] = steps * spr  # vERL counts rollouts; ptsdk optimizer steps
            if "trainer.total_epochs" in self.values:
                self.note(
                    "trainer.total_epochs",
                    "approximated",
                    f"{epochs}: vERL stops at total_training_steps or total_epochs, whichever comes first; ptsdk "
                    f"runs training.max_steps={steps}",
                )
        else:
            t["epochs"] = epochs
        ratio = self.number(f"{optim}.lr_warmup_steps_ratio", 0.0, field="training.warmup_ratio", kind=float)
        warm = self.get(f"{optim}.lr_warmup_steps", -1, field="training.warmup_ratio")
        if isinstance(warm, int) and warm > 0:
            if "max_steps" in t:
                ratio = warm / t["max_steps"]
            else:
                self.note(f"{optim}.lr_warmup_steps", "dropped", "warmup in steps needs training.max_steps")
        t["warmup_ratio"] = ratio
        sched = self.get(f"{optim}.lr_scheduler_type", None, field="training.lr_scheduler")
        sched = sched or self.get(f"{optim}.warmup_style", "constant", field="training.lr_scheduler")
        if sched == "cosine":
            t["lr_scheduler"] = "cosine"
            low = self.get(f"{optim}.min_lr_ratio", 0.0, field="training.min_lr_ratio")
            if isinstance(low, (int, float)) and not isinstance(low, bool) and 0 <= low < 1:
                t["min_lr_ratio"] = float(low)
            elif low is not None:
                self.note(f"{optim}.min_lr_ratio", "approximated", f"{low}: ptsdk's cosine schedule decays to 0")
        else:
            if sched != "constant":
                self.note(f"{optim}.lr_scheduler_type", "approximated", f"{sched}: imported as constant")
            t["lr_scheduler"] = "constant_with_warmup" if ratio else "constant"
        betas = self.get(f"{optim}.betas", None, field="training.adam_beta1")
        if (
            isinstance(betas, list)
            and len(betas) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)
        ):
            t["adam_beta1"], t["adam_beta2"] = float(betas[0]), float(betas[1])
        elif betas is not None:
            self.note(f"{optim}.betas", "dropped", f"{betas}: not two Adam betas in [0, 1); (0.9, 0.999) assumed")
        dtype = self.get(
            f"{'engine' if not rl else A + '.fsdp_config'}.mixed_precision.param_dtype",
            "bf16",
            field="training.precision",
        )
        t["precision"] = DTYPES.get(str(dtype), "bf16")
        p = "model" if not rl else M
        t["gradient_checkpointing"] = self.get(f"{p}.enable_gradient_checkpointing", True, field="training") is True
        seed_key = "trainer.seed" if not rl else f"{A}.data_loader_seed"
        seed = self.number(seed_key, 1 if not rl else 42, field="training.seed")
        t["seed"] = seed
        if rl:
            shuffle = self.get("data.shuffle", True, field="training.shuffle")
            t["shuffle"] = shuffle is not False
        return t

    def steps_per_rollout(self, job: dict[str, Any], gbs: int | None = None) -> int:
        """ptsdk optimizer steps per vERL step (rollout): mini-batches per rollout x PPO epochs."""
        m = job["method"]
        gbs = job["training"]["global_batch_size"] if gbs is None else gbs
        n = max(m.get("num_generations", 1), 1)
        prompts = max(gbs // n, 1)
        return max(m.get("rollout_batch_size", prompts) // prompts, 1) * max(m.get("epochs_per_rollout", 1), 1)

    def output(self, job: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        spr = self.steps_per_rollout(job) if self.entry == "rl" else 1
        for key, field in (("trainer.save_freq", "save_steps"), ("trainer.test_freq", "eval_steps")):
            value = self.get(key, -1, field=f"output.{field}")
            per_epoch = "saves_per_epoch" if field == "save_steps" else "evals_per_epoch"
            has_eval = "eval" in job["data"] or field == "save_steps"
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                out[field] = value * spr  # vERL counts rollouts; ptsdk optimizer steps
            elif value == "after_each_epoch" and self.entry == "sft" and has_eval:
                out[per_epoch] = 1  # vERL's SFT trainer: its own steps per epoch
            elif value not in (-1, 0, None):
                self.note(key, "dropped", f"{value}: ptsdk counts {field} in optimizer steps; not set")
        keep_key = "trainer.max_ckpt_to_keep" if self.entry == "sft" else "trainer.max_actor_ckpt_to_keep"
        keep = self.get(keep_key, None, field="output.save_total_limit")
        out["save_total_limit"] = keep if isinstance(keep, int) and keep > 0 else None
        loggers = self.get("trainer.logger", ["console", "wandb"], field="output.report_to")
        loggers = loggers if isinstance(loggers, list) else [loggers]
        out["report_to"] = [x for x in loggers if x in REPORTERS]
        return out

    def rollout(self, world: int) -> dict[str, Any]:
        r: dict[str, Any] = {"colocate": True}
        r["engine"] = self.get(f"{R}.name", "vllm", field="rollout.engine")
        tp = self.number(f"{R}.tensor_model_parallel_size", 2, field="rollout.tensor_parallel_size")
        if world % tp:
            self.note(f"{R}.tensor_model_parallel_size", "approximated", f"{tp} does not divide {world} GPUs; 1")
            tp = 1
        r["tensor_parallel_size"] = tp
        r["gpu_memory_utilization"] = self.number(
            f"{R}.gpu_memory_utilization", 0.5, field="rollout.gpu_memory_utilization", kind=float
        )
        return r

    # what the job cannot hold --------------------------------------------------------------

    def rest(self, job: dict[str, Any]) -> dict[str, Any]:
        """backend_options.verl for every setting left over that ptsdk sets nothing for; a note for every
        setting that does not come back from the translation as written."""
        ours = self.translated(job)
        owned = self.backend.passthrough_owned
        options: dict[str, Any] = {}
        for written in self.raw:
            key = written.lstrip("+~")
            value = self.values.get(key)
            if key in ours and same(ours[key], value) and not written.startswith("~"):
                continue
            if key in self.explained:
                continue
            back = f"ptsdk's translation sets {ours[key]!r}" if key in ours else "ptsdk's translation does not set it"
            if key in self.used:
                self.note(key, "approximated", f"{value!r} imported as {self.used[key]}; {back}")
                continue
            if key in ("engine", "optim") and "." not in written:
                kind = "dropped" if value == "fsdp" else "approximated"
                self.note(key, kind, f"{value!r}: vERL's config group; ptsdk's translation uses its default, fsdp")
                continue
            if key in ENVIRONMENT:
                self.note(key, "dropped", f"{value!r}: {ENVIRONMENT[key]}")
                continue
            owner = next(
                (f for pattern, f in owned.items() if fnmatchcase(key, pattern) or key.startswith(pattern + ".")), None
            )
            clash = key in ours or any(k.startswith(key + ".") or key.startswith(k + ".") for k in ours)
            if owner is not None or clash:
                if owner:
                    why = f"the job's {owner} owns it; {back}"
                elif key in ours:
                    why = f"ptsdk sets it from the job; {back}"
                else:
                    below = sorted(k for k in ours if k.startswith(key + "."))
                    above = [k for k in ours if key.startswith(k + ".")]
                    why = f"ptsdk sets {', '.join(below[:3]) or ', '.join(above)} from the job"
                self.note(key, "dropped", f"{value!r}: {why}")
                continue
            options[written] = value
            self.note(key, "passthrough", f"{value!r} to backend_options.verl (no job field holds it)")
        return options

    def translated(self, job: dict[str, Any]) -> dict[str, Any]:
        """What ptsdk's translation of the job sets (bare native key -> value), without backend_options."""
        from ptsdk.spec import validate_job

        try:
            plan = self.backend.translate(validate_job(job, source=str(self.source)))
        except PtsdkError:
            return {}
        out: dict[str, Any] = {}
        for arg in plan.args:
            key, _, value = arg.partition("=")
            parsed = parse_value(value)
            key = key.lstrip("+~")
            if isinstance(parsed, str) and parsed.startswith("{"):
                out[key] = parsed
                for sub, leaf in _mapping_leaves(value):
                    out[f"{key}.{sub}"] = leaf
            else:
                out[key] = parsed
        return out


def _mapping_leaves(text: str) -> list[tuple[str, Any]]:
    inner = text.strip()[1:-1]
    out = []
    for part in _split_list(inner):
        k, _, v = part.partition(":")
        out.append((k.strip(), parse_value(v)))
    return out
