"""How online RL generates its completions: the inference engine and its placement."""

from __future__ import annotations

from typing import Literal

from ptsdk.spec.base import SpecModel
from pydantic import Field


class RolloutSpec(SpecModel):
    engine: Literal["vllm", "sglang"] = Field(
        "vllm", description="Inference engine that generates completions (online RL only)."
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one engine instance spans (tensor parallelism).")
    num_engines: int | None = Field(
        None,
        ge=1,
        description="Engine instances; default: as many as the GPUs allow (world size / tensor_parallel_size).",
    )
    gpu_memory_utilization: float = Field(
        0.5, gt=0, le=1, description="Fraction of each GPU's memory the engine may take (KV cache included)."
    )
    colocate: bool = Field(
        True, description="Engines share GPUs with training (sleeping between phases); false: dedicated GPUs."
    )
    server: str | None = Field(
        None,
        min_length=1,
        pattern=r"^[A-Za-z0-9_.\[\]:-]+:[0-9]{1,5}$",
        description="host:port of an inference server started separately (e.g. `trl vllm-serve`) that the trainer "
        "sends its prompts to and pushes weights to; unset: the framework starts its own engines (see colocate).",
    )
