#!/usr/bin/env bash
# vERL RL on a GPU machine: what the CPU tests cannot run (vERL's rollouts need vLLM or SGLang on GPUs).
#
#   PTSDK_VERL_PYTHON=/path/to/venv-with-verl-and-vllm/bin/python backends/verl/gpu_check.sh [gpus]
#
# Needs a vERL 0.9.1 environment that also holds vllm (`pip install "verl[vllm]==0.9.1"` pins its own
# torch) and ray. Builds the tiny model and a tiny reward model, then runs GRPO (dr_grpo loss, LoRA), PPO
# (critic) and GRPO scored by the reward model (method.reward_model) for 2 steps each with `ptsdk run
# --backend verl`, and checks that every step logged a finite loss and a reward and that model/ holds the
# trained weights. Exit 0 when all three runs trained. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS="${1:-1}"
PY="${PTSDK_VERL_PYTHON:?set PTSDK_VERL_PYTHON to a vERL+vLLM environment}"
PTSDK="${PTSDK:-.venv/bin/ptsdk}"
WORK="$(mktemp -d)"
"$PY" examples/make_tiny_model.py "$WORK/tiny-model" >/dev/null
# A sequence-classification reward model (one label) on the tiny Llama, for the reward-model run.
"$PY" - "$WORK/tiny-model" "$WORK/tiny-rm" <<'PY'
import sys
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
m = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], num_labels=1)
m.config.pad_token_id = tok.pad_token_id
m.save_pretrained(sys.argv[2]); tok.save_pretrained(sys.argv[2])
PY
FN="rewards: [$PWD/examples/rewards.py:correct]"
for CASE in "grpo|name: grpo, loss_type: dr_grpo, num_generations: 4, kl_coef: 0.01, $FN" \
            "ppo|name: ppo, num_generations: 1, $FN" \
            "grpo-rm|name: grpo, num_generations: 4, reward_model: $WORK/tiny-rm"; do
  NAME="${CASE%%|*}"
  cat > "$WORK/$NAME.yaml" <<YAML
method: {${CASE#*|}, max_prompt_length: 32, max_completion_length: 8}
model: {name_or_path: $WORK/tiny-model, dtype: bfloat16}
adapter: {type: lora, r: 8, alpha: 16, dropout: 0.0}
data: {train: {path: $PWD/examples/data/rl_train.jsonl}, max_length: 64}
training: {global_batch_size: $((8 * GPUS)), micro_batch_size: 4, learning_rate: 0.001, max_steps: 2, precision: bf16}
distributed: {gpus_per_node: $GPUS, strategy: fsdp}
rollout: {engine: vllm, gpu_memory_utilization: 0.3}
YAML
  "$PTSDK" run "$WORK/$NAME.yaml" --backend verl --run-dir "$WORK/run-$NAME" --quiet
  python3 - "$WORK/run-$NAME" <<'PY'
import json, math, sys, pathlib
run = pathlib.Path(sys.argv[1])
train = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
assert [m["step"] for m in train] == [1, 2], train
assert all(m["loss"] is not None and math.isfinite(m["loss"]) and m["reward"] is not None for m in train), train
assert all(m["tokens_per_s"] and m["wall_time_s"] for m in train), train  # from timing_s/step, perf/total_num_tokens
assert list((run / "model").glob("*.safetensors")), "no weights in model/"
print(f"{run.name}: trained, rewards {[m['reward'] for m in train]}")
PY
done
echo "vERL RL on GPU: ok ($WORK)"
