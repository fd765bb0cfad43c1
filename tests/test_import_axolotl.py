"""`ptsdk import --from axolotl` on the upstream corpus (issue 12): every entry imports to a valid job, the
job translates back, and every native setting that does not come back equal is named by a note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ptsdk.backends.axolotl.backend import AxolotlBackend
from ptsdk.errors import PtsdkError
from ptsdk.matrix.check import feasibility
from ptsdk.spec import validate_job

from tests.roundtrip import Entry, corpus, flatten, unexplained, write_native

ENTRIES = corpus("axolotl")
#: Guide fragments without model or data: alone they are refused (no base_model); the round trip adds both.
FRAGMENTS = {e.name for e in ENTRIES if e.name.endswith("_fragment")}
#: Entries ptsdk imports faithfully but its Axolotl backend refuses to run, and why (feasibility's reason).
#: (The two GRPO guide entries use an external vLLM server: rollout.server, which Axolotl's GRPO takes.)
REFUSED = {
    "qwen3_8b_fsdp2_tp_cp": "distributed.tensor_parallel_size",  # tensor parallelism
}
RESULTS: dict[str, dict[str, bool]] = {}


def _import(entry: Entry, folder: Path) -> tuple[Any, Path]:
    path = write_native(entry, folder)
    if entry.name in FRAGMENTS:
        with pytest.raises(PtsdkError, match="no base_model"):
            AxolotlBackend().import_native(path)
        extra = {"base_model": "org/model", "datasets": [{"path": "data/prefs.jsonl", "type": "chatml.intel"}]}
        path.write_text(path.read_text() + yaml.safe_dump(extra, sort_keys=False))
    return AxolotlBackend().import_native(path), path


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_corpus_round_trip(entry: Entry, tmp_path: Path) -> None:
    row = RESULTS.setdefault(entry.name, dict.fromkeys(("imported", "valid", "feasible", "clean"), False))
    result, _ = _import(entry, tmp_path)
    row["imported"] = True
    assert result.settings == {**entry.settings, **result.settings}, "settings hold what the file says"
    for note in result.notes:
        assert note.field in result.settings or note.field == "distributed", note
    job = validate_job(result.job, source=entry.name)
    row["valid"] = True
    assert job.method.name == entry.method
    verdict = feasibility(job, {"axolotl": AxolotlBackend})["axolotl"]
    if entry.name in REFUSED:
        assert not verdict.ok and any(REFUSED[entry.name] in r for r in verdict.reasons()), verdict.reasons()
        return
    assert verdict.ok, verdict.reasons()
    row["feasible"] = True
    plan = AxolotlBackend().translate(job)
    config = next(f.content for f in plan.files if f.path == plan.native_config)
    back = flatten(yaml.safe_load(config or ""))
    problems = unexplained(entry.settings, back, [*result.notes, *plan.notes])
    assert not problems, "\n".join(problems)
    row["clean"] = True


def test_zz_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """The per-entry table (the lead collects it): imported / valid / feasible / round trip clean."""
    if not RESULTS:
        pytest.skip("run with the corpus tests")
    lines = [f"{'entry':34} imported valid feasible clean"]
    for name, row in sorted(RESULTS.items()):
        lines.append(f"{name:34} " + " ".join(f"{'yes' if row[k] else 'no':>{len(k)}}" for k in row))
    totals = {k: sum(r[k] for r in RESULTS.values()) for k in ("imported", "valid", "feasible", "clean")}
    lines.append(f"totals ({len(RESULTS)} entries): " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert totals["imported"] == totals["valid"] == len(RESULTS)
    assert totals["feasible"] == totals["clean"] == len(set(RESULTS) - set(REFUSED))


def test_cli_import_writes_a_valid_job(ptsdk, tmp_path: Path) -> None:
    entry = next(e for e in ENTRIES if e.name == "llama3_qlora_1b")
    src = write_native(entry, tmp_path)
    out = tmp_path / "job.yaml"
    r = ptsdk("import", str(src), "--from", "axolotl", "-o", str(out))
    assert r.code == 0, r.err
    assert out.is_file() and yaml.safe_load(out.read_text())["model"]["pad_token"] == "<|end_of_text|>"
    r = ptsdk("validate", str(out))
    assert r.code == 0, r.out + r.err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("just some words\n", "not an Axolotl config"),
        ("base_model: [unclosed\n", ":2: not an Axolotl config: YAML does not parse"),
        ("datasets:\n- path: a.jsonl\n", "no base_model"),
        ("base_model: org/m\ndatasets: []\n", ":2: not a complete Axolotl config: datasets"),
        ("base_model: org/m\nrl: ppo\ndatasets:\n- path: a.jsonl\n", ":2: rl: ppo has no ptsdk method"),
    ],
)
def test_bad_input_is_exit_2(ptsdk, tmp_path: Path, text: str, says: str) -> None:
    src = tmp_path / "cfg.yaml"
    src.write_text(text)
    r = ptsdk("import", str(src), "--from", "axolotl")
    assert r.code == 2 and says in r.err and str(src) in r.err and "Traceback" not in r.err, r.err


def test_batch_warmup_and_paths_invert_translate(tmp_path: Path) -> None:
    """The job's global batch is what translate() divides back into Axolotl's micro batch and accumulation;
    warmup_steps of max_steps comes back exactly; ${VAR} paths, eval data and passthrough keys survive."""
    src = tmp_path / "cfg.yaml"
    src.write_text(
        yaml.safe_dump(
            {
                "base_model": "org/model",
                "datasets": [{"path": "${DATA}/train.jsonl", "type": "alpaca"}],
                "test_datasets": [{"path": "${DATA}/eval.jsonl", "type": "alpaca", "split": "train"}],
                "dp_shard_size": 2,
                "fsdp_version": 2,
                "fsdp_config": {"offload_params": False, "reshard_after_forward": True},
                "micro_batch_size": 3,
                "gradient_accumulation_steps": 4,
                "max_steps": 7,
                "warmup_steps": 3,
                "eval_steps": 5,
                "bf16": True,
                "sequence_len": 512,
                "special_tokens": {"pad_token": "<pad>"},
            }
        )
    )
    result = AxolotlBackend().import_native(src)
    job = validate_job(result.job)
    assert (job.training.global_batch_size, job.distributed.gpus_per_node) == (24, 2)
    assert job.data.train.path == "${DATA}/train.jsonl" and job.data.eval is not None
    assert job.distributed.strategy == "fsdp" and job.output.eval_steps == 5
    assert result.job["backend_options"] == {"axolotl": {"dp_shard_size": 2}}
    assert job.model.pad_token == "<pad>"
    plan = AxolotlBackend().translate(job)
    back = flatten(yaml.safe_load(next(f.content for f in plan.files if f.path == plan.native_config) or ""))
    assert (back["micro_batch_size"], back["gradient_accumulation_steps"], back["warmup_steps"]) == (3, 4, 3)
    assert back["test_datasets"][0]["path"] == "${DATA}/eval.jsonl"
    assert not unexplained(result.settings, back, [*result.notes, *plan.notes])
    kinds = {n.field: n.kind for n in result.notes}
    assert kinds["fsdp_config.reshard_after_forward"] == "dropped" and kinds["dp_shard_size"] == "passthrough"


def test_native_settings_with_spec_fields_land_in_those_fields(tmp_path: Path) -> None:
    """Issue 12: Alpaca datasets, hub subsets, val_set_size, special tokens, Adam betas/epsilon, the cosine floor,
    batch flattening, per-epoch cadence and the GRPO rollout keys are job fields now, and translate back equal."""
    sft = {
        "base_model": "org/model",
        "datasets": [{"path": "org/alpaca", "name": "cleaned", "type": "alpaca"}],
        "val_set_size": 0.05,
        "special_tokens": {"pad_token": "<pad>", "eos_token": "<|eot_id|>"},
        "adam_beta1": 0.9,
        "adam_beta2": 0.95,
        "adam_epsilon": 1e-6,
        "lr_scheduler": "cosine",
        "cosine_min_lr_ratio": 0.1,
        "attn_implementation": "flash_attention_2",
        "batch_flattening": True,
        "micro_batch_size": 4,
        "num_epochs": 2,
        "learning_rate": 2e-5,
        "saves_per_epoch": 1,
        "evals_per_epoch": 4,
        "save_total_limit": 3,
    }
    grpo = {
        "base_model": "org/model",
        "rl": "grpo",
        "datasets": [{"path": "openai/gsm8k", "name": "main", "split": "train"}],
        "sequence_len": 1024,
        "micro_batch_size": 8,
        "learning_rate": 1e-6,
        "max_steps": 10,
        "trl": {
            "beta": 0.04,
            "num_generations": 4,
            "generation_batch_size": 32,
            "num_iterations": 2,
            "reward_funcs": ["rewards.correct"],
            "use_vllm": True,
            "vllm_mode": "server",
            "vllm_server_host": "10.0.0.2",
            "vllm_server_port": 8000,
        },
    }
    for name, native in (("sft", sft), ("grpo", grpo)):
        src = tmp_path / f"{name}.yaml"
        src.write_text(yaml.safe_dump(native))
        result = AxolotlBackend().import_native(src)
        job = validate_job(result.job)
        assert feasibility(job, {"axolotl": AxolotlBackend})["axolotl"].ok
        plan = AxolotlBackend().translate(job)
        back = flatten(yaml.safe_load(next(f.content for f in plan.files if f.path == plan.native_config) or ""))
        assert not unexplained(flatten(native), back, [*result.notes, *plan.notes])
        assert "backend_options" not in result.job, result.job.get("backend_options")
        if name == "sft":
            d, t, o = job.data, job.training, job.output
            assert (d.format, d.train.subset, d.eval_split) == ("instruction", "cleaned", 0.05)
            assert (job.model.pad_token, job.model.eos_token) == ("<pad>", "<|eot_id|>")
            assert (t.adam_beta2, t.adam_epsilon, t.min_lr_ratio, t.padding_free) == (0.95, 1e-6, 0.1, True)
            assert (o.saves_per_epoch, o.evals_per_epoch, o.save_total_limit) == (1, 4, 3)
        else:
            m = job.method
            assert job.rollout is not None and job.rollout.server == "10.0.0.2:8000"
            assert (m.max_prompt_length, m.rollout_batch_size, m.epochs_per_rollout, m.kl_coef) == (None, 8, 2, 0.04)
            assert job.data.train.subset == "main" and "max_length" not in result.job["data"]


@pytest.mark.parametrize(
    ("entry", "data"),
    [
        (
            {
                "type": "chat_template",
                "field_messages": "conversations",
                "message_property_mappings": {"role": "from", "content": "value", "reasoning_content": "thought"},
                "roles": {"user": ["human", "user"], "assistant": ["gpt"], "system": ["system"]},
            },
            {
                "columns": {"messages": "conversations"},
                "message_keys": {"role": "from", "content": "value", "thinking": "thought"},
                "role_names": {"human": "user", "gpt": "assistant"},
            },
        ),
        (  # the legacy keys, and no roles: Axolotl's default map says human/gpt
            {"type": "chat_template", "message_field_role": "from", "message_field_content": "value"},
            {"message_keys": {"role": "from", "content": "value"}, "role_names": {"human": "user", "gpt": "assistant"}},
        ),
        (  # field_thinking counts without mappings
            {"type": "chat_template", "field_thinking": "reasoning"},
            {"message_keys": {"thinking": "reasoning"}},
        ),
        (  # identity mappings say nothing
            {"type": "chat_template", "message_property_mappings": {"role": "role", "content": "content"}},
            {},
        ),
    ],
    ids=["sharegpt", "legacy", "thinking", "identity"],
)
def test_chat_template_mappings_are_message_keys_and_role_names(tmp_path: Path, entry: dict, data: dict) -> None:
    native = {"base_model": "org/model", "datasets": [{"path": "org/chats", **entry}], "micro_batch_size": 2}
    src = tmp_path / "cfg.yaml"
    src.write_text(yaml.safe_dump(native))
    result = AxolotlBackend().import_native(src)
    assert {k: result.job["data"].get(k) for k in data} == data
    assert not {"message_keys", "role_names"} - set(data) & set(result.job["data"])
    job = validate_job(result.job)
    assert feasibility(job, {"axolotl": AxolotlBackend})["axolotl"].ok
    plan = AxolotlBackend().translate(job)
    back = yaml.safe_load(next(f.content for f in plan.files if f.path == plan.native_config) or "")
    assert not unexplained(flatten(native), flatten(back), [*result.notes, *plan.notes])
    # Translated back, Axolotl's prompter sees the same mapping (legacy keys become message_property_mappings).
    written = back["datasets"][0]
    wanted = {**entry.get("message_property_mappings", {})}
    if "message_field_role" in entry:
        wanted = {"role": entry["message_field_role"], "content": entry["message_field_content"]}
    if "field_thinking" in entry:
        wanted = {"role": "role", "content": "content", "reasoning_content": entry["field_thinking"]}
    assert written.get("message_property_mappings", wanted if not data else None) == wanted


def test_argilla_chat_dpo_is_a_prompt_in_the_answers(tmp_path: Path) -> None:
    native = {
        "base_model": "org/model",
        "rl": "dpo",
        "chat_template": "tokenizer_default",
        "datasets": [{"path": "org/pairs", "type": "chat_template.argilla_chat", "field_chosen": "good"}],
        "micro_batch_size": 2,
    }
    src = tmp_path / "cfg.yaml"
    src.write_text(yaml.safe_dump(native))
    result = AxolotlBackend().import_native(src)
    assert result.job["data"]["prompt_in_answers"] is True and result.job["data"]["columns"] == {"chosen": "good"}
    job = validate_job(result.job)
    assert feasibility(job, {"axolotl": AxolotlBackend})["axolotl"].ok
    plan = AxolotlBackend().translate(job)
    back = flatten(yaml.safe_load(next(f.content for f in plan.files if f.path == plan.native_config) or ""))
    assert not unexplained(flatten(native), back, [*result.notes, *plan.notes])
    assert back["datasets"][0]["type"] == "chat_template.argilla_chat"
