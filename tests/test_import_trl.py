"""`ptsdk import --from trl` (issue 12): every TRL corpus entry imported, validated, translated back and
compared setting by setting. Core only: TRL itself is not imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ptsdk.backends.trl.backend import CONFIG, TRLBackend
from ptsdk.errors import PtsdkError
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.backend import Plan
from ptsdk.spec import validate_job

from tests.roundtrip import Entry, corpus, flatten, unexplained, write_native

ENTRIES = corpus("trl")
#: Entries that cannot be a whole job, and why (the importer must say so with a PtsdkError).
NOT_A_JOB = {
    "gspo_zero3_lora": "examples/scripts/gspo.py loads its dataset in code: no --dataset_name in the launch",
    "grpo_multinode_vllm_server": "GRPOConfig keyword arguments only: model and data are given in Python",
}
#: name -> (imported, valid, feasible, round trip clean), for the summary.
RESULTS: dict[str, dict[str, Any]] = {}


def back_settings(plan: Plan) -> dict[str, Any]:
    content = next(f.content for f in plan.files if f.path == CONFIG)
    assert content is not None
    return flatten(yaml.safe_load(content))


def round_trip(entry: Entry, folder: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"imported": False, "valid": False, "feasible": False, "clean": False}
    RESULTS[entry.name] = row
    backend = TRLBackend()
    result = backend.import_native(write_native(entry, folder))
    row["imported"] = True
    job = validate_job(result.job, source=entry.name)
    row["valid"] = True
    check = feasibility(job, {"trl": TRLBackend})["trl"]
    if not check.ok:
        row["refused"] = check.reasons()
        return row
    row["feasible"] = True
    plan = backend.translate(job)
    row["unexplained"] = unexplained(entry.settings, back_settings(plan), [*result.notes, *plan.notes])
    row["clean"] = not row["unexplained"]
    row["notes"] = [str(n) for n in result.notes]
    return row


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_corpus_entry_round_trip(entry: Entry, tmp_path: Path) -> None:
    if entry.name in NOT_A_JOB:
        with pytest.raises(PtsdkError) as err:
            round_trip(entry, tmp_path)
        message = str(err.value)
        assert str(tmp_path) in message and "fragment" in message, message
        RESULTS[entry.name]["error"] = message
        return
    row = round_trip(entry, tmp_path)
    assert row["feasible"], row.get("refused")
    assert row["clean"], row["unexplained"]


def test_summary_counts() -> None:
    """The per-entry table for the lead (runs after the parametrized entries)."""
    rows = {e.name: RESULTS.get(e.name) for e in ENTRIES}
    missing = [n for n, r in rows.items() if r is None]
    if missing:
        pytest.skip(f"run with the entry tests: {missing}")
    counts = {k: sum(bool(r[k]) for r in rows.values() if r) for k in ("imported", "valid", "feasible", "clean")}
    print(f"\ntrl corpus: {len(rows)} entries, " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for name, r in rows.items():
        assert r is not None
        flags = " ".join(f"{k}={'y' if r[k] else 'n'}" for k in ("imported", "valid", "feasible", "clean"))
        print(f"  {name:32} {flags}" + (f"  ({NOT_A_JOB[name]})" if name in NOT_A_JOB else ""))
    assert counts["clean"] == len(rows) - len(NOT_A_JOB)


def test_import_keeps_trl_semantics(tmp_path: Path) -> None:
    """Batch size, warmup and method fields come back as TRL computes them."""
    by_name = {e.name: e for e in ENTRIES}
    result = TRLBackend().import_native(write_native(by_name["cpo_lora_rmsprop"], tmp_path))
    job = validate_job(result.job)
    assert (job.training.micro_batch_size, job.training.global_batch_size) == (4, 4)
    assert job.training.optimizer == "rmsprop" and job.training.max_steps == 1000
    assert job.warmup_steps == 150
    assert job.backend_options["trl"]["remove_unused_columns"] is False
    kto = validate_job(TRLBackend().import_native(write_native(by_name["kto_qlora"], tmp_path)).job)
    assert kto.adapter.type == "qlora" and kto.model.quantization == "4bit" and kto.training.warmup_ratio == 0.1


def test_accelerate_launch_and_yaml(tmp_path: Path) -> None:
    script = tmp_path / "launch.sh"
    script.write_text(
        "#!/bin/bash\naccelerate launch --config_file examples/accelerate_configs/deepspeed_zero3.yaml \\\n"
        "  --num_processes 16 --num_machines 2 --main_process_ip ${HEAD} examples/scripts/dpo.py \\\n"
        "  --model_name_or_path m/x --dataset_name ${DATA} --per_device_train_batch_size 2 \\\n"
        "  --gradient_accumulation_steps 4 --no_gradient_checkpointing --bf16\n"
    )
    job = validate_job(TRLBackend().import_native(script).job)
    d = job.distributed
    assert (d.nodes, d.gpus_per_node, d.strategy, d.zero_stage, d.master_addr) == (2, 8, "deepspeed", 3, "${HEAD}")
    assert job.training.global_batch_size == 2 * 4 * 16 and job.gradient_accumulation_steps == 4
    assert job.data.train.path == "${DATA}" and not job.training.gradient_checkpointing
    cfg = tmp_path / "sft.yaml"
    cfg.write_text("model_name_or_path: m/x\ndataset_name: d/y\nlearning_rate: 1.0e-5\nuse_peft: true\n")
    job = validate_job(TRLBackend().import_native(cfg).job)
    assert job.method.name == "sft" and job.adapter.type == "lora" and job.training.learning_rate == 1e-5


@pytest.mark.parametrize(
    ("text", "suffix", "expect"),
    [
        ("echo hello\nls -l\n", ".sh", "not a TRL launch"),
        ("python trl/scripts/dpo.py --model_name_or_path 'x\n", ".sh", ":1: not a readable command line"),
        ("a: [1, 2\n", ".yaml", "not readable YAML"),
        ("- 1\n", ".yaml", "not a TRL config"),
    ],
)
def test_not_a_trl_config(tmp_path: Path, text: str, suffix: str, expect: str) -> None:
    path = tmp_path / f"x{suffix}"
    path.write_text(text)
    with pytest.raises(PtsdkError) as err:
        TRLBackend().import_native(path)
    assert expect in str(err.value) and str(path) in str(err.value)


def test_cli_import(ptsdk: Any, tmp_path: Path) -> None:
    entry = next(e for e in ENTRIES if e.name == "dpo_lora")
    native = write_native(entry, tmp_path / "native")
    out = tmp_path / "job.yaml"
    r = ptsdk("import", str(native), "--from", "trl", "-o", str(out))
    assert r.code == 0, r.err
    assert "lora_target_modules" in r.err and out.is_file()
    r = ptsdk("validate", str(out))
    assert r.code == 0, r.out + r.err
    junk = tmp_path / "notes.txt"
    junk.write_text("just some notes\n")
    r = ptsdk("import", str(junk), "--from", "trl")
    assert r.code == 2 and "not a TRL launch" in r.err and "Traceback" not in r.err


def _round_trip_clean(path: Path) -> tuple[Any, list[str]]:
    """Import, validate, check feasibility, translate back: the job and the unexplained differences."""
    backend = TRLBackend()
    result = backend.import_native(path)
    job = validate_job(result.job)
    assert feasibility(job, {"trl": TRLBackend})["trl"].ok, feasibility(job, {"trl": TRLBackend})["trl"].reasons()
    plan = backend.translate(job)
    return job, unexplained(result.settings, back_settings(plan), [*result.notes, *plan.notes])


def test_new_spec_fields_are_imported(tmp_path: Path) -> None:
    """Issue #12: native settings that now have spec fields land there (not in backend_options), and come
    back from the translation."""
    sft = tmp_path / "sft.yaml"
    sft.write_text(
        "model_name_or_path: m/x\ndataset_name: openai/gsm8k\ndataset_config: main\nnum_train_epochs: 2\n"
        "lr_scheduler_type: cosine_with_min_lr\nlr_scheduler_kwargs: {min_lr_rate: 0.05}\n"
        "adam_beta1: 0.85\nadam_beta2: 0.95\nadam_epsilon: 1.0e-6\npadding_free: true\npacking: true\n"
        "eos_token: <|im_end|>\npad_token: <|pad|>\nsave_strategy: steps\nsave_steps: 0.25\n"
        "eval_strategy: epoch\n"
    )
    job, left = _round_trip_clean(sft)
    assert left == []
    t, o = job.training, job.output
    assert (t.lr_scheduler, t.min_lr_ratio) == ("cosine", 0.05)
    assert (t.adam_beta1, t.adam_beta2, t.adam_epsilon) == (0.85, 0.95, 1e-6) and t.padding_free
    assert job.data.train.subset == "main" and job.data.eval is not None and job.data.eval.subset == "main"
    assert (job.model.eos_token, job.model.pad_token) == ("<|im_end|>", "<|pad|>")
    assert (o.saves_per_epoch, o.save_steps, o.evals_per_epoch, o.eval_steps) == (2, None, 1, None)
    assert not job.backend_options

    grpo = tmp_path / "grpo.yaml"
    grpo.write_text(
        "model_name_or_path: m/x\ndataset_name: d/y\nreward_funcs: accuracy_reward\nnum_generations: 4\n"
        "per_device_train_batch_size: 4\ngradient_accumulation_steps: 2\nsteps_per_generation: 4\n"
        "num_iterations: 2\nbeta: 0.04\nuse_vllm: true\nvllm_mode: server\nvllm_server_host: 10.0.0.5\n"
        "vllm_server_port: 8001\n"
    )
    job, left = _round_trip_clean(grpo)
    assert left == []
    m = job.method
    assert (m.rollout_batch_size, m.epochs_per_rollout, m.kl_coef) == (4, 2, 0.04)  # 4 x 4 = 16 completions
    assert job.rollout is not None and job.rollout.server == "10.0.0.5:8001"
    assert not job.backend_options

    # What the spec cannot say stays a passthrough: a vLLM host given as a shell variable, a generation batch
    # that is not whole optimizer steps.
    odd = tmp_path / "grpo_odd.yaml"
    odd.write_text(
        "model_name_or_path: m/x\ndataset_name: d/y\nreward_funcs: accuracy_reward\nnum_generations: 4\n"
        "per_device_train_batch_size: 4\ngradient_accumulation_steps: 2\ngeneration_batch_size: 4\n"
        "use_vllm: true\nvllm_mode: server\nvllm_server_host: ${VLLM_NODE}\n"
    )
    result = TRLBackend().import_native(odd)
    assert {"generation_batch_size", "use_vllm", "vllm_mode", "vllm_server_host"} <= set(
        result.job["backend_options"]["trl"]
    )
    assert "rollout" not in result.job


def test_record_shapes_and_data_order_are_imported(tmp_path: Path) -> None:
    """What TRL decides from a local data file's records (ShareGPT conversations, a prompt inside the
    answers) and its data order flags (shuffle_dataset for GRPO/RLOO, train_sampling_strategy elsewhere) land in
    data.message_keys / data.prompt_in_answers / training.shuffle, and come back from the translation."""
    import json

    turns = [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]
    (tmp_path / "chat.jsonl").write_text(json.dumps({"conversations": turns}) + "\n")
    sft = tmp_path / "sft.yaml"
    sft.write_text(f"model_name_or_path: m/x\ndataset_name: {tmp_path / 'chat.jsonl'}\nmax_steps: 3\n")
    job, left = _round_trip_clean(sft)
    assert left == []
    assert job.data.format == "messages" and job.data.columns == {"messages": "conversations"}
    assert job.data.message_keys == {"role": "from", "content": "value"} and not job.data.role_names

    pair = {"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    pair["rejected"] = [pair["chosen"][0], {"role": "assistant", "content": "b"}]
    (tmp_path / "pairs.jsonl").write_text(json.dumps(pair) + "\n")
    (tmp_path / "prompted.jsonl").write_text(json.dumps({"prompt": "q", **pair}) + "\n")
    for method, data, implicit in (
        ("dpo", "pairs.jsonl", True),
        ("orpo", "prompted.jsonl", True),  # maybe_extract_prompt: a text prompt beside conversations
        ("dpo", "prompted.jsonl", False),  # DPOTrainer keeps any prompt column
    ):
        path = tmp_path / f"{method}.yaml"
        path.write_text(
            f"method: {method}\nmodel_name_or_path: m/x\ndataset_name: {tmp_path / data}\n"
            "train_sampling_strategy: sequential\n"
        )
        job, left = _round_trip_clean(path)
        assert left == [] and job.data.prompt_in_answers is implicit and job.training.shuffle is False
        assert not job.backend_options

    grpo = tmp_path / "grpo.yaml"
    grpo.write_text(
        "model_name_or_path: m/x\ndataset_name: d/y\nreward_funcs: accuracy_reward\nnum_generations: 4\n"
        "per_device_train_batch_size: 4\nshuffle_dataset: false\n"
    )
    job, left = _round_trip_clean(grpo)
    assert left == [] and job.training.shuffle is False and not job.backend_options
