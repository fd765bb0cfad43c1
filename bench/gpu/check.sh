#!/usr/bin/env bash
# ptsdk on one GPU: what the CPU tests cannot run, in one pass that never stops at the first failure.
#
#   OUT=DIR bench/gpu/check.sh [A] [B] [C]        # default: A B C
#
# A  `ptsdk run -b trl` on examples/jobs/{sft_lora,dpo,grpo}.yaml moved to the GPU in bf16 (bench/gpu/jobs.py).
# B  OpenRLHF 0.11.2's own train_sft / train_dpo from ptsdk's translation (`ptsdk translate -b openrlhf --out`,
#    then `ptsdk run -b openrlhf`), with a flash_attn stand-in on PYTHONPATH (OpenRLHF imports flash_attn at
#    load: the same stand-in as backends/openrlhf/cpu_smoke.py, nothing else adapted; DeepSpeed on CUDA,
#    FusedAdam JIT-built with nvcc).
# C  TRL QLoRA (4-bit bitsandbytes base) on the SFT-LoRA job, when a bitsandbytes wheel is carried.
# A and C run one after the other; B runs beside them (another process on the same GPU).
#
# The machine needs python3 with torch (CUDA), transformers, accelerate, peft, pyyaml; what it lacks travels
# as wheels in .whl/ (trl, datasets, dill, multiprocess, pydantic and its parts, deepspeed built with
# DS_BUILD_OPS=0, openrlhf --no-deps, hjson, pylatexenc, torchdata), installed into /tmp/site; ptsdk from this checkout;
# .whl/trl/ (TRL's pinned transformers) into /tmp/site-trl, seen by A and C only; .whl/bnb/ (bitsandbytes,
# unpacked, only its CPU and CUDA 13.0 libraries) seen by C only. Everything lands in $OUT: check.log is
# written by the caller (`... | tee $OUT/check.log`); this script writes summary.json, summary.md (see
# summarize.py), env.txt and runs.tar.gz (run directories without weights, translations, logs, jobs).
# Each step has its own timeout, capped by what is left of GPU_CHECK_BUDGET_S (default 360 s).
#
# GPU_CHECK_CPU=1: a dry run of this script's logic on a CPU machine, with .venv's ptsdk and the managed
# TRL/OpenRLHF environments, the examples' CPU settings and OpenRLHF's CPU smoke mode.
set -u -o pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:?set OUT to the folder for the results}
W=${GPU_CHECK_WORK:-/tmp/ptsdk-gpu-check}
BUDGET=${GPU_CHECK_BUDGET_S:-360}
CPU=${GPU_CHECK_CPU:-0}
PARTS=" ${*:-A B C} "
TRL_PATH=${GPU_CHECK_TRL_PATH:-}
BNB_PATH=${GPU_CHECK_BNB_PATH:-}
START=$(date +%s)
rm -rf "$W"
mkdir -p "$W/logs" "$W/runs" "$W/jobs" "$W/translate" "$OUT"
: >"$W/parts.tsv"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PTSDK_STOP_GRACE_S=5 PTSDK_HOME="$W/home"

say() { printf '[%4ss] %s\n' "$(($(date +%s) - START))" "$*"; }
left() { echo $((BUDGET - ($(date +%s) - START))); }

# step NAME MAX_S TARGET CMD...: CMD under timeout min(MAX_S, budget left), its output in logs/NAME.log,
# a row "NAME rc seconds TARGET" in parts.tsv; the log's tail is printed when it fails.
step() {
  local name=$1 max=$2 target=$3 t s rc
  shift 3
  t=$(left)
  ((t > max)) && t=$max
  if ((t < 20)); then
    say "$name: skipped, the time budget is spent"
    printf '%s\tskipped\t0\t%s\n' "$name" "$target" >>"$W/parts.tsv"
    return 1
  fi
  say "$name: start (timeout ${t}s)"
  s=$(date +%s)
  timeout -k 10 "$t" "$@" >"$W/logs/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - s))" "$target" >>"$W/parts.tsv"
  say "$name: exit $rc after $(($(date +%s) - s))s"
  if ((rc != 0)); then tail -n 30 "$W/logs/$name.log" | sed "s/^/    $name| /"; fi
  return "$rc"
}

