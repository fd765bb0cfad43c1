"""`ptsdk import --from verl` (issue 12) on vERL's upstream corpus: every example imports into a valid job,
vERL accepts the job (feasibility), and its translation gives back every native setting or a note says why.
Core test: no framework import."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from ptsdk.backends.verl.backend import VerlBackend
from ptsdk.errors import PtsdkError
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.backend import Note, Plan
from ptsdk.spec import validate_job
from roundtrip import Entry, corpus, unexplained, write_native

ENTRIES = corpus("verl")
#: Entries that cannot be a ptsdk job, each with the reason (none in the corpus today).
NOT_JOBS: dict[str, str] = {}
#: Per entry: imported / valid / feasible / round-trip clean (the lead collects the table).
RESULTS: dict[str, dict[str, Any]] = {}


def hydra_back(plan: Plan) -> dict[str, Any]:
    """The translated Hydra overrides as flat native keys (``+`` stripped, quoted values unquoted)."""
    out: dict[str, Any] = {}
    for arg in plan.args:
        key, _, value = arg.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        out[key.lstrip("+")] = value
    return out


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_corpus_round_trip(entry: Entry, tmp_path: Path) -> None:
    row: dict[str, Any] = RESULTS.setdefault(entry.name, {})
    source = write_native(entry, tmp_path)
    backend = VerlBackend()
    if entry.name in NOT_JOBS:
        with pytest.raises(PtsdkError):
            backend.import_native(source)
        row.update(imported=False, reason=NOT_JOBS[entry.name])
        return
    result = backend.import_native(source)
    row["imported"] = True
    assert result.settings == {k: str(v) if not isinstance(v, str) else v for k, v in result.settings.items()}
    assert set(result.settings) == set(entry.settings), "the importer reads every setting of the script"
    assert all(isinstance(n, Note) for n in result.notes)
    job = validate_job(result.job, source=entry.name)
    row["valid"] = True
    check = feasibility(job, {"verl": VerlBackend})["verl"]
    row["feasible"] = check.ok
    if not check.ok:
        row["refused"] = check.reasons()
        return
    plan = backend.translate(job)
    missing = unexplained(entry.settings, hydra_back(plan), [*result.notes, *plan.notes])
    row["round_trip_clean"] = not missing
    assert not missing, "\n".join(missing)


def test_method_and_batch_are_inverted_exactly(tmp_path: Path) -> None:
    """GRPO with LoRA: the optimizer batch in completions (prompts x rollout.n), the per-GPU micro batch,
    and the adapter come back as the script wrote them."""
    entry = next(e for e in ENTRIES if e.name == "grpo_lora_qwen2_5_3b")
    job = validate_job(VerlBackend().import_native(write_native(entry, tmp_path)).job)
    assert job.method.name == "grpo" and job.method.num_generations == 5
    assert job.training.global_batch_size == 16 * 5 and job.training.micro_batch_size == 40
    assert job.distributed.world_size == 2 and job.rollout is not None and job.rollout.tensor_parallel_size == 2
    assert job.adapter.type == "lora" and (job.adapter.r, job.adapter.alpha) == (64, 32)
    assert job.data.train.path == "${HOME}/data/gsm8k/train.parquet"
    back = hydra_back(VerlBackend().translate(job))
    assert (
        back["data.train_batch_size"] == "16" and back["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu"] == "40"
    )


def test_passthrough_is_accepted_by_the_translation(tmp_path: Path) -> None:
    """What lands in backend_options.verl is applied as written (never refused by the passthrough rules)."""
    entry = next(e for e in ENTRIES if e.name.startswith("gspo"))
    result = VerlBackend().import_native(write_native(entry, tmp_path))
    options = result.job["backend_options"]["verl"]
    assert options["+reward_model.reward_kwargs.max_resp_len"] == 8192
    back = hydra_back(VerlBackend().translate(validate_job(result.job)))
    assert back["actor_rollout_ref.rollout.mode"] == "async"
    noted = {n.field for n in result.notes if n.kind == "passthrough"}
    assert {k.lstrip("+") for k in options} == {k.lstrip("+") for k in noted}


def test_data_columns_and_per_epoch_cadence_map_to_job_fields(tmp_path: Path) -> None:
    """vERL's data.messages_key / data.prompt_key name the job's column (ptsdk's conversion writes vERL's default
    name back), and the SFT trainer's after_each_epoch is once per epoch; RL has no per-epoch cadence."""
    source = tmp_path / "run_sft.sh"
    source.write_text(
        "torchrun -m verl.trainer.sft_trainer data.train_files=t.parquet data.val_files=v.parquet "
        "data.messages_key=conversations model.path=Qwen/Qwen2.5-0.5B trainer.test_freq=after_each_epoch "
        "trainer.save_freq=after_each_epoch trainer.total_epochs=2\n"
    )
    result = VerlBackend().import_native(source)
    job = validate_job(result.job)
    assert job.data.columns == {"messages": "conversations"}
    assert (job.output.evals_per_epoch, job.output.saves_per_epoch, job.training.epochs) == (1, 1, 2)
    back = hydra_back(VerlBackend().translate(job))
    assert back["trainer.test_freq"] == back["trainer.save_freq"] == "after_each_epoch"
    assert "data.messages_key" not in back
    assert any(n.field == "data.messages_key" and "data.columns.messages" in n.message for n in result.notes)
    rl = tmp_path / "run_rl.sh"
    rl.write_text(
        "python3 -m verl.trainer.main_ppo algorithm.adv_estimator=grpo data.train_files=t.parquet "
        "data.prompt_key=question actor_rollout_ref.model.path=Qwen/Qwen2.5-0.5B actor_rollout_ref.rollout.n=4 "
        "trainer.save_freq=after_each_epoch\n"
    )
    result = VerlBackend().import_native(rl)
    job = validate_job(result.job)
    assert job.data.columns == {"prompt": "question"} and job.output.saves_per_epoch is None
    assert hydra_back(VerlBackend().translate(job))["data.prompt_key"] == "prompt"
    assert any(n.field == "trainer.save_freq" and n.kind == "dropped" for n in result.notes)


