"""Full fine-tuning or a parameter-efficient adapter (LoRA / QLoRA)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from ptsdk.spec.base import SpecModel
from pydantic import Field


class FullFineTune(SpecModel):
    type: Literal["full"] = Field("full", description="Train every weight of the model.")


class _LoraFields(SpecModel):
    r: int = Field(16, ge=1, le=4096, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (lora_alpha).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt, or 'all-linear' for every linear layer but the head."
    )
    init_path: str | None = Field(
        None,
        description="Start from this saved PEFT adapter (a folder, relative to the job file) instead of fresh random "
        "weights: the way to give two frameworks the same starting point.",
    )


class Lora(_LoraFields):
    type: Literal["lora"] = Field(description="Low-rank adapters on a full-precision base model.")


class QLora(_LoraFields):
    type: Literal["qlora"] = Field(description="LoRA on a 4-bit quantized base model (needs model.quantization=4bit).")


AdapterSpec = Annotated[Union[FullFineTune, Lora, QLora], Field(discriminator="type")]
