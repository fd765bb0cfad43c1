"""The backend kit: what every backend needs and calls instead of copying.

- :func:`launcher_for`: the job's processes and nodes as a :class:`Launcher`.
- :func:`common_env`: the environment every framework process gets.
- :func:`tracking_env`, :func:`tracking_files`, :func:`tracking_notes`: output.report_to's trackers kept local,
  under the run directory's tracking/, with the job record they are given (:func:`tracking_record`).
- :func:`apply_passthrough` (a config mapping), :func:`apply_override_passthrough` (Hydra overrides),
  :func:`apply_flag_passthrough` (command-line flags, :func:`parse_flags`): ``backend_options.<backend>``
  merged into a native config without replacing what ptsdk sets (unless ``ptsdk_override`` names it),
  with notes; :func:`passthrough_problems` reports the refusals for ``static_problems``.
- :data:`HF_OPTIMIZERS`: ptsdk optimizer names in transformers' ``optim`` vocabulary; :func:`hf_training_args`:
  the optimization keys every transformers-Trainer runner writes alike.
- :class:`Effective`: the settings a framework will really use, in ptsdk's units, for parity tables;
  the part every backend shares is computed from the job once.
- :func:`runtime_file`: ptsdk_runtime.py for the run directory (data fingerprint, JSONL metrics callback).
- :class:`TrainerBackend`: a base for frameworks built on the transformers Trainer (metrics from the
  JSONL callback's log, the trained model under model/).
- :func:`local_inputs`, :func:`chat_template_sha`, :func:`model_dir_problems`, :func:`hf_log_records`
  (:func:`one_stream`: one record per step across resumes), :func:`last_checkpoint`, :func:`no_checkpoint_error`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ptsdk.errors import PtsdkError
from ptsdk.plugins import runtime
from ptsdk.plugins.backend import PYTHON, Backend, Command, Launcher, LauncherKind, Note, PlanFile
from ptsdk.plugins.passthrough import (  # the passthrough, re-exported with the rest of the kit
    PTSDK_OVERRIDE as PTSDK_OVERRIDE,
    PassthroughError as PassthroughError,
    SpecOwned as SpecOwned,
    apply_flag_passthrough as apply_flag_passthrough,
    apply_override_passthrough as apply_override_passthrough,
    apply_passthrough as apply_passthrough,
    parse_flags as parse_flags,
    passthrough_problems as passthrough_problems,
)

if TYPE_CHECKING:
    from ptsdk.metrics import MetricRecord
    from ptsdk.spec import Job

#: ptsdk's ``training.optimizer`` -> transformers' ``optim`` (``OptimizerNames``, transformers 5.24
#: training_args.py:113-158; handlers in trainer_optimizer.py:603-622). ``adamw`` is torch's AdamW without
#: ``fused`` (adamw_torch), ``adamw_fused`` the one transformers defaults to for torch >= 2.8
#: (training_args.py:806-811), which only adds ``fused=True`` (trainer_optimizer.py:201-208); the 8-bit and
#: paged ones are bitsandbytes' AdamW (trainer_optimizer.py:245-300: "paged" in the name pages, "8bit" 8 bits).
HF_OPTIMIZERS = {
    "adamw": "adamw_torch",
    "adamw_fused": "adamw_torch_fused",
    "adamw_8bit": "adamw_bnb_8bit",
    "paged_adamw_8bit": "paged_adamw_8bit",
    "paged_adamw_32bit": "paged_adamw_32bit",
    "sgd": "sgd",
    "adafactor": "adafactor",
    "rmsprop": "rmsprop",
}


def hf_training_args(job: Job) -> dict[str, Any]:
    """The job's batch, schedule, optimizer, precision, seeds and run length in transformers' TrainingArguments
    names, as every runner built on its Trainer writes them (TRL, Unsloth); each adds its own keys."""
    t = job.training
    out: dict[str, Any] = {
        "per_device_train_batch_size": t.micro_batch_size,
        "gradient_accumulation_steps": job.gradient_accumulation_steps,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler,
        # Whole steps when the run length is known; else a ratio (a float below 1), which the Trainer rounds up.
        "warmup_steps": job.warmup_steps if job.warmup_steps is not None else t.warmup_ratio,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "optim": HF_OPTIMIZERS[t.optimizer],
        "bf16": t.precision == "bf16",
        "fp16": t.precision == "fp16",
        "seed": t.seed,
        "data_seed": t.seed,
    }
    if t.max_steps is not None:
        out["max_steps"] = t.max_steps
    else:
        out["num_train_epochs"] = t.epochs
    return out


def launcher_for(job: Job, kind: LauncherKind = "torchrun") -> Launcher:
    """A `kind` launcher for the job's processes; plain python for one process (torchrun/deepspeed)."""
    d = job.distributed
    if kind in ("torchrun", "deepspeed") and d.world_size == 1:
        return Launcher("python")
    return Launcher(
        kind,
        nproc_per_node=d.gpus_per_node,
        nnodes=d.nodes,
        master_addr=d.master_addr,
        master_port=d.master_port,
        rdzv_id=job.name or "ptsdk",
    )


