"""The model to train and how to load it."""

from __future__ import annotations

from typing import Literal

from ptsdk.spec.base import SpecModel
from pydantic import Field


class ModelSpec(SpecModel):
    name_or_path: str = Field(
        min_length=1,
        description="Hub id (org/name) or a local directory holding a transformers model and tokenizer.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="dtype the weights are loaded in; 'auto' follows the checkpoint."
    )
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = Field(
        None, description="Attention kernel; unset lets the framework choose."
    )
    trust_remote_code: bool = Field(False, description="Allow code shipped with the model to run.")
    quantization: Literal["none", "4bit", "8bit"] = Field(
        "none", description="Load the base weights quantized (bitsandbytes); needed by adapter.type=qlora."
    )
    chat_template: str | None = Field(
        None,
        description="Jinja chat template, or a path to a .jinja file, used instead of the tokenizer's own.",
    )
    pad_token: str | None = Field(
        None,
        min_length=1,
        description="Padding token (its text, e.g. '<|finetune_right_pad_id|>'), when the tokenizer has none or "
        "the wrong one; it must already be in the vocabulary.",
    )
    eos_token: str | None = Field(
        None,
        min_length=1,
        description="End-of-sequence token (its text, e.g. '<|im_end|>') that ends a completion, when it differs "
        "from the tokenizer's; it must already be in the vocabulary.",
    )
