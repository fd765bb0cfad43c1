"""Where the job runs: devices, processes, nodes and the parallelism strategy."""

from __future__ import annotations

from typing import Literal

from ptsdk.spec.base import SpecModel
from pydantic import Field, model_validator


class DistributedSpec(SpecModel):
    device: Literal["gpu", "cpu"] = Field("gpu", description="Accelerator kind; 'cpu' is for tests and debugging.")
    nodes: int = Field(1, ge=1, description="Machines.")
    gpus_per_node: int = Field(1, ge=1, description="Processes per node (one per GPU; CPU processes when device=cpu).")
    strategy: Literal["none", "ddp", "fsdp", "deepspeed", "megatron"] = Field(
        "none",
        description="Parallelism strategy; 'none' for one process, 'ddp' is chosen for you above one. megatron: "
        "Megatron-LM's tensor/pipeline/data parallelism (tensor_parallel_size, pipeline_parallel_size).",
    )
    zero_stage: Literal[0, 1, 2, 3] | None = Field(None, description="DeepSpeed ZeRO stage (strategy=deepspeed).")
    offload: Literal["none", "optimizer", "optimizer_and_params"] = Field(
        "none", description="Offload to CPU memory (FSDP or DeepSpeed)."
    )
    tensor_parallel_size: int = Field(1, ge=1, description="Tensor-parallel group size.")
    pipeline_parallel_size: int = Field(1, ge=1, description="Pipeline-parallel group size.")
    master_addr: str | None = Field(
        None,
        description="Rendezvous host of multi-node runs that torchrun/deepspeed launch (required there; "
        "Ray-based frameworks find their nodes through the Ray cluster instead).",
    )
    master_port: int = Field(29500, ge=1, le=65535, description="Rendezvous port.")
    ray_address: str | None = Field(
        None, description="An existing Ray cluster (e.g. ray://head:10001 or head:6379) for Ray-based frameworks."
    )

    @property
    def world_size(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def data_parallel_size(self) -> int:
        return self.world_size // (self.tensor_parallel_size * self.pipeline_parallel_size)

    @property
    def effective_strategy(self) -> str:
        """ddp when several processes were asked for without naming a strategy."""
        if self.strategy == "none" and self.world_size > 1:
            return "ddp"
        return self.strategy

    @model_validator(mode="after")
    def _consistent(self) -> DistributedSpec:
        if self.strategy == "deepspeed" and self.zero_stage is None:
            raise ValueError("distributed.zero_stage is required with strategy=deepspeed (0, 1, 2 or 3)")
        if self.strategy != "deepspeed" and self.zero_stage is not None:
            raise ValueError("distributed.zero_stage only applies to strategy=deepspeed; remove it or set the strategy")
        if self.offload != "none" and self.strategy not in ("fsdp", "deepspeed"):
            raise ValueError("distributed.offload needs strategy fsdp or deepspeed")
        if self.tensor_parallel_size * self.pipeline_parallel_size > 1 and self.strategy in ("none", "ddp"):
            raise ValueError(
                f"tensor/pipeline parallelism shards the model, which strategy '{self.strategy}' does not: set "
                "distributed.strategy to megatron (tensor and pipeline), or fsdp or deepspeed (tensor, where the "
                "framework offers it)"
            )
        if self.pipeline_parallel_size > 1 and self.strategy != "megatron":
            raise ValueError(
                f"pipeline parallelism needs strategy megatron (strategy is {self.strategy}); "
                "or set pipeline_parallel_size: 1"
            )
        model_parallel = self.tensor_parallel_size * self.pipeline_parallel_size
        if self.world_size % model_parallel:
            raise ValueError(
                f"world size {self.world_size} (nodes x gpus_per_node) is not divisible by "
                f"tensor_parallel_size x pipeline_parallel_size = {model_parallel}"
            )
        return self