def rendezvous_problems(job: Job, launcher: str) -> list[str]:
    """Multi-node runs that `launcher` (torchrun, deepspeed) starts on every node need a rendezvous host; a
    Ray-launched framework finds its nodes through the cluster and does not call this."""
    d = job.distributed
    if d.nodes > 1 and not d.master_addr:
        return [
            f"distributed.master_addr: {d.nodes} nodes started by {launcher} meet at a rendezvous host; set it to "
            "the first node's address (e.g. $MASTER_ADDR, or the first host of $SLURM_NODELIST)"
        ]
    return []


def common_env(job: Job) -> dict[str, str]:
    """Offline hub, quiet tokenizers and datasets, and no GPU visible for a CPU job."""
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    if job.distributed.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


# --- Experiment trackers (output.report_to): every one writes under the run directory's tracking/ ------------

#: Where each tracker writes, relative to the run directory (every framework starts there).
TENSORBOARD_DIR = f"{runtime.TRACKING_DIR}/tensorboard"
#: MLflow's local file store (mlflow-skinny has no database store); MLflow 3 keeps the file store in
#: maintenance mode and refuses it unless MLFLOW_ALLOW_FILE_STORE is true (mlflow/store/tracking/file_store.py).
MLFLOW_STORE = f"{runtime.TRACKING_DIR}/mlruns"
MLFLOW_URI = f"file:{MLFLOW_STORE}"
#: W&B's offline runs land in WANDB_DIR/wandb/offline-run-*; its config, cache, staging and artifacts beside them.
WANDB_DIR = runtime.TRACKING_DIR
WANDB_FILES = f"{runtime.TRACKING_DIR}/wandb"
TRACKIO_DIR = f"{runtime.TRACKING_DIR}/trackio"


def tracking_record(job: Job, backend: str) -> dict[str, Any]:
    """What the trackers record of ptsdk (runtime.TRACKING_JOB): the job as JSON, its name, the SHA-256 of that JSON
    (16 hex digits) and the backend."""
    data = job.model_dump(mode="json")
    sha = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    return {"job": data, "name": job.name or "job", "sha256": sha, "backend": backend}


def tracking_files(job: Job, backend: str) -> list[PlanFile]:
    """The job record the trackers are given (runtime.TRACKING_JOB), for a job with trackers; none otherwise."""
    if not job.output.report_to:
        return []
    text = json.dumps(tracking_record(job, backend), indent=1, sort_keys=True) + "\n"
    return [PlanFile(runtime.TRACKING_JOB, content=text)]


def tracking_notes(job: Job, through: dict[str, str], recorded: str) -> list[Note]:
    """One note per tracker of output.report_to: where it writes, `through` which native settings (tracker ->
    words), and what it `recorded` of the run (the same words for every tracker of the backend). A tracker the
    backend does not run (not in `through`; the matrix refuses such a job before it is translated) is dropped."""
    where = {
        "tensorboard": f"event files in {TENSORBOARD_DIR}/",
        "wandb": f"an offline run in {WANDB_DIR}/wandb/offline-run-* (`wandb sync` uploads it later)",
        "mlflow": f"the local file store {MLFLOW_STORE}/ (read it with MLFLOW_ALLOW_FILE_STORE=true)",
        "trackio": f"a local database in {TRACKIO_DIR}/",
    }
    return [
        Note("output.report_to", "set", f"{r}: {where[r]}, through {through[r]}; {recorded}")
        if r in through
        else Note("output.report_to", "dropped", f"{r}: not run by this backend")
        for r in job.output.report_to
    ]


