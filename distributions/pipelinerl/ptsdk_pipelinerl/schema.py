"""The keys of PipelineRL's Hydra config, as pydantic models.

Transcribed from conf/base.yaml, conf/finetune/base.yaml, conf/finetune/grpo.yaml, conf/streams/files.yaml and
the RL loss settings of pipelinerl/finetune/rl/__init__.py:43-105 (RLConfig) at commit
58d393458625ad63ed539f2dcd072c85700c557f of github.com/ServiceNow/PipelineRL, plus the domain keys its example
configs add to base (actor.rollout_policy, dataset_loader, dataset_loader_params, train_dataset_names,
test_dataset_names: conf/counting.yaml, conf/math.yaml; read in pipelinerl/actor.py:803-808). PipelineRL has no
schema of its own (Hydra YAML, not structured configs): a misspelt key becomes a new key nobody reads. ptsdk
checks its generated config (the part after ``defaults``) against these keys; every model forbids unknown ones.
Free-form sections (vLLM and sampling parameters, handed to vLLM as they are) stay mappings.
"""

from __future__ import annotations

from typing import Any, Literal

from ptsdk.plugins.kit import schema_problems as kit_schema_problems
from pydantic import BaseModel, ConfigDict

from ptsdk_pipelinerl.pinned import COMMIT as COMMIT  # the commit the schema was read from


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraSection(_Section):  # finetune/base.yaml: lora
    enabled: bool | None = None
    task_type: str | None = None
    base_model_8bit: bool | None = None
    base_model_4bit: bool | None = None
    r: int | None = None
    alpha: int | None = None
    dropout: float | None = None
    bias: Literal["none", "all", "lora_only"] | None = None
    target_modules: list[str] | None = None


class RLSection(_Section):  # finetune/base.yaml: rl, and finetune/rl/__init__.py:43-105
    policy_loss: Literal["ppo", "reinforce", "gspo"] | None = None
    use_advantages: bool | None = None
    epsilon_low: float | None = None
    epsilon_high: float | None = None
    batch_size: int | None = None
    reward_minus_kl_coef: float | None = None
    kl_coef: float | None = None
    final_kl_coef: float | None = None
    entropy_bonus: float | None = None
    final_entropy_bonus: float | None = None
    relu_log_p_weights: bool | None = None
    clamp_log_ratio_ref_new_value: float | None = None
    divide_advantage_by_std: bool | None = None
    overlong_filtering: bool | None = None
    group_normalization: bool | None = None
    temperature: float | None = None
    filter_zero_advantage_groups: bool | None = None
    value_loss_coef: float | None = None
    aggregate_loss: str | None = None


class FinetuneSection(_Section):  # finetune/base.yaml
    data: Any = None
    model_class: (
        Literal[
            "causal-language-modeling",
            "seq2seq-language-modeling",
            "vision2seq-language-modeling",
            "causal-language-modeling-with-value-head",
        ]
        | None
    ) = None
    config_name: str | None = None
    optim: Literal["adamw_torch", "adafactor", "cpuadam", "lion"] | None = None
    load_as_bf16: bool | None = None
    fp32_layer_prefix: str | None = None
    use_flash_attention: bool | None = None
    attn_implementation: str | None = None
    auto_device_map: bool | None = None
    lora: LoraSection | None = None
    force_restart: bool | None = None
    resume_dataloader: bool | None = None
    train_batch_size: int | None = None
    valid_batch_size: int | None = None
    weight_decay: float | None = None
    learning_rate: float | None = None
    gradient_clipping_threshold: float | None = None
    # handed to transformers' get_scheduler (finetune_loop.py:394): its SchedulerType names
    lr_scheduler_type: (
        Literal[
            "linear",
            "cosine",
            "cosine_with_restarts",
            "polynomial",
            "constant",
            "constant_with_warmup",
            "inverse_sqrt",
            "reduce_lr_on_plateau",
            "cosine_with_min_lr",
            "warmup_stable_decay",
        ]
        | None
    ) = None
    num_warmup_steps: int | None = None
    gradient_accumulation_passes: int | None = None
    gradient_checkpointing: bool | None = None
    reentrant_checkpointing: bool | None = None
    max_train_steps: int | None = None
    interrupt_train_steps: int | None = None
    max_eval_steps: int | None = None
    seq_length: int | None = None
    seq_packing: bool | None = None
    output_dir: str | None = None
    seed: int | None = None
    save_checkpoint_steps: int | None = None
    keep_intermediate_checkpoints: bool | None = None
    trust_remote_code: bool | None = None
    cuda_empty_cache: bool | None = None
    sft_config_name: str | None = None
    n_examples: int | None = None
    log_each_n_steps: int | None = None
    memory_debug: dict[str, Any] | None = None
    also_save_steps: list[int] | None = None
    use_safetensors: bool | None = None
    save_final_training_state: bool | None = None
    seq_parallel: int | None = None
    objective: str | None = None
    input: str | None = None
    send_weight_updates: bool | None = None
    queue_size: int | None = None
    max_lag: int | None = None
    weight_update_interval: int | None = None
    pop_old_data: bool | None = None
    attempts: int | None = None
    eval_callback: dict[str, Any] | None = None
    rl: RLSection | None = None