def test_zz_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """The per-entry table (runs last in this file)."""
    rows = [RESULTS.get(e.name, {}) for e in ENTRIES]
    counts = {k: sum(bool(r.get(k)) for r in rows) for k in ("imported", "valid", "feasible", "round_trip_clean")}
    with capsys.disabled():
        print(f"\nverl import: {len(ENTRIES)} entries, " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for e, r in zip(ENTRIES, rows, strict=True):
            cells = " / ".join("yes" if r.get(k) else "no" for k in counts)
            print(f"  {e.name}: {cells}{' (' + r['reason'] + ')' if 'reason' in r else ''}")
    if len(RESULTS) == len(ENTRIES):
        assert counts["imported"] == len(ENTRIES) - len(NOT_JOBS)
        assert counts["round_trip_clean"] == counts["feasible"]


def test_cli_import_writes_a_valid_job(ptsdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A PPO script with a reward model (hub ids, a local data file): `ptsdk import -o` writes a job that
    `ptsdk validate --backend verl` accepts."""
    (tmp_path / "train.jsonl").write_text('{"prompt": "What is 2 + 2?"}\n' * 8)
    source = tmp_path / "run_ppo.sh"
    source.write_text(
        "set -x\npython3 -m verl.trainer.main_ppo algorithm.adv_estimator=gae data.train_files=train.jsonl \\\n"
        "  data.train_batch_size=8 actor_rollout_ref.actor.ppo_mini_batch_size=8 \\\n"
        "  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 actor_rollout_ref.model.path=Qwen/Qwen2.5-0.5B \\\n"
        "  critic.model.path=Qwen/Qwen2.5-0.5B reward_model.enable=True reward_model.model.path=org/rm \\\n"
        "  trainer.n_gpus_per_node=2 actor_rollout_ref.rollout.tensor_model_parallel_size=1 \\\n"
        "  data.filter_overlong_prompts=True trainer.total_epochs=1\n"
    )
    out = tmp_path / "job.yaml"
    got = ptsdk("import", str(source), "--from", "verl", "-o", str(out))
    assert got.code == 0, got.err
    assert "data.filter_overlong_prompts" not in got.err and f"wrote {out}" in got.err
    job = yaml.safe_load(out.read_text())
    assert job["data"]["truncation"] == "drop"  # vERL's filter_overlong_prompts
    assert job["method"]["reward_model"] == "org/rm" and job["training"]["global_batch_size"] == 8
    checked = ptsdk("validate", str(out), "--backend", "verl")
    assert checked.code == 0, checked.out + checked.err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("model:\n  name_or_path: x\n", "no vERL launch found"),
        ("python3 -m verl.trainer.main_ppo 'data.train_files=/a.parquet\n", "cannot split"),
        ("python3 -m verl.trainer.main_ppo data.train_files\n", "is not a Hydra override"),
        ("python3 -m verl.trainer.main_ppo algorithm.adv_estimator=remax data.train_files=a.parquet\n", "remax"),
    ],
)
def test_bad_input_is_exit_2(ptsdk, tmp_path: Path, text: str, says: str) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "run.sh"
    source.write_text(text)
    got = ptsdk("import", str(source), "--from", "verl")
    assert got.code == 2, got.out + got.err
    assert says in got.err and str(source) in got.err
    assert "Traceback" not in got.err


def test_continued_lines_and_other_commands(tmp_path: Path) -> None:
    """set -x, exports and comments are ignored; backslash continuations are one command; +key/~key kept."""
    source = tmp_path / "run.sh"
    args = ["data.train_files=$HOME/t.parquet", "actor_rollout_ref.model.path=Qwen/Qwen2.5-0.5B", "+trainer.x=1"]
    source.write_text(
        "#!/bin/bash\nset -x\nexport VLLM_ATTENTION_BACKEND=XFORMERS\n# a comment\n"
        "python3 -m verl.trainer.main_ppo \\\n    algorithm.adv_estimator=grpo \\\n"
        "    actor_rollout_ref.rollout.n=4 \\\n"
        + " \\\n    ".join(shlex.quote(a) for a in args)
        + " \\\n    ~trainer.y $@\n"
    )
    result = VerlBackend().import_native(source)
    assert result.job["data"]["train"]["path"] == "$HOME/t.parquet"
    assert result.job["backend_options"]["verl"]["+trainer.x"] == 1
    assert "~trainer.y" in result.job["backend_options"]["verl"]
    validate_job(result.job)