def tracking_env(job: Job, backend: str, *, tensorboard_var: str | None = "TENSORBOARD_LOGGING_DIR") -> dict[str, str]:
    """The environment that keeps each tracker of output.report_to local and inside the run directory: TensorBoard's
    folder (`tensorboard_var`: transformers' TENSORBOARD_LOGGING_DIR, vERL's TENSORBOARD_DIR; None when the
    framework takes it as a setting); W&B offline, project the job's name, tagged ptsdk and ptsdk-job-<sha256>;
    MLflow's file store, experiment the job's name, the run tagged ptsdk.job, ptsdk.job_sha256 and ptsdk.backend
    (MLFLOW_RUN_CONTEXT: mlflow's own tags for every run it starts), telemetry off (it writes under ~); Trackio's
    database. The run's own name comes from the framework's settings or ptsdk_runtime.tracking_callback."""
    report, record = job.output.report_to, tracking_record(job, backend)
    env: dict[str, str] = {}
    if "tensorboard" in report and tensorboard_var:
        env[tensorboard_var] = TENSORBOARD_DIR
    if "wandb" in report:
        env.update(
            WANDB_MODE="offline",
            WANDB_DIR=WANDB_DIR,
            WANDB_PROJECT=record["name"],
            WANDB_TAGS=f"ptsdk,ptsdk-job-{record['sha256']}",
            WANDB_CONFIG_DIR=f"{WANDB_FILES}/config",
            WANDB_CACHE_DIR=f"{WANDB_FILES}/cache",
            WANDB_DATA_DIR=f"{WANDB_FILES}/data",
            WANDB_ARTIFACT_DIR=f"{WANDB_FILES}/artifacts",
        )
    if "mlflow" in report:
        tags = {"ptsdk.job": record["name"], "ptsdk.job_sha256": record["sha256"], "ptsdk.backend": backend}
        env.update(
            MLFLOW_TRACKING_URI=MLFLOW_URI,
            MLFLOW_ALLOW_FILE_STORE="true",
            MLFLOW_EXPERIMENT_NAME=record["name"],
            MLFLOW_RUN_CONTEXT=json.dumps(tags, sort_keys=True),
            MLFLOW_DISABLE_TELEMETRY="true",
        )
    if "trackio" in report:
        env["TRACKIO_DIR"] = TRACKIO_DIR
    return env


