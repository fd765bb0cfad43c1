#!/usr/bin/env python
"""CPU smoke mode: vERL's own SFT trainer, unchanged, on a machine without an accelerator.

    python -m torch.distributed.run --nproc_per_node=1 --standalone cpu_smoke.py <vERL Hydra overrides>

vERL 0.9.1 has no CPU platform. This file is the only place ptsdk adapts vERL to a CPU, and it does
three things before handing over to ``verl.trainer.sft_trainer.main`` (the entry point a GPU run uses):

1. registers a minimal ``cpu`` platform with vERL's platform registry (device "cpu", no-op device
   calls, gloo for collectives), so ``get_device_name()`` and friends answer "cpu";
2. starts the gloo process group itself, because vERL's ``initialize_global_process_group`` asks for
   "cpu:gloo,<device>:<backend>", which names the CPU twice on this platform;
3. selects vERL's FSDP engine class, registered for cuda/npu only (``VERL_ENGINE_DEVICE=cuda``); the
   engine places tensors on the platform's device, the CPU.

Everything else (dataset, FSDP2 engine, loss, optimizer, checkpoints, logging) is vERL's code.
The translation also sets, for a CPU job only: ``trainer.device=cpu``, sdpa attention, no
remove-padding (flash-attn's varlen kernels are CUDA-only), no torch.compile, no dataloader workers.
It is for tests and smoke runs of the SFT path; vERL's RL needs vLLM/SGLang on GPUs.
"""

from __future__ import annotations

import contextlib
import os
import types
from datetime import timedelta
from typing import Any

import torch

os.environ.setdefault("VERL_PLATFORM", "cpu")
# vERL registers its FSDP engine for cuda and npu only; the class itself asks the platform for its device.
os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")


def _cpu_device_module() -> types.SimpleNamespace:
    """What vERL calls on ``torch.<device>``, answered for a CPU."""
    noop = lambda *a, **k: None  # noqa: E731
    return types.SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: 1,
        current_device=lambda: 0,
        set_device=noop,
        synchronize=noop,
        empty_cache=noop,
        manual_seed=torch.manual_seed,
        manual_seed_all=torch.manual_seed,
        memory_allocated=lambda *a, **k: 0,
        memory_reserved=lambda *a, **k: 0,
        max_memory_allocated=lambda *a, **k: 0,
        max_memory_reserved=lambda *a, **k: 0,
        reset_peak_memory_stats=noop,
        mem_get_info=lambda *a, **k: (0, 0),
        get_rng_state=torch.get_rng_state,
        set_rng_state=torch.set_rng_state,
        is_bf16_supported=lambda: True,
        get_device_name=lambda *a, **k: "cpu",
        Stream=None,
        current_stream=lambda *a, **k: None,
        stream=lambda *a, **k: contextlib.nullcontext(),
        Event=None,
        ipc_collect=noop,
        is_initialized=lambda: True,
    )


def register_cpu_platform() -> None:
    from verl.plugin.platform import PlatformBase, PlatformRegistry

    @PlatformRegistry.register("cpu")
    class PlatformCPU(PlatformBase):
        @property
        def device_name(self) -> str:
            return "cpu"

        @property
        def vendor_name(self) -> str:
            return "cpu"

        @property
        def device_module(self) -> Any:
            return _cpu_device_module()

        def is_available(self) -> bool:
            return True

        def is_platform_available(self, use_smi_check: bool = False) -> bool:
            return True

        def current_device(self) -> Any:
            return "cpu"  # vERL moves tensors with .to(get_device_id()): an index would mean cuda:N

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index: int) -> None:
            pass

        def synchronize(self, device_index: int | None = None) -> None:
            pass

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            pass

        def empty_cache(self) -> None:
            pass

        def communication_backend_name(self) -> str:
            return "gloo"

        def visible_devices_envvar(self) -> str:
            return "CUDA_VISIBLE_DEVICES"

        def ray_resource_name(self) -> str:
            return "CPU"

        def ray_noset_envvars(self) -> list[str]:
            return []

        def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
            return None, None

        def is_ipc_supported(self) -> bool:
            return False

        def nvtx_range(self, msg: str) -> Any:
            return contextlib.nullcontext()

        def profiler_start(self) -> None:
            pass

        def profiler_stop(self) -> None:
            pass

        def cudart(self) -> Any:
            return None


def use_gloo() -> None:
    """Start the gloo process group from torchrun's environment, and make vERL's initializer use it."""
    import verl.utils.distributed as distributed

    def initialize_global_process_group(timeout_second: int = 36000) -> tuple[int, int, int]:
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="gloo", timeout=timedelta(seconds=timeout_second))
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    distributed.initialize_global_process_group = initialize_global_process_group


def main() -> None:
    register_cpu_platform()
    use_gloo()
    from verl.trainer.sft_trainer import main as sft_main

    sft_main()  # vERL's Hydra entry point reads the overrides from sys.argv


if __name__ == "__main__":
    main()
