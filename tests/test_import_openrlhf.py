"""Issue 12: `ptsdk import --from openrlhf` over the upstream corpus (no framework import).

Every corpus entry is written as its launch script, imported, validated, checked for feasibility,
translated back and compared flag by flag: what does not come back must be named by a note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ptsdk.backends.openrlhf.backend import OpenRLHFBackend
from ptsdk.errors import PtsdkError
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.passthrough import parse_flags
from ptsdk.spec import validate_job

from tests.roundtrip import corpus, unexplained, write_native

ENTRIES = corpus("openrlhf")
#: Entries no ptsdk job can stand for, with the reason the importer must give.
NOT_JOBS = {
    "rm_llama3_8b": "trains a reward model",
    "reinforce_baseline_agent_qwen3_4b": "an agent function rolls out and scores",
}
RESULTS: dict[str, dict[str, Any]] = {}


def _back(args: list[str]) -> dict[str, Any]:
    return {
        flag[2:]: True if values is None else values[0] if len(values) == 1 else values
        for flag, values in parse_flags(args).items()
    }


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_corpus_entry_round_trips(entry, tmp_path: Path) -> None:
    backend = OpenRLHFBackend()
    source = write_native(entry, tmp_path)
    row = RESULTS.setdefault(entry.name, {"imported": False, "valid": False, "feasible": False, "clean": False})
    if entry.name in NOT_JOBS:
        with pytest.raises(PtsdkError, match=NOT_JOBS[entry.name]) as err:
            backend.import_native(source)
        assert f"{source}:" in err.value.message
        row["imported"] = "refused: " + NOT_JOBS[entry.name]
        return
    result = backend.import_native(source)
    row["imported"] = True
    assert result.settings == {k: v for k, v in entry.settings.items()}
    job = validate_job(result.job, source=entry.name)
    row["valid"] = True
    verdict = feasibility(job, {backend.name: OpenRLHFBackend})[backend.name]
    if not verdict.ok:
        row["feasible"] = "; ".join(verdict.reasons())
        pytest.skip(f"openrlhf refuses the imported job: {verdict.reasons()}")
    row["feasible"] = True
    plan = backend.translate(job)
    lost = unexplained(entry.settings, _back(plan.args), [*result.notes, *plan.notes])
    assert not lost, "\n".join(lost)
    row["clean"] = True
    for note in result.notes:
        assert note.kind in ("set", "defaulted", "approximated", "dropped", "passthrough", "derived")


def test_zz_summary() -> None:
    """The per-entry table (run after the entries): imported / valid / feasible / round-trip clean."""
    for name, row in sorted(RESULTS.items()):
        print(f"{name}: " + " ".join(f"{k}={v}" for k, v in row.items()))
    if len(RESULTS) == len(ENTRIES):
        jobs = [n for n in RESULTS if n not in NOT_JOBS]
        assert all(RESULTS[n]["imported"] is True and RESULTS[n]["valid"] for n in jobs)


def test_cli_import_writes_a_job_validate_accepts(ptsdk, tmp_path: Path) -> None:
    entry = next(e for e in ENTRIES if e.name == "sft_mixtral_8x7b_lora")
    source = write_native(entry, tmp_path / "native")
    out = tmp_path / "job.yaml"
    result = ptsdk("import", str(source), "--from", "openrlhf", "-o", str(out))
    assert result.code == 0, result.err
    assert "[passthrough] model.aux_loss_coef" in result.err
    assert ptsdk("validate", str(out)).code == 0


def test_launchers_and_shell_forms(tmp_path: Path) -> None:
    script = tmp_path / "dpo.sh"
    script.write_text(
        "#!/bin/bash\nset -x\n# a comment with openrlhf.cli.train_sft in it\n"
        "read -r -d '' cmd <<EOF\nEOF\n"
        "deepspeed --num_gpus 4 --module openrlhf.cli.train_dpo \\\n"
        "   --model.model_name_or_path ${MODEL} --data.dataset ${DATA} --train.batch_size 64 \\\n"
        "   --train.micro_batch_size 2 --model.ipo_enable --model.beta=0.2 # trailing comment\n"
    )
    result = OpenRLHFBackend().import_native(script)
    job = validate_job(result.job)
    assert job.method.name == "ipo" and job.distributed.gpus_per_node == 4
    assert job.model.name_or_path == "${MODEL}" and job.data.train.path == "${DATA}"
    assert job.gradient_accumulation_steps == 8


@pytest.mark.parametrize(
    "text, message",
    [
        ("#!/bin/bash\necho hello\n", "not an OpenRLHF launch"),
        ("python -m openrlhf.cli.train_sft --data.dataset 'x\n", "cannot parse"),
        ("python -m openrlhf.cli.train_sft stray --data.dataset x\n", "expected --flag"),
        ("python -m openrlhf.cli.train_sft --data.dataset x\n", "model.model_name_or_path is missing"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.sh"
    path.write_text(text)
    with pytest.raises(PtsdkError, match=message) as err:
        OpenRLHFBackend().import_native(path)
    assert str(path) in err.value.message


def test_cli_non_config_exits_2(ptsdk, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text\n")
    result = ptsdk("import", str(path), "--from", "openrlhf")
    assert result.code == 2
    assert "not an OpenRLHF launch" in result.err
    assert "Traceback" not in result.err