class ActorSection(_Section):  # base.yaml: actor; rollout_policy and the prompts from the domain configs
    log_each_n_secs: float | None = None
    llm_max_rollouts: int | None = None
    rollout_workers: int | None = None
    discount_factor: float | None = None
    problem_queue_size: int | None = None
    result_queue_size: int | None = None
    throughput_window_size: int | None = None
    shared_memory_entry_size: int | None = None
    rollout_policy: str | None = None
    system_prompt: str | None = None
    task_template: str | None = None
    task_prompt: str | None = None


class LLMSection(_Section):  # base.yaml: llm, test_llm
    parameters: dict[str, Any] | None = None
    chat_template_kwargs: dict[str, Any] | None = None


class VLLMSection(_Section):  # base.yaml: vllm_config
    vllm_kwargs: dict[str, Any] | None = None
    quantization: str | None = None


class WorldSection(_Section):  # base.yaml: world
    replicas: int | None = None
    actor_fraction: int | None = None
    preprocessor_fraction: int | None = None
    finetune_fraction: int | None = None
    env_replicas: int | None = None
    actor_group_port: int | None = None
    environment_start_port: int | None = None


class WandbSection(_Section):  # base.yaml: wandb
    use_wandb: bool | None = None
    wandb_id: str | None = None
    wandb_name: str | None = None
    wandb_entity_name: str | None = None
    wandb_project_name: str | None = None
    wandb_resume: str | None = None
    wandb_use_basename: bool | None = None
    wandb_workspace_root: str | None = None
    wandb_group: str | None = None
    wandb_dir: str | None = None
    tags: list[str] | None = None


class StreamsSection(_Section):  # streams/files.yaml, streams/redis.yaml
    backend: Literal["files", "redis"] | None = None
    host: str | None = None
    port: int | None = None
    save: str | None = None


class PipelineRLConfig(_Section):  # base.yaml top level
    defaults: list[Any] | None = None
    seed: int | None = None
    fp32_layer_prefix: str | None = None
    finetune: FinetuneSection | None = None
    actor: ActorSection | None = None
    environment: Any = None
    environments: list[dict[str, Any]] | None = None
    environment_key: str | None = None
    preprocess: dict[str, Any] | None = None
    llm: LLMSection | None = None
    test_llm: LLMSection | None = None
    vllm_config: VLLMSection | None = None
    world: WorldSection | None = None
    jobs: list[Any] | None = None
    eval_every_n_versions: int | None = None
    model_path: str | None = None
    accelerate_config: str | None = None
    use_deepspeed: bool | None = None
    deepspeed_config: str | None = None
    use_fsdp: bool | None = None
    fsdp: dict[str, Any] | None = None
    output_dir: str | None = None
    force_restart: bool | None = None
    pop_old_data: bool | None = None
    max_lag: int | None = None
    attempts: int | None = None
    train_subset: int | None = None
    debug: dict[str, Any] | None = None
    me: dict[str, Any] | None = None
    hydra: dict[str, Any] | None = None
    wandb: WandbSection | None = None
    rewards: dict[str, float] | None = None
    streams: StreamsSection | None = None
    dataset_loader: str | None = None
    dataset_loader_params: dict[str, Any] | None = None
    train_dataset_names: list[str] | None = None
    test_dataset_names: list[str] | None = None


def schema_problems(config: dict[str, Any]) -> list[str]:
    """`key.path: problem` for every key of `config` PipelineRL's config does not have, or a value of the wrong type."""
    return kit_schema_problems(PipelineRLConfig, config)
