#!/usr/bin/env python
"""CPU smoke mode: OpenRLHF's own SFT and DPO CLIs, unchanged, on a machine without an accelerator.

    python -m torch.distributed.run --nproc_per_node=1 --standalone cpu_smoke.py \\
        -m openrlhf.cli.train_sft <the same flags a GPU run gets>

OpenRLHF 0.11.2 has no CPU path. This file is the only place ptsdk adapts it to a CPU, and it
does four things before running the module's ``__main__`` block as written (``runpy``):

1. a ``flash_attn`` stand-in: ``openrlhf.models.ring_attn_utils`` imports
   ``flash_attn.bert_padding`` and ``flash_attn.utils.distributed`` at module load (every CLI
   imports it through ``openrlhf.models``), and flash-attn only builds with CUDA. The stand-in
   defines those names as functions that raise: they serve packing and ring attention only,
   which a CPU job cannot ask for. It has no ``flash_attn.ops``, so ``log_probs_from_logits``
   takes its own pure-torch fallback (an ImportError, as on any machine without flash-attn);
2. ``torch.cuda.set_device`` is a no-op (``DeepspeedStrategy.setup_distributed`` calls it);
3. ``init_device_mesh("cuda", ...)`` builds the same mesh on "cpu" (gloo), and
   ``torch.cuda.current_device()`` answers "cpu" (``all_reduce``/``all_gather`` of the logged
   metrics move tensors there);
4. ``torch.cuda.synchronize`` is a no-op (``torch_dist_barrier_and_cuda_sync`` after saving).

DeepSpeed runs on its own CPU accelerator (``DS_ACCELERATOR=cpu``, set here): gloo process
group, its CPU FusedAdam and shared-memory comm ops (C++, JIT-built once into
~/.cache/torch_extensions: a C++ compiler is needed), its BF16 optimizer with fp32 master
weights. Everything else (argument parsing and checks, dataset, Actor, loss, DeepSpeed engine,
checkpoints, saving, TensorBoard logging) is OpenRLHF's and DeepSpeed's code. The translation,
for a CPU job only, launches this file with torchrun (one process: DeepSpeed needs a rendezvous
environment), sets sdpa attention unless the job names one, and refuses what this path cannot
do (methods other than SFT and DPO, packing, flash attention, more than one process; the spec
itself refuses fp16 and 4-bit on CPU, and OpenRLHF's parser has no fp32).
"""

from __future__ import annotations

import importlib.machinery
import os
import runpy
import sys
import types
from typing import Any, NoReturn

os.environ["DS_ACCELERATOR"] = "cpu"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

BANNER = "ptsdk CPU smoke mode"

#: The modules and names OpenRLHF imports from flash_attn at load time.
FLASH_ATTN_NAMES = {
    "flash_attn.bert_padding": ("index_first_axis", "pad_input", "rearrange", "unpad_input"),
    "flash_attn.utils.distributed": ("all_gather",),
}


def _unavailable(name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(
            f"{name} is ptsdk's flash_attn stand-in (CPU smoke mode): packing and ring attention need "
            "the real flash-attn on a GPU"
        )

    call.__name__ = name.rsplit(".", 1)[-1]
    return call


def install_flash_attn_stand_in() -> None:
    """Empty flash_attn modules whose names raise when called (see the module docstring)."""
    for package in ("flash_attn", "flash_attn.utils"):
        module = types.ModuleType(package)
        module.__path__ = []  # a package: its missing submodules (flash_attn.ops) fail to import
        module.__spec__ = importlib.machinery.ModuleSpec(package, None, is_package=True)
        sys.modules[package] = module
    for name, names in FLASH_ATTN_NAMES.items():
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        for attr in names:
            setattr(module, attr, _unavailable(f"{name}.{attr}"))
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)


def redirect_cuda_calls() -> None:
    """The CUDA-only calls OpenRLHF makes around DeepSpeed, answered for a CPU."""
    import torch
    import torch.distributed.device_mesh as device_mesh

    init_device_mesh = device_mesh.init_device_mesh

    def cpu_device_mesh(device_type: str, *args: Any, **kwargs: Any) -> Any:
        return init_device_mesh("cpu" if device_type == "cuda" else device_type, *args, **kwargs)

    device_mesh.init_device_mesh = cpu_device_mesh
    torch.cuda.set_device = lambda device: None
    torch.cuda.current_device = lambda: "cpu"
    torch.cuda.synchronize = lambda device=None: None


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        raise SystemExit("usage: cpu_smoke.py -m openrlhf.cli.train_sft|train_dpo FLAGS...")
    module = sys.argv[2]
    if module not in ("openrlhf.cli.train_sft", "openrlhf.cli.train_dpo"):
        raise SystemExit(f"CPU smoke mode runs openrlhf.cli.train_sft and train_dpo only, not {module}")
    install_flash_attn_stand_in()
    redirect_cuda_calls()
    print(f"{BANNER}: {module} with a flash_attn stand-in, CUDA-only calls redirected, DS_ACCELERATOR=cpu")
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