def logical_lines(text: str) -> list[tuple[int, str]]:
    """A shell script's lines with backslash continuations joined, each with the number of its first line
    (what the importers of command-line frameworks read a launch from). A line ending in an escaped
    backslash (``\\\\``) does not continue."""
    out: list[tuple[int, str]] = []
    parts: list[str] = []
    start = 1
    for number, raw in enumerate(text.splitlines(), start=1):
        if not parts:
            start = number
        stripped = raw.rstrip()
        if stripped.endswith("\\") and not stripped.endswith("\\\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(raw)
        out.append((start, " ".join(parts)))
        parts = []
    if parts:
        out.append((start, " ".join(parts)))
    return out


def runtime_file() -> PlanFile:
    return PlanFile(f"{runtime.MODULE}.py", copy_from=runtime.__file__)


@dataclass
class Effective:
    """What a framework will really use, in ptsdk's units. Build it with :meth:`from_job`: the
    job-derived part (batch in sequences, world size, device, seed, precision, chat template) is
    shared; each backend supplies the values its framework decides and, in ``sources``, why a value
    differs from what another framework would use."""

    micro_batch: int
    gradient_accumulation: int
    learning_rate: float
    lr_scheduler: str
    warmup: float | int | None
    max_length: int | None
    truncation: str
    packing: bool
    loss_mask: str
    data_order: str
    optimizer: str
    weight_decay: float
    max_grad_norm: float
    adapter_init: str | None
    loss_normalization: str
    global_batch_sequences: int = 0
    world_size: int = 1
    device: str = "gpu"
    seed: int = 0
    precision: str = "fp32"
    chat_template_sha: str | None = None
    load_dtype: str | None = None
    attn_implementation: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_job(cls, job: Job, **framework: Any) -> Effective:
        t, d = job.training, job.distributed
        common = {
            "global_batch_sequences": t.global_batch_size,
            "world_size": d.world_size,
            "device": d.device,
            "seed": t.seed,
            "precision": t.precision,
            "chat_template_sha": chat_template_sha(job),
        }
        return cls(**{**common, **framework})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        sources = data.pop("sources")
        return {**data, **extra, "sources": sources}


def data_order(backend: str, job: Job, shuffled: bool) -> str:
    return f"shuffled by {backend} (seed {job.training.seed})" if shuffled else "file order"


# --- What ptsdk owns of the optimization (the same on every backend that applies it) -----------------------

#: The parity-table wording of each training.loss_normalization, shared by every backend.
LOSS_NORMALIZATION = {"tokens": "tokens across the optimizer step", "micro_batch": "per micro-batch mean"}
SEQUENCE_MEAN = "sequences (mean over the step's examples)"
OWNED_ORDER_SOURCE = (
    "ptsdk's seeded permutation per epoch (ptsdk_runtime.epoch_order, written to logs/data_order.jsonl), read by "
    "the framework's trainer in place of its own sampler"
)
OWNED_NORMALIZATION_SOURCE = "ptsdk's training.loss_normalization, applied by ptsdk_runtime.own_the_optimization"
OWNED_ADAPTER_SOURCE = (
    "ptsdk makes the starting LoRA adapter from the job's seed before training (ptsdk_runtime.make_start_adapter, "
    "start_adapter/ in the run directory) and the framework loads it"
)


def hf_loss_normalization(job: Job) -> str:
    """The parity value of a Hugging Face trainer's loss normalization (TRL's, and Axolotl's through TRL): SFT's
    is the job's (ptsdk_runtime.own_the_optimization applies it); preference losses average sequences."""
    if job.method.name == "sft":
        return LOSS_NORMALIZATION[job.training.loss_normalization]
    return SEQUENCE_MEAN if job.method.family in ("preference", "unpaired_preference") else LOSS_NORMALIZATION["tokens"]


def owns_order(job: Job) -> bool:
    """Whether ptsdk's seeded per-epoch order replaces the framework's sampler: a shuffled, unpacked SFT or paired
    preference job (KTO pairs neighbouring rows and online RL repeats prompts, each in its trainer's own sampler;
    packing orders packed blocks, not rows)."""
    t = job.training
    return t.shuffle and not t.packing and job.method.family in ("sft", "preference")


def owned_order(job: Job) -> str:
    """The parity-table value of ptsdk's order."""
    return f"ptsdk's order (seed {job.training.seed}, per epoch)"


def repeat_sampler_order(job: Job) -> str:
    """The parity-table value of TRL's GRPO/RLOO RepeatSampler order (TRL and Axolotl, which runs TRL's)."""
    return f"TRL's RepeatSampler (seed {job.training.seed})"


def owns_start_adapter(job: Job) -> bool:
    """Whether ptsdk makes the starting adapter: a LoRA/QLoRA job that names none (adapter.init_path)."""
    return job.adapter.type != "full" and not getattr(job.adapter, "init_path", None)


def owned_adapter(job: Job) -> str:
    return f"ptsdk's seeded adapter (seed {job.training.seed})"


def start_adapter_command(job: Job) -> Command:
    """The plan command that makes the job's starting adapter in the run directory (runtime.START_ADAPTER),
    in the backend's environment, skipped when it is there already (a resumed run)."""
    a = job.adapter
    targets = a.target_modules if isinstance(a.target_modules, str) else ",".join(a.target_modules)  # type: ignore[union-attr]
    argv = [PYTHON, f"{runtime.MODULE}.py", "start-adapter", job.model.name_or_path, runtime.START_ADAPTER]
    argv += [str(job.training.seed), str(a.r), str(a.alpha), str(a.dropout), targets]  # type: ignore[union-attr]
    return Command(argv, common_env(job), description="ptsdk's starting adapter, from the job's seed")


def owned_env(job: Job) -> dict[str, str]:
    """The environment that tells ptsdk_runtime.own_the_optimization what to apply in a Hugging Face trainer:
    ptsdk's seeded order (owns_order) or file order (training.shuffle: false), the seed the training starts
    from, the warmup, and SFT's loss normalization."""
    t = job.training
    warmup = job.warmup_steps if job.warmup_steps is not None else t.warmup_ratio
    env = {runtime.SEED_ENV: str(t.seed), runtime.WARMUP_ENV: str(warmup)}
    if not t.shuffle:
        env[runtime.ORDER_ENV] = "file"
    elif owns_order(job):
        env[runtime.ORDER_ENV] = f"seeded:{t.seed}"
    if job.method.name == "sft":
        env[runtime.LOSS_NORMALIZATION_ENV] = job.training.loss_normalization
    return env


def local_inputs(job: Job) -> list[str]:
    """Local paths a job reads (data, model, reward files, chat template): what a container must see."""
    paths = [
        job.data.train.path,
        job.data.eval.path if job.data.eval else None,
        job.model.name_or_path,
        job.model.chat_template,
        getattr(job.adapter, "init_path", None),
        getattr(job.method, "reward_model", None),
        *[r.rsplit(":", 1)[0] for r in getattr(job.method, "rewards", [])],
    ]
    return sorted({p for p in paths if p and p.startswith("/") and Path(p).exists()})


def chat_template_text(job: Job) -> str | None:
    """The chat template in effect when ptsdk can read it here (the job's, or a local model's), else None."""
    text = job.model.chat_template
    if text and text.endswith(".jinja"):
        return Path(text).read_text() if Path(text).is_file() else None
    if text:
        return text
    model = Path(job.model.name_or_path)
    if (model / "chat_template.jinja").is_file():
        return (model / "chat_template.jinja").read_text()
    config = model / "tokenizer_config.json"
    if config.is_file():
        found = json.loads(config.read_text()).get("chat_template")
        return found if isinstance(found, str) else None
    return None


def chat_template_sha(job: Job) -> str | None:
    """Short hash of the chat template in effect: the job's own, else the local tokenizer's (a job's .jinja
    file that cannot be read here is hashed by its path)."""
    text = chat_template_text(job) or job.model.chat_template
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else None


def model_dir_problems(run_dir: Path) -> list[str]:
    """The trained weights every backend saves under run_dir/model."""
    model = run_dir / "model"
    found = list(model.glob("*.safetensors")) if model.is_dir() else []
    return [] if found else [f"no trained weights in {model}"]


def hf_log_records(path: Path) -> Iterator[MetricRecord]:
    """Normalize the JSONL of transformers `on_log` dicts (plus step, epoch, wall_time_s) written by
    :func:`ptsdk_runtime.jsonl_metrics_callback`: train, eval and final-summary records, as one stream
    across resumes (see :func:`one_stream`); a last line cut short by a killed writer is left out."""
    from ptsdk.metrics import MetricRecord

    if not path.exists():
        return
    last_tokens = last_time = None
    known = {"loss", "learning_rate", "grad_norm", "reward", "reward_std", "num_tokens"}
    for raw in one_stream(path.read_text().splitlines()):
        step = int(raw.pop("step"))
        epoch, wall = raw.pop("epoch", None), raw.pop("wall_time_s", None)
        if "train_runtime" in raw:
            yield MetricRecord(
                step=step,
                kind="summary",
                epoch=epoch,
                wall_time_s=raw.get("train_runtime"),
                loss=raw.get("train_loss"),
                extra=raw,
            )
            continue
        kind: Literal["train", "eval"] = "eval" if any(k.startswith("eval_") for k in raw) else "train"
        prefix = "eval_" if kind == "eval" else ""

        def get(key: str, raw: dict[str, Any] = raw, prefix: str = prefix) -> Any:
            return raw.get(prefix + key)

        tokens = get("num_tokens")
        rate = None
        if kind == "train" and tokens is not None and wall is not None:
            if last_tokens is not None and last_time is not None and wall > last_time:
                rate = (tokens - last_tokens) / (wall - last_time)
            last_tokens, last_time = tokens, wall
        yield MetricRecord(
            step=step,
            kind=kind,
            epoch=epoch,
            tokens_seen=int(tokens) if tokens is not None else None,
            loss=get("loss"),
            learning_rate=raw.get("learning_rate"),
            grad_norm=raw.get("grad_norm"),
            reward=get("reward"),
            reward_std=get("reward_std"),
            tokens_per_s=rate,
            wall_time_s=wall,
            extra={k: v for k, v in raw.items() if k.removeprefix("eval_") not in known},
        )


def one_stream(lines: list[str]) -> list[dict[str, Any]]:
    """The metrics log's dicts with every step once, whatever attempts wrote it.

    A ``train_begin`` line (a trainer starting, at the step of the checkpoint it resumed from) drops the
    records after that step written before it: the interrupted attempt's steps the resumed one redoes.
    For logs without those lines, a train step that goes back (to or below one already logged) is taken
    as such a restart. A line that is not JSON is left out if it is the last one (a killed writer's)."""
    out: list[dict[str, Any]] = []
    last_train: int | None = None
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines) - 1:
                break
            raise
        step = int(raw.get("step", 0))
        if raw.get("event") == "train_begin":
            out = [r for r in out if int(r["step"]) <= step]
            last_train = step
            continue
        if raw.get("event") is not None:
            continue
        is_train = "train_runtime" not in raw and not any(k.startswith("eval_") for k in raw)
        if is_train:
            if last_train is not None and step <= last_train:
                out = [r for r in out if int(r["step"]) < step]
            last_train = step
        out.append(raw)
    return out


