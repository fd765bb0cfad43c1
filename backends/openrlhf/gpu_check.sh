#!/usr/bin/env bash
# OpenRLHF on a GPU machine: what the CPU tests cannot run (OpenRLHF needs CUDA: flash-attn at import,
# torch.cuda.set_device, a cuda device mesh; its RL needs vLLM engines).
#
#   PTSDK_OPENRLHF_PYTHON=/path/to/venv/bin/python backends/openrlhf/gpu_check.sh [sft dpo grpo]
#
# Needs an OpenRLHF 0.11.2 environment built for CUDA: `ptsdk env create openrlhf`'s pins plus a CUDA
# torch, flash-attn 2.8.3 (or jobs with attn_implementation: sdpa, as here) and, for grpo, vllm 0.29.0.
# Builds the tiny model, then runs the example jobs examples/jobs/openrlhf_{sft_lora,dpo,grpo}.yaml
# with `ptsdk run --backend openrlhf` and checks that each logged a finite loss at every step and
# saved its weights under model/. Exit 0 when every run trained. A few minutes on one GPU (grpo: 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PTSDK_OPENRLHF_PYTHON:?set PTSDK_OPENRLHF_PYTHON to an OpenRLHF environment with CUDA}"
PTSDK="${PTSDK:-.venv/bin/ptsdk}"
WORK="$(mktemp -d)"
"$PY" examples/make_tiny_model.py "$WORK/tiny-model" >/dev/null
for NAME in "${@:-sft_lora dpo}"; do
  for JOB in $NAME; do
    sed "s#\.\./tiny-model#$WORK/tiny-model#; s#\.\./data/#$PWD/examples/data/#g; s#\.\./rewards.py#$PWD/examples/rewards.py#" \
      "examples/jobs/openrlhf_$JOB.yaml" > "$WORK/$JOB.yaml"
    "$PTSDK" run "$WORK/$JOB.yaml" --backend openrlhf --run-dir "$WORK/run-$JOB" --quiet
    python3 - "$WORK/run-$JOB" <<'PY'
import json, math, sys
from pathlib import Path
run = Path(sys.argv[1])
manifest = json.loads((run / "manifest.json").read_text())
train = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
assert manifest["status"] == "succeeded", manifest.get("artifact_problems")
assert train and all(m["loss"] is not None and math.isfinite(m["loss"]) for m in train), train
print(f"{run.name}: {len(train)} steps, last loss {train[-1]['loss']:.4f}")
PY
  done
done
echo "OpenRLHF GPU check passed: $WORK"
