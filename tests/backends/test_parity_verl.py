"""TRL and vERL on one shuffled SFT-LoRA job, for real: ptsdk owns vERL's data order (every epoch laid out for its
sampler) and its starting adapter (model.lora_adapter_path), so the two run the same optimization step for step,
across an epoch boundary and through the Trainer's short last step of an epoch."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import EXAMPLES
from ptsdk.compare import PARITY_RTOL, REPORT_SCHEMA

pytestmark = [pytest.mark.trl, pytest.mark.verl]


def compare(ptsdk, job: Path, backends: str, out: Path) -> dict:  # type: ignore[no-untyped-def]
    r = ptsdk("compare", str(job), "--backends", backends, "--out", str(out), "--quiet")
    assert r.code == 0, r.err
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, json.loads(REPORT_SCHEMA.read_text()))
    print(f"\n{backends}: largest loss difference {report['max_rel_loss_diff']:.3g} relative")
    return report


def test_trl_and_verl_read_ptsdks_order_from_ptsdks_adapter(ptsdk, example_job, tmp_path, trl_env, verl_env) -> None:
    """20 chat records in global batches of 8 (micro-batches of 4: accumulation 2), 4 steps: epoch 0 is steps 1-3,
    the third a short step of 4 rows (the Trainer's last micro-batches of the epoch; vERL's batch filled with rows
    that carry no loss token), and step 4 starts epoch 1 in its own order. Both read ptsdk's order of both epochs,
    start from the same adapter and log the same tokens and losses at every step."""
    job = example_job(
        "compare_sft_trl_verl.yaml",
        data={"train": {"path": str(EXAMPLES / "data" / "chat_train.jsonl"), "max_samples": 20}},
        training={"max_steps": 4, "shuffle": True, "micro_batch_size": 4},
        adapter={"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        output={"dir": str(tmp_path / "runs")},
    )
    report = compare(ptsdk, job, "trl,verl", tmp_path / "report")
    assert [s["status"] for s in report["summary"]] == ["succeeded", "succeeded"]
    assert report["unexplained_differences"] == []
    assert [row["key"] for row in report["parity"] if row["differs"]] == []
    rows = {row["key"]: row["values"] for row in report["parity"]}
    assert rows["data_order_sha"]["trl"].endswith("(2 epochs)")
    assert rows["data_order_sha"]["trl"] == rows["data_order_sha"]["verl"]
    assert rows["start_adapter_sha"]["trl"] and rows["start_adapter_sha"]["trl"] == rows["start_adapter_sha"]["verl"]
    assert rows["tokenized_data_sha"]["trl"] == rows["tokenized_data_sha"]["verl"]
    # Aligned by tokens seen: the short step counts only its real rows on both (vERL's fillers left out).
    assert report["aligned_by"] == "tokens_seen" and len(report["aligned_loss"]) == 4, report["aligned_loss"]
    assert report["max_rel_loss_diff"] < PARITY_RTOL and report["first_divergence"] is None, report["aligned_loss"]
    verl_run = Path(next(s["run_dir"] for s in report["summary"] if s["backend"] == "verl"))
    layout = json.loads((verl_run / "data" / "train_layout.json").read_text())
    assert (layout["rows"], layout["epochs"], layout["steps_per_epoch"]) == (20, 2, 3)
    assert layout["filler_rows"] == {"3": 4, "6": 4} and layout["filler_row_tokens"] > 0