#: Hugging Face Trainer checkpoint folders: checkpoints/checkpoint-N.
CHECKPOINT_PREFIX = "checkpoint-"


def last_checkpoint(folder: Path) -> tuple[int, Path] | None:
    """(step, path) of the last complete Trainer checkpoint under `folder`: the highest checkpoint-N whose
    trainer_state.json was written (the Trainer writes it after the weights, optimizer and RNG states)."""
    found = []
    for path in folder.glob(CHECKPOINT_PREFIX + "*") if folder.is_dir() else []:
        step = path.name[len(CHECKPOINT_PREFIX) :]
        if step.isdigit() and (path / "trainer_state.json").is_file():
            found.append((int(step), path))
    return max(found) if found else None


def no_checkpoint_error(backend: str, job: Job | None, run_dir: Path) -> PtsdkError:
    """`--resume` of a run that saved no checkpoint, said one way for every backend."""
    save_steps = job.output.save_steps if job is not None else None
    why = f"output.save_steps={save_steps}" if save_steps else "output.save_steps is not set"
    return PtsdkError(
        f"--resume {run_dir}: no checkpoint was saved before the run stopped ({why}); "
        f"start it again with `ptsdk run JOB --backend {backend}` (the job is in {run_dir / 'manifest.json'})"
    )


