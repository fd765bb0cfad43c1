"""TorchForge's SFT config, as pydantic models.

TorchForge's SFT app (apps/sft/main.py:74-84 at commit 6e77f0b37596ef4d4f31924fbc46eb77d0c8043d of
github.com/meta-pytorch/torchforge) merges its YAML over ``ForgeJobConfig().to_dict()`` with OmegaConf: a plain
mapping, so a misspelt key is kept and never read. ``ForgeJobConfig`` is torchtitan's (torchtitan 0.2.0, the
version forge's pyproject.toml pins: torchtitan/experiments/forge/job_config.py:27-50); its sections are transcribed
here from torchtitan/config/job_config.py of that release (Job 12-29, Model 91-121, Optimizer 125-156, LRScheduler
160-188, Training 192-263, Parallelism 267-419, Checkpoint 423-583, ActivationCheckpoint 587-633, Compile 637-645,
Comm 757-774), with ``Literal`` types where torchtitan has them. The app's own keys: ``processes`` (popped and
given to ``ForgeActor.options``, src/forge/controller/actor.py:88-96) and ``metric_logging``
(src/forge/observability/metric_actors.py:168-236). Every model forbids unknown keys.
"""

from __future__ import annotations

from typing import Any, Literal

from ptsdk.plugins.kit import schema_problems as kit_schema_problems
from pydantic import BaseModel, ConfigDict

from ptsdk_torchforge.pinned import COMMIT as COMMIT, TORCHTITAN as TORCHTITAN  # the commit the schema was read from


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Job(_Section):
    config_file: str | None = None
    dump_folder: str = "./torchtitan/outputs"
    description: str = "default job"
    print_config: bool = False
    custom_config_module: str = ""


class Model(_Section):
    name: str = "llama3"
    flavor: str = "debugmodel"
    hf_assets_path: str = "./tests/assets/tokenizer"
    tokenizer_path: str | None = None
    converters: list[str] = []
    print_after_conversion: bool = False


class Optimizer(_Section):
    name: str = "AdamW"
    lr: float = 8e-4
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    implementation: Literal["for-loop", "foreach", "fused"] = "fused"
    early_step_in_backward: bool = False


class LRScheduler(_Section):
    warmup_steps: int = 200
    decay_ratio: float | None = None
    decay_type: Literal["linear", "sqrt", "cosine"] = "linear"
    min_lr_factor: float = 0.0


class Training(_Section):
    dataset: str = "c4_test"
    dataset_path: str | None = None
    local_batch_size: int = 8
    global_batch_size: int = -1
    seq_len: int = 2048
    max_norm: float = 1.0
    steps: int = 10000
    enable_cpu_offload: bool = False
    dtype: Literal["bfloat16", "float32"] = "float32"
    mixed_precision_param: Literal["bfloat16", "float32"] = "bfloat16"
    mixed_precision_reduce: Literal["float32"] = "float32"
    gc_freq: int = 50
    gc_debug: bool = False
    seed: int | None = None
    deterministic: bool = False
    debug_moe_force_load_balance: bool = False


class Parallelism(_Section):
    data_parallel_replicate_degree: int = 1
    enable_compiled_autograd: bool = False
    data_parallel_shard_degree: int = -1
    fsdp_reshard_after_forward: Literal["default", "always", "never"] = "default"
    tensor_parallel_degree: int = 1
    disable_loss_parallel: bool = False
    enable_async_tensor_parallel: bool = False
    pipeline_parallel_degree: int = 1
    module_fqns_per_model_part: list[list[str]] | None = None
    pipeline_parallel_first_stage_less_layers: int = 1
    pipeline_parallel_last_stage_less_layers: int = 1
    pipeline_parallel_layers_per_stage: int | None = None
    pipeline_parallel_schedule: str = "1F1B"
    pipeline_parallel_schedule_csv: str | None = ""
    pipeline_parallel_microbatch_size: int = 1
    context_parallel_degree: int = 1
    context_parallel_rotate_method: Literal["allgather", "alltoall"] = "allgather"
    expert_parallel_degree: int = 1
    expert_tensor_parallel_degree: int = 1


class Checkpoint(_Section):
    enable: bool = False
    enable_ft_dataloader_checkpoints: bool = True
    folder: str = "checkpoint"
    interval: int = 500
    initial_load_path: str | None = None
    initial_load_model_only: bool = True
    initial_load_in_hf: bool = False
    initial_load_in_hf_quantized: bool = False
    last_save_model_only: bool = True
    last_save_in_hf: bool = False
    export_dtype: Literal["float16", "bfloat16", "float32"] = "float32"
    async_mode: Literal["disabled", "async", "async_with_pinned_mem"] = "disabled"
    keep_latest_k: int = 10
    load_step: int = -1
    exclude_from_loading: list[str] = []
    enable_first_step_checkpoint: bool = False
    create_seed_checkpoint: bool = False
    load_only: bool = False


class ActivationCheckpoint(_Section):
    mode: Literal["selective", "full", "memory_budget", "none"] = "selective"
    selective_ac_option: str = "2"
    per_op_sac_force_recompute_mm_shapes_by_fqns: list[str] = ["moe.router.gate"]
    early_stop: bool = False
    memory_budget: float = 0.5
    visualize_memory_budget_pareto: bool = False


class Compile(_Section):
    enable: bool = False
    components: list[Literal["model", "loss"]] = ["model", "loss"]
    backend: str = "inductor"


class Comm(_Section):
    init_timeout_seconds: int = 300
    train_timeout_seconds: int = 100
    trace_buf_size: int = 20000
    save_traces_folder: str = "comm_traces"
    save_traces_file_prefix: str = "rank_"


class Processes(_Section):
    procs: int = 1
    hosts: int | None = None
    with_gpus: bool = False
    num_replicas: int = 1
    mesh_name: str | None = None


class SFTConfig(_Section):
    job: Job | None = None
    model: Model | None = None
    optimizer: Optimizer | None = None
    lr_scheduler: LRScheduler | None = None
    training: Training | None = None
    parallelism: Parallelism | None = None
    checkpoint: Checkpoint | None = None
    activation_checkpoint: ActivationCheckpoint | None = None
    compile: Compile | None = None
    quantize: dict[str, Any] | None = None
    comm: Comm | None = None
    memory_estimation: dict[str, Any] | None = None
    processes: Processes
    metric_logging: dict[str, dict[str, Any]] | None = None


def schema_problems(config: dict[str, Any]) -> list[str]:
    """`key.path: problem` for every way `config` breaks the transcribed schema (empty: it passes)."""
    return kit_schema_problems(SFTConfig, config)