if [[ $CPU == 1 ]]; then
  PY=$ROOT/.venv/bin/python
  PTSDK=("$ROOT/.venv/bin/ptsdk")
  export PTSDK_TRL_PYTHON=${PTSDK_TRL_PYTHON:-$HOME/.cache/ptsdk/envs/trl/bin/python}
  export PTSDK_OPENRLHF_PYTHON=${PTSDK_OPENRLHF_PYTHON:-$HOME/.cache/ptsdk/envs/openrlhf/bin/python}
  MODEL_PY=$PTSDK_TRL_PYTHON
  JOBFLAG=--cpu
else
  PY=$(command -v python3)
  say "installing the carried wheels into /tmp/site (and .whl/trl/ into /tmp/site-trl)"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl ||
    say "pip install into /tmp/site failed"
  if ls .whl/trl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site-trl \
      .whl/trl/*.whl || say "pip install into /tmp/site-trl failed"
    TRL_PATH=/tmp/site-trl
  fi
  [[ -d .whl/bnb/bitsandbytes ]] && BNB_PATH=$ROOT/.whl/bnb
  # ptsdk itself: this checkout's sources in the installed package's layout (tools/typecheck.py's symlinks from
  # pyproject.toml's package-dir), so the machine runs exactly the code that travelled, with no wheel to go stale.
  "$PY" -c 'import sys; from pathlib import Path; sys.path.insert(0, "tools"); import typecheck as t
t.OUT = Path(sys.argv[1]); t.build_tree(t.package_dirs())' "$W/ptsdk-layout" || say "building ptsdk's layout failed"
  export PYTHONPATH=$W/ptsdk-layout:/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  export PTSDK_TRL_PYTHON=$PY PTSDK_OPENRLHF_PYTHON=$PY
  PTSDK=("$PY" -m ptsdk)
  MODEL_PY=$PY
  JOBFLAG=
  # The image sets an arch list with "9.0a", which DeepSpeed's JIT builder cannot parse (int("0a")).
  export TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=${MAX_JOBS:-16}
  export TORCH_EXTENSIONS_DIR=$W/torch_extensions
fi

{
  echo "python: $PY"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  command -v nvcc >/dev/null && nvcc --version | tail -n 2
  echo "ninja: $(command -v ninja || echo missing)"
  "$PY" - <<'PY' 2>&1
import importlib.metadata as m
for d in ("ptsdk", "torch", "transformers", "accelerate", "peft", "trl", "datasets", "pydantic", "deepspeed",
          "openrlhf", "bitsandbytes", "tokenizers", "huggingface_hub", "pyarrow", "typing_extensions"):
    try:
        print(f"{d}=={m.version(d)}")
    except m.PackageNotFoundError:
        print(f"{d}: not installed")
PY
  [[ -n $TRL_PATH ]] && PYTHONPATH=$TRL_PATH${PYTHONPATH:+:$PYTHONPATH} "$PY" -c \
    'import importlib.metadata as m; print("A and C (+/tmp/site-trl): transformers==" + m.version("transformers"))'
  [[ -n $BNB_PATH ]] && PYTHONPATH=$BNB_PATH${PYTHONPATH:+:$PYTHONPATH} "$PY" -c \
    'import importlib.metadata as m; print("C (+.whl/bnb): bitsandbytes==" + m.version("bitsandbytes"))'
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step model 120 "" "$MODEL_PY" examples/make_tiny_model.py "$W/tiny-model"
"$PY" bench/gpu/jobs.py "$W/tiny-model" "$W/jobs" $JOBFLAG >/dev/null || say "writing the jobs failed"

# The flash_attn stand-in for B: backends/openrlhf/cpu_smoke.py's modules, as files on PYTHONPATH.
mkdir -p "$W/stand-in/flash_attn/utils"
cat >"$W/stand-in/flash_attn/_stand_in.py" <<'PY'
def unavailable(name):
    def call(*args, **kwargs):
        raise RuntimeError(f"{name} is ptsdk's flash_attn stand-in: packing and ring attention need flash-attn")

    call.__name__ = name.rsplit(".", 1)[-1]
    return call
PY
cat >"$W/stand-in/flash_attn/bert_padding.py" <<'PY'
from flash_attn._stand_in import unavailable

index_first_axis = unavailable("flash_attn.bert_padding.index_first_axis")
pad_input = unavailable("flash_attn.bert_padding.pad_input")
rearrange = unavailable("flash_attn.bert_padding.rearrange")
unpad_input = unavailable("flash_attn.bert_padding.unpad_input")
PY
cat >"$W/stand-in/flash_attn/utils/distributed.py" <<'PY'
from flash_attn._stand_in import unavailable

all_gather = unavailable("flash_attn.utils.distributed.all_gather")
PY
: >"$W/stand-in/flash_attn/__init__.py"
: >"$W/stand-in/flash_attn/utils/__init__.py"

run_job() { # run_job STEP BACKEND NAME MAX_S
  local job="$W/jobs/$3.yaml"
  if [[ ! -f $job ]]; then
    say "$1: no job file $job (not on this machine)"
    return 0
  fi
  step "$1" "$4" "$W/runs/$3" "${PTSDK[@]}" run "$job" -b "$2" --run-dir "$W/runs/$3" -q
}

lane_trl() {
  if [[ $PARTS == *" A "* && -n $TRL_PATH ]]; then
    # ptsdk's TRL translation names TrainingArguments.activation_checkpointing (transformers >= 5.2x): with the
    # machine's own transformers TRL's parser should refuse it. Recorded, then A runs with TRL's pinned transformers.
    step A0-translate-trl-stock-transformers 60 "" \
      "${PTSDK[@]}" translate "$W/jobs/trl-sft_lora.yaml" -b trl --out "$W/translate/trl-sft_lora-stock"
  fi
  [[ -n $TRL_PATH ]] && export PYTHONPATH=$TRL_PATH${PYTHONPATH:+:$PYTHONPATH}
  if [[ $PARTS == *" A "* ]]; then
    run_job A-trl-sft_lora trl trl-sft_lora 110
    run_job A-trl-dpo trl trl-dpo 100
    run_job A-trl-grpo trl trl-grpo 120
  fi
  if [[ $PARTS == *" C "* ]]; then
    if [[ -z $BNB_PATH ]]; then
      say "C: skipped (no bitsandbytes carried)"
    else
      PYTHONPATH=$BNB_PATH${PYTHONPATH:+:$PYTHONPATH} run_job C-trl-sft_qlora trl trl-sft_qlora 100
    fi
  fi
}

lane_openrlhf() {
  [[ $PARTS == *" B "* ]] || return 0
  export PYTHONPATH=$W/stand-in${PYTHONPATH:+:$PYTHONPATH}
  [[ $CPU == 1 ]] || export DS_ACCELERATOR=cuda
  local j
  for j in ${GPU_CHECK_B_JOBS:-sft_lora dpo}; do
    if [[ -f $W/jobs/openrlhf-$j.yaml ]]; then
      step "B-translate-openrlhf-$j" 90 "$W/translate/openrlhf-$j" \
        "${PTSDK[@]}" translate "$W/jobs/openrlhf-$j.yaml" -b openrlhf --out "$W/translate/openrlhf-$j"
    fi
    run_job "B-openrlhf-$j" openrlhf "openrlhf-$j" 240
  done
}

GPU_MEM_PID=
if [[ $CPU != 1 ]]; then
  nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 500 >"$W/gpu_mem.csv" 2>&1 &
  GPU_MEM_PID=$!
fi
lane_trl &
TRL_PID=$!
lane_openrlhf &
OPENRLHF_PID=$!
wait "$TRL_PID" "$OPENRLHF_PID"
[[ -n $GPU_MEM_PID ]] && kill "$GPU_MEM_PID" 2>/dev/null
if [[ -s $W/gpu_mem.csv ]]; then
  say "GPU memory used, most seen while the lanes ran: $(awk -F', ' '{print $2+0}' "$W/gpu_mem.csv" | sort -n | tail -n 1) MiB"
fi

say "summary"
"$PY" bench/gpu/summarize.py "$W" "$OUT" || say "summarize failed"
tar -czf "$OUT/runs.tar.gz" -C "$W" --exclude='*/model/*' --exclude='*/checkpoints/*' --exclude='*.safetensors' \
  --exclude='*.bin' --exclude='*.pt' --exclude='*/torch_extensions/*' \
  runs translate logs jobs parts.tsv $(cd "$W" && ls gpu_mem.csv 2>/dev/null) || say "packing the runs failed"
FAILED=$(awk -F'\t' '$2 != "0" && $1 !~ /^A0-/ {print $1}' "$W/parts.tsv" | tr '\n' ' ')
say "done; failed or skipped: ${FAILED:-none}"
[[ -z $FAILED ]]