class TrainerBackend(Backend):
    """A framework built on the transformers Trainer: its runner or plugin logs through
    ptsdk_runtime's JSONL callback, it checkpoints under checkpoints/ and saves the trained model or
    adapter under model/."""

    #: Where the Trainer's output_dir (its checkpoint-N folders) is, relative to the run directory.
    checkpoints_dir: ClassVar[str] = "checkpoints"

    def resume_checkpoint(self, run_dir: Path) -> tuple[int, Path] | None:
        """(step, folder) of the checkpoint a resume continues from; None when none was saved."""
        return last_checkpoint(run_dir / self.checkpoints_dir)

    def resume_step(self, run_dir: Path) -> int | None:
        """The optimizer step a resume continues from (recorded in the manifest's attempts)."""
        found = self.resume_checkpoint(run_dir)
        return found[0] if found else None

    def parse_metrics(self, run_dir: Path) -> Iterator[MetricRecord]:
        return hf_log_records(run_dir / runtime.METRICS_LOG)

    def total_steps(self, run_dir: Path) -> int | None:
        """The optimizer steps the Trainer will take (its ``train_begin`` line says), for the live view."""
        path = run_dir / runtime.METRICS_LOG
        total = None
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if '"train_begin"' in line:
                    try:
                        total = int(json.loads(line).get("max_steps") or 0) or total
                    except (ValueError, TypeError, AttributeError):
                        continue
        return total

    def artifacts_problems(self, run_dir: Path) -> list[str]:
        return model_dir_problems(run_dir)


def schema_problems(model: Any, config: Any) -> list[str]:
    """`key.path: problem` for every way `config` breaks a pydantic model (empty: it passes). For a backend that
    checks what it generates against a schema of its framework's written as pydantic models with extra="forbid"
    (a git-only framework's, read from its source at ``Backend.schema_source``). `model` may be the model's
    "module:Name": imported only here, so that registering the backend (which every ptsdk command does) does not
    build the schema's models."""
    import importlib

    from pydantic import ValidationError

    if isinstance(model, str):
        module, _, name = model.partition(":")
        model = getattr(importlib.import_module(module), name)
    try:
        model.model_validate(config)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}" for e in exc.errors()]
    return []
