"""The same SFT-LoRA job on TRL and Axolotl, for real: parity first, then loss curves that agree."""

from __future__ import annotations

import json

import jsonschema
import pytest
from ptsdk.compare import REPORT_SCHEMA

pytestmark = [pytest.mark.trl, pytest.mark.axolotl]
SCHEMA = json.loads(REPORT_SCHEMA.read_text())
# Aligned, the two frameworks compute the same float32 optimization; measured max |d loss| 4.8e-7.
LOSS_TOLERANCE = 1e-4


def test_trl_and_axolotl_agree_on_an_aligned_sft_lora_job(ptsdk, example_job, tmp_path, trl_env, axolotl_env) -> None:
    job = example_job("compare_sft_lora.yaml", training={"max_steps": 6}, output={"dir": str(tmp_path / "runs")})
    out = tmp_path / "report"
    r = ptsdk("compare", str(job), "--backends", "trl,axolotl", "--out", str(out), "--quiet")
    assert r.code == 0, r.err
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["unexplained_differences"] == []
    assert [row["key"] for row in report["parity"] if row["differs"]] == []
    rows = {row["key"]: row["values"] for row in report["parity"]}
    # Measured, not planned: the same token sequences and the same real tokens per step.
    assert (
        rows["tokenized_data_sha"]["trl"] and rows["tokenized_data_sha"]["trl"] == rows["tokenized_data_sha"]["axolotl"]
    )
    assert rows["global_batch_tokens"]["trl"] == rows["global_batch_tokens"]["axolotl"] > 0
    assert [s["status"] for s in report["summary"]] == ["succeeded", "succeeded"]
    assert len(report["aligned_loss"]) == 6  # every step lines up by tokens seen
    assert report["max_abs_loss_diff"] < LOSS_TOLERANCE, report["aligned_loss"]
    md = (out / "report.md").read_text()
    assert md.index("## Parity") < md.index("## Results")
    import matplotlib.image

    for name in ("loss_vs_tokens.png", "loss_vs_time.png", "throughput.png"):
        assert matplotlib.image.imread(out / name).shape[0] > 100


def test_naive_job_differences_are_flagged_with_their_source(ptsdk, example_job) -> None:
    """Without alignment (shuffled data, fresh adapters, accumulation) the diff names each difference and why."""
    r = ptsdk("translate", str(example_job("sft_lora.yaml")), "--backend", "trl", "--diff", "axolotl")
    assert r.code == 0, r.err
    lines = {line.split()[0]: line for line in r.out.splitlines()[1:]}
    assert "Axolotl creates the adapter without seeding it first" in lines["adapter_init"]
    assert "per micro-batch mean" in lines["loss_normalization"]
    assert "transformers' RandomSampler" in lines["data_order"] and "shuffle_merged_datasets" in lines["data_order"]
    assert "<-" not in lines["learning_rate"] and "<-" not in lines["micro_batch"]


# Measured on the example (CPU, fp32, torch 2.13 in both environments): the losses agree to the last bit.
TRL_VERL_LOSS_TOLERANCE = 1e-4


@pytest.mark.trl
@pytest.mark.verl
def test_trl_and_verl_agree_on_one_sft_job(ptsdk, example_job, tmp_path, trl_env, verl_env) -> None:
    """`ptsdk compare` with vERL's own SFT trainer (CPU smoke mode) against TRL: every difference in the
    parity table carries its source, the token sequences are the same (vERL's dataset class against TRL's
    tokenization), and the loss curves, side by side in the report, agree at equal tokens seen."""
    job = example_job("compare_sft_trl_verl.yaml", training={"max_steps": 4}, output={"dir": str(tmp_path / "runs")})
    out = tmp_path / "report"
    r = ptsdk("compare", str(job), "--backends", "trl,verl", "--out", str(out), "--quiet")
    assert r.code == 0, r.err
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert [s["status"] for s in report["summary"]] == ["succeeded", "succeeded"]
    assert report["unexplained_differences"] == []
    differing = {row["key"]: row for row in report["parity"] if row["differs"]}
    # vERL's SFT sampler shuffles whatever the job says: the one difference, with vERL's reason.
    assert set(differing) == {"data_order"}, differing
    assert "DistributedSampler, seed 0" in differing["data_order"]["sources"]["verl"]
    rows = {row["key"]: row["values"] for row in report["parity"]}
    assert rows["tokenized_data_sha"]["trl"] and rows["tokenized_data_sha"]["trl"] == rows["tokenized_data_sha"]["verl"]
    assert rows["tokenized_rows"]["verl"] == 256 and rows["global_batch_tokens"]["verl"] > 0
    assert rows["precision"] == {"trl": "fp32", "verl": "fp32"}
    # Both curves, at every step, at the same tokens seen.
    assert len(report["aligned_loss"]) == 4 and all(set(a["loss"]) == {"trl", "verl"} for a in report["aligned_loss"])
    assert report["max_abs_loss_diff"] < TRL_VERL_LOSS_TOLERANCE, report["aligned_loss"]
    md = (out / "report.md").read_text()
    assert md.index("## Parity") < md.index("## Results") < md.index("![loss_vs_tokens.png](loss_vs_tokens.png)")
    assert "UNEXPLAINED" not in md
    import matplotlib.image

    assert matplotlib.image.imread(out / "loss_vs_tokens.png").shape[0] > 100
