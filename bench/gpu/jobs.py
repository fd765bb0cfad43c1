"""The GPU check's jobs: bundled example jobs pointed at a tiny model, moved onto the GPU in bf16.

    python bench/gpu/jobs.py MODEL_DIR OUT_DIR [--cpu]

Writes OUT_DIR/<name>.yaml for each entry of JOBS, as tests/backends/conftest.py's example_job does:
the model is MODEL_DIR, data and reward paths are absolute. On the GPU (the default) every job gets
``distributed.device: gpu`` and ``training.precision: bf16``, so the GPU code path runs (no use_cpu, bf16
autocast); with --cpu (a dry run of the check's logic on a machine without one) the jobs keep the
examples' CPU settings and the OpenRLHF jobs are the examples' CPU smoke-mode versions.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

QLORA = {"adapter": {"type": "qlora", "r": 8, "alpha": 16, "dropout": 0.0}, "model": {"quantization": "4bit"}}

#: name -> (example job, overrides merged key by key, CPU dry run's example job or None to skip it there).
JOBS: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "trl-sft_lora": ("sft_lora.yaml", {}, "sft_lora.yaml"),
    "trl-dpo": ("dpo.yaml", {}, "dpo.yaml"),
    "trl-grpo": ("grpo.yaml", {}, "grpo.yaml"),
    "trl-sft_qlora": ("sft_lora.yaml", QLORA, None),
    "openrlhf-sft_lora": ("openrlhf_sft_lora.yaml", {}, "openrlhf_cpu_sft_lora.yaml"),
    "openrlhf-dpo": ("openrlhf_dpo.yaml", {}, "openrlhf_cpu_dpo.yaml"),
}


def absolute(path: str) -> str:
    return str((EXAMPLES / "jobs" / path).resolve())


def job(name: str, model: Path, cpu: bool) -> dict[str, Any] | None:
    example, overrides, cpu_example = JOBS[name]
    if cpu:
        if cpu_example is None:
            return None
        example, overrides = cpu_example, {}
    data = yaml.safe_load((EXAMPLES / "jobs" / example).read_text())
    data["name"] = name.replace("-", "_")
    data["model"]["name_or_path"] = str(model)
    for split in ("train", "eval"):
        if split in data["data"]:
            data["data"][split]["path"] = absolute(data["data"][split]["path"])
    if "rewards" in data["method"]:
        data["method"]["rewards"] = [
            absolute(r.split(":")[0]) + ":" + r.split(":")[1] for r in data["method"]["rewards"]
        ]
    if data.get("adapter", {}).get("init_path"):
        data["adapter"]["init_path"] = str(model.with_name(model.name + "-lora-init"))
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    if not cpu:
        data["distributed"] = {**data.get("distributed", {}), "device": "gpu"}
        data["training"]["precision"] = "bf16"
    data.setdefault("output", {})["dir"] = "runs"
    return data


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    model, out = Path(args[0]).resolve(), Path(args[1])
    out.mkdir(parents=True, exist_ok=True)
    for name in JOBS:
        data = job(name, model, "--cpu" in argv)
        if data is not None:
            (out / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
            print(out / f"{name}.yaml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
