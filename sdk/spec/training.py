"""Optimization settings in framework-neutral units."""

from __future__ import annotations

from typing import Literal, get_args

from ptsdk.spec.base import SpecModel
from pydantic import Field, model_validator

Optimizer = Literal[
    "adamw", "adamw_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd", "adafactor", "rmsprop"
]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)


class TrainingSpec(SpecModel):
    global_batch_size: int = Field(
        8,
        ge=1,
        description="Sequences per optimizer step across all devices (for online RL: completions). "
        "Gradient accumulation is derived: global / (micro_batch_size x data-parallel size).",
    )
    micro_batch_size: int = Field(1, ge=1, description="Sequences per device per forward/backward pass.")
    learning_rate: float | None = Field(
        None, gt=0, lt=1, description="Peak learning rate; unset means 2e-4 with an adapter, 2e-5 for full fine-tuning."
    )
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "cosine", description="Learning-rate schedule after warmup."
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of the total steps spent warming up.")
    min_lr_ratio: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Floor of the cosine schedule as a fraction of the peak learning rate (0: decays to 0). "
        "lr_scheduler=cosine only.",
    )
    epochs: float | None = Field(
        None, gt=0, description="Passes over the training data (default 1 when max_steps is unset)."
    )
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; overrides epochs.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    adam_beta1: float = Field(0.9, ge=0, lt=1, description="Adam's first-moment decay (beta1); Adam-family optimizers.")
    adam_beta2: float = Field(
        0.999, ge=0, lt=1, description="Adam's second-moment decay (beta2); Adam-family optimizers."
    )
    adam_epsilon: float = Field(1e-8, gt=0, lt=1, description="Adam's denominator epsilon; Adam-family optimizers.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    optimizer: Optimizer = Field(
        "adamw",
        description="Optimizer. adamw: AdamW with torch's standard (unfused) kernels, the same arithmetic on every "
        "backend that offers a choice of kernel, so their runs compare; a framework whose only AdamW is its own "
        "kernel uses that one (its translation notes say so). adamw_fused: the same AdamW update in one fused "
        "kernel (faster on GPUs, equal to adamw up to rounding; the Hugging Face Trainer's own default since "
        "torch 2.8). adamw_8bit: bitsandbytes' 8-bit AdamW. paged_adamw_8bit, paged_adamw_32bit: bitsandbytes' "
        "AdamW whose state pages out of GPU memory under pressure (on a CPU it simply does not page). sgd, "
        "rmsprop: torch's SGD and RMSprop. adafactor: Adafactor at the given learning rate (no relative step "
        "sizes). A backend that cannot run the choice refuses it before launch.",
    )
    precision: Literal["bf16", "fp16", "fp32"] = Field("bf16", description="Compute precision of training.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    packing: bool = Field(False, description="Pack several short sequences into one (SFT).")
    padding_free: bool = Field(
        False,
        description="Run each micro-batch's sequences concatenated without padding tokens (variable-length "
        "attention, position ids restarting per sequence): the same loss as padded batches, less compute. Needs "
        "an attention kernel that supports it (flash_attention_2 on GPUs). Unlike packing it never puts two "
        "sequences into one attention window.",
    )
    max_tokens_per_micro_batch: int | None = Field(
        None,
        ge=1,
        description="Token-budget (dynamic) batching: each device's micro-batches are filled with whole sequences "
        "up to this many tokens instead of micro_batch_size sequences; the optimizer step still covers "
        "global_batch_size sequences. Unset: fixed micro-batches.",
    )
    seed: int = Field(42, ge=0, description="Seed for data order, initialization and sampling.")
    shuffle: bool = Field(
        True,
        description="Shuffle the training data: ptsdk's own seeded order, a new permutation each epoch, which "
        "every backend that can reads in the same steps (logs/data_order.jsonl in the run directory); a backend "
        "that cannot uses its framework's seeded shuffle and says so in its parity table. false keeps the "
        "file's order.",
    )
    loss_normalization: Literal["tokens", "micro_batch"] = Field(
        "tokens",
        description="How SFT's token-level loss is averaged over an optimizer step. tokens: every loss token of the "
        "step weighs the same (the summed loss over all accumulated micro-batches and devices, divided by their "
        "loss tokens). micro_batch: each micro-batch is averaged over its own loss tokens, then the micro-batches "
        "are averaged (a short sequence's tokens weigh more). Equal when a step is one micro-batch on one device. "
        "Preference and RL losses are averaged over sequences and ignore it.",
    )

    @model_validator(mode="after")
    def _one_length(self) -> TrainingSpec:
        if self.epochs is not None and self.max_steps is not None:
            raise ValueError("set only one of training.epochs and training.max_steps")
        if self.min_lr_ratio and self.lr_scheduler != "cosine":
            raise ValueError(
                f"training.min_lr_ratio is the floor of a cosine schedule; set lr_scheduler: cosine or remove it "
                f"(lr_scheduler is {self.lr_scheduler})"
            )
        return self
