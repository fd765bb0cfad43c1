"""Prime RL's SFT config, as far as ptsdk writes it.

Transcribed from packages/prime-rl-configs/src/prime_rl/configs/sft.py (SFTConfig, SFTDataConfig, LossMaskConfig,
SFTValConfig, SingleNodeDeploymentConfig) and configs/trainer.py (ModelConfig, LoRAConfig, TokenizerConfig, the
optimizer and scheduler unions, CheckpointConfig) at commit 559b44772e471d1538537b8805cc77f3824a5e64 of
github.com/PrimeIntellect-ai/prime-rl. prime-rl-configs is not on PyPI (and needs Python 3.12, verifiers and
renderers), so ptsdk checks its own TOML against this copy. Every model forbids unknown keys, as Prime RL's
BaseConfig does; the sections ptsdk never writes are kept as opaque tables so that a passthrough may name them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ptsdk.plugins.kit import schema_problems as kit_schema_problems
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ptsdk_primerl.pinned import COMMIT as COMMIT  # the commit the schema was read from


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoRAConfig(_Config):  # trainer.py:103-128
    rank: int = Field(16, ge=1)
    alpha: float = Field(32.0, ge=0)
    dropout: float = Field(0.0, ge=0, le=1)
    target_modules: list[str] | None = None
    modules_to_save: list[str] = []


class ModelConfig(_Config):  # shared.py:145-153 (BaseModelConfig) and trainer.py:178-262
    name: str = "Qwen/Qwen3-0.6B"
    trust_remote_code: bool = False
    vlm: dict[str, Any] | None = None
    seq_len: int = 2048
    attn: Literal["flash_attention_2", "flash_attention_3", "flash_attention_4", "auto"] = "auto"
    impl: Literal["hf", "custom", "auto"] = "auto"
    optimization_dtype: Literal["bfloat16", "float32"] = "float32"
    reduce_dtype: Literal["bfloat16", "float32"] = "float32"
    fsdp_cpu_offload: bool = False
    optim_cpu_offload: bool = True
    dp_replicate: int = 1
    cp: int = 1
    lora: LoRAConfig | None = None
    compile: dict[str, Any] | None = None
    ac: dict[str, Any] | None = None
    ac_offloading: dict[str, Any] | None = None


class TokenizerConfig(_Config):  # trainer.py:350-358
    name: str | None = None
    trust_remote_code: bool | None = None
    chat_template: str | None = None


class LossMaskConfig(_Config):  # sft.py:74-85
    system: bool = False
    user: bool = False
    assistant: bool = True
    tool: bool = False


class SFTDataConfig(_Config):  # sft.py:39-58 (BaseDataConfig) and 88-134
    type: Literal["sft"] = "sft"
    batch_size: int = Field(128, ge=1)
    seq_len: int = Field(128, ge=1)
    micro_batch_size: int = Field(1, ge=1)
    num_workers: int = Field(1, ge=1)
    name: str = "PrimeIntellect/Reverse-Text-SFT"
    subsets: list[str] | None = None
    splits: list[str] | None = None
    probabilities: list[float] | None = None
    stopping_strategy: Literal["first_exhausted", "all_exhausted"] = "all_exhausted"
    shuffle: bool = True
    seed: int = 0
    loss_mask: LossMaskConfig = LossMaskConfig()

    @model_validator(mode="after")
    def _batch_divides(self) -> SFTDataConfig:  # sft.py:52-58
        if self.batch_size % self.micro_batch_size != 0:
            raise ValueError("Batch size must be divisible by micro batch size")
        return self


class SFTValConfig(_Config):  # sft.py:137-145
    interval: int = Field(50, ge=1)
    eval_on_start: bool = False
    data: SFTDataConfig


class AdamWConfig(_Config):  # trainer.py:415-443 (BaseOptimizerConfig, AdamWConfig)
    type: Literal["adamw"] = "adamw"
    lr: float = Field(1e-6, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    max_norm: float | None = Field(1.0, ge=0)
    betas1: float = Field(0.9, ge=0)
    betas2: float = Field(0.999, ge=0)


class SGDConfig(_Config):  # trainer.py:426-433
    type: Literal["sgd"] = "sgd"
    lr: float = Field(1e-6, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    max_norm: float | None = Field(1.0, ge=0)
    nesterov: bool = True
    momentum: float = 0.9


class ConstantSchedulerConfig(_Config):  # trainer.py:361-362
    type: Literal["constant"] = "constant"


class LinearSchedulerConfig(_Config):  # trainer.py:365-375
    type: Literal["linear"] = "linear"
    warmup_steps: int = Field(10, ge=0)
    decay_steps: int = Field(10, ge=0)
    min_lr: float = Field(0.0, ge=0)


class CosineSchedulerConfig(_Config):  # trainer.py:378-385
    type: Literal["cosine"] = "cosine"
    warmup_steps: int = Field(10, ge=0)
    min_lr: float = Field(0.0, ge=0)


class CheckpointConfig(_Config):  # trainer.py:468-491
    output_dir: str | None = None
    interval: int | None = Field(None, ge=1)
    keep_last: int | None = Field(None, ge=1)
    keep_interval: int | None = Field(None, ge=1)
    skip_progress: bool = False
    skip_scheduler: bool = False
    skip_dataloader: bool = False
    skip_optimizer: bool = False


class SingleNodeDeploymentConfig(_Config):  # sft.py:150-168
    type: Literal["single_node"] = "single_node"
    gpus_per_node: int = 8
    num_train_gpus: int = 1
    num_infer_gpus: int = 1

    @model_validator(mode="after")
    def _fits(self) -> SingleNodeDeploymentConfig:
        if self.num_train_gpus > self.gpus_per_node:
            raise ValueError(f"num_train_gpus ({self.num_train_gpus}) exceeds gpus_per_node ({self.gpus_per_node}).")
        return self


class SFTConfig(_Config):  # sft.py:191-289
    model: ModelConfig = ModelConfig()
    env_vars: dict[str, str] = {}
    tokenizer: TokenizerConfig = TokenizerConfig()
    renderer: dict[str, Any] | None = None
    data: SFTDataConfig = SFTDataConfig()
    val: SFTValConfig | None = None
    eval: dict[str, Any] | None = None
    inference: dict[str, Any] | None = None
    weight_broadcast: dict[str, Any] | None = None
    optim: Annotated[AdamWConfig | SGDConfig, Field(discriminator="type")] = AdamWConfig()
    scheduler: Annotated[
        ConstantSchedulerConfig | LinearSchedulerConfig | CosineSchedulerConfig, Field(discriminator="type")
    ] = ConstantSchedulerConfig()
    ckpt: CheckpointConfig | None = None
    resume: dict[str, Any] | None = None
    log: dict[str, Any] | None = None
    monitors: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    output_dir: str = "outputs"
    clean: bool = False
    matmul_precision: Literal["highest", "high", "medium"] = "high"
    max_steps: int | None = None
    memory_profiler_path: str | None = None
    gc: dict[str, Any] | None = None
    trace_path: str | None = None
    dist_timeout_seconds: int = 3600
    heartbeat: dict[str, Any] | None = None
    deployment: SingleNodeDeploymentConfig = SingleNodeDeploymentConfig()
    slurm: dict[str, Any] | None = None
    dry_run: bool = False

    @model_validator(mode="after")
    def _scheduler_steps(self) -> SFTConfig:  # trainer.py:393-413 (validate_scheduler)
        s = self.scheduler
        if isinstance(s, LinearSchedulerConfig):
            if s.warmup_steps == 0 and s.decay_steps == 0:
                raise ValueError("Linear scheduler requires warmup_steps > 0 or decay_steps > 0")
            if s.decay_steps > 0 and (self.max_steps is None or s.warmup_steps + s.decay_steps > self.max_steps):
                raise ValueError("warmup_steps + decay_steps must not exceed max_steps")
        if isinstance(s, CosineSchedulerConfig) and (self.max_steps is None or s.warmup_steps >= self.max_steps):
            raise ValueError("a cosine scheduler needs max_steps greater than warmup_steps")
        return self


def schema_problems(config: dict[str, Any]) -> list[str]:
    """`key.path: problem` for every way `config` breaks the transcribed schema (empty: it passes)."""
    return kit_schema_problems(SFTConfig, config)
