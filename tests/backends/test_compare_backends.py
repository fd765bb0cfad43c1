"""The same SFT-LoRA job on TRL and Axolotl, for real: parity first, then loss curves that agree."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from ptsdk.compare import PARITY_RTOL, REPORT_SCHEMA

from .conftest import assert_loads

pytestmark = [pytest.mark.trl, pytest.mark.axolotl]
SCHEMA = json.loads(REPORT_SCHEMA.read_text())


def compare(ptsdk, job, backends: str, out) -> dict:  # type: ignore[no-untyped-def]
    r = ptsdk("compare", str(job), "--backends", backends, "--out", str(out), "--quiet")
    assert r.code == 0, r.err
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    print(
        f"\n{job.stem} on {backends}: largest loss difference {report['max_abs_loss_diff']:.3g} absolute, "
        f"{report['max_rel_loss_diff']:.3g} relative, over {len(report['aligned_loss'])} steps"
    )
    return report


def test_trl_and_axolotl_agree_on_the_ordinary_sft_lora_example(
    ptsdk, example_job, tmp_path, trl_env, axolotl_env
) -> None:
    """The ordinary example (shuffled, gradient accumulation 2, a fresh LoRA adapter), no alignment fields: ptsdk
    owns the data order, the starting adapter and the loss normalization, so both frameworks run the same
    optimization. 40 steps of 8 rows read the 256 rows in two epochs: both epochs' orders are ptsdk's."""
    job = example_job("sft_lora.yaml", training={"max_steps": 40}, output={"dir": str(tmp_path / "runs")})
    out = tmp_path / "report"
    report = compare(ptsdk, job, "trl,axolotl", out)
    assert report["unexplained_differences"] == []
    assert [row["key"] for row in report["parity"] if row["differs"]] == []
    rows = {row["key"]: row["values"] for row in report["parity"]}
    # Measured, not planned: the same token sequences, the same rows in each step, the same starting adapter.
    assert (
        rows["tokenized_data_sha"]["trl"] and rows["tokenized_data_sha"]["trl"] == rows["tokenized_data_sha"]["axolotl"]
    )
    assert rows["data_order_sha"]["trl"].endswith("(2 epochs)")
    assert rows["start_adapter_sha"]["trl"] and rows["start_adapter_sha"]["trl"] == rows["start_adapter_sha"]["axolotl"]
    assert rows["global_batch_tokens"]["trl"] == rows["global_batch_tokens"]["axolotl"] > 0
    assert [s["status"] for s in report["summary"]] == ["succeeded", "succeeded"]
    assert len(report["aligned_loss"]) == 40  # every step lines up by tokens seen
    assert report["max_rel_loss_diff"] < PARITY_RTOL and report["first_divergence"] is None, report["aligned_loss"]
    run = next(r["run_dir"] for r in report["summary"] if r["backend"] == "trl")
    epochs = [json.loads(line) for line in (Path(run) / "logs" / "data_order.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [0, 1] and epochs[0]["indices"] != epochs[1]["indices"]
    assert sorted(epochs[0]["indices"]) == list(range(256))
    summary = report["summary"][0]
    assert summary["final_loss"] < summary["first_loss"] - 0.3  # and it learns
    md = (out / "report.md").read_text()
    assert md.index("## Parity") < md.index("## Results")
    # Axolotl's side as a run of its own (the matrix's SFT and LoRA evidence): CPU settings generated because
    # the job says device=cpu, ptsdk's starting-adapter command first, the launch kept offline, the adapter loads.
    axolotl = Path(next(r["run_dir"] for r in report["summary"] if r["backend"] == "axolotl"))
    config = yaml.safe_load((axolotl / "axolotl_config.yaml").read_text())
    assert (config["bf16"], config["fp16"], config["tf32"]) == (False, False, False)
    assert not any(config[k] for k in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"))
    manifest = json.loads((axolotl / "manifest.json").read_text())
    assert manifest["commands"][0]["argv"][1:3] == ["ptsdk_runtime.py", "start-adapter"]
    launch = manifest["commands"][-1]["env"]
    assert launch["AXOLOTL_DO_NOT_TRACK"] == "1" and launch["HF_HUB_OFFLINE"] == "1"
    assert_loads(axolotl_env, axolotl / "model", adapter=True)
    import matplotlib.image

    for name in ("loss_vs_tokens.png", "loss_vs_time.png", "throughput.png"):
        assert matplotlib.image.imread(out / name).shape[0] > 100


def test_loss_normalization_per_micro_batch_agrees(ptsdk, example_job, tmp_path, trl_env, axolotl_env) -> None:
    """training.loss_normalization: micro_batch, applied by ptsdk in both frameworks: the same losses on data whose
    micro-batches hold different numbers of loss tokens, and not the token-weighted ones."""
    rows = [
        {"prompt": f"What is {i} + {i}?", "completion": " " + " ".join([str(2 * i)] * (1 + (i * 5) % 11))}
        for i in range(16)
    ]
    data = tmp_path / "varied.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = {"data": {"train": {"path": str(data)}, "max_length": 64}, "output": {"dir": str(tmp_path / "runs")}}
    job = example_job("sft_lora.yaml", training={"max_steps": 3, "loss_normalization": "micro_batch"}, **common)
    report = compare(ptsdk, job, "trl,axolotl", tmp_path / "report")
    by_key = {row["key"]: row["values"] for row in report["parity"]}
    assert by_key["loss_normalization"] == {"trl": "per micro-batch mean", "axolotl": "per micro-batch mean"}
    assert report["unexplained_differences"] == [] and report["first_divergence"] is None, report["aligned_loss"]
    tokens = example_job("sft_lora.yaml", "tokens", training={"max_steps": 3}, **common)
    r = ptsdk("run", str(tokens), "--backend", "trl", "--run-dir", str(tmp_path / "tokens"), "--quiet")
    assert r.code == 0, r.err
    records = map(json.loads, (tmp_path / "tokens" / "metrics.jsonl").read_text().splitlines())
    token_losses = [m["loss"] for m in records if m["kind"] == "train"]
    # Step 1 already differs: its two micro-batches hold different numbers of loss tokens.
    assert abs(report["aligned_loss"][0]["loss"]["trl"] - token_losses[0]) > 1e-4 * abs(token_losses[0])


def train_log(report: dict, backend: str) -> list[dict]:
    run = next(r["run_dir"] for r in report["summary"] if r["backend"] == backend)
    lines = (Path(run) / "logs" / "trainer_log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r and "train_loss" not in r]


def test_trl_and_axolotl_agree_on_the_dpo_example(ptsdk, example_job, tmp_path, trl_env, axolotl_env) -> None:
    """The DPO example on TRL 1.16 and on Axolotl (TRL 1.9 underneath): the same loss at every step, and the
    example learns its preference on both. Axolotl builds a DPO adapter from its config alone, so ptsdk's plugin
    copies the starting adapter in (without it the frameworks start from different adapters)."""
    job = example_job("dpo.yaml", output={"dir": str(tmp_path / "runs")})
    report = compare(ptsdk, job, "trl,axolotl", tmp_path / "report")
    assert report["unexplained_differences"] == [] and [r["key"] for r in report["parity"] if r["differs"]] == []
    assert len(report["aligned_loss"]) == 12
    assert report["max_rel_loss_diff"] < PARITY_RTOL and report["first_divergence"] is None, report["aligned_loss"]
    for backend, env in (("trl", trl_env), ("axolotl", axolotl_env)):
        steps = train_log(report, backend)
        margins = [r["rewards/margins"] for r in steps]
        assert steps[-1]["loss"] < 0.45 < 0.69 < steps[0]["loss"]  # well below ln 2
        assert margins[-1] > 0.5 > margins[0]
        run = Path(next(r["run_dir"] for r in report["summary"] if r["backend"] == backend))
        assert_loads(env, run / "model", adapter=True)  # the matrix's DPO evidence on Axolotl


def test_trl_and_axolotl_agree_on_the_grpo_example(ptsdk, example_job, tmp_path, trl_env, axolotl_env) -> None:
    """The GRPO example on TRL 1.16 and on Axolotl (TRL 1.9): the same prompts, the same sampled completions and
    rewards in every logged reward call, the same loss at every step, a mean reward (both reward functions, each
    logged) that rises on both, and a saved model that loads. The matrix's GRPO and reward-function evidence."""
    job = example_job("grpo.yaml", output={"dir": str(tmp_path / "runs")})
    report = compare(ptsdk, job, "trl,axolotl", tmp_path / "report")
    assert report["unexplained_differences"] == [] and [r["key"] for r in report["parity"] if r["differs"]] == []
    # Both log 15 steps x 2 reward functions; none of the calls differs.
    assert report["rollouts"] == {"compared": 30}, report["rollouts"]
    assert len(report["aligned_loss"]) == 15 and report["first_divergence"] is None, report["aligned_loss"]
    envs = {"trl": trl_env, "axolotl": axolotl_env}
    for backend in ("trl", "axolotl"):
        run = Path(next(r["run_dir"] for r in report["summary"] if r["backend"] == backend))
        train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        train = [m for m in train if m["kind"] == "train"]
        assert all(m["reward"] is not None and 0.0 <= m["reward"] <= 2.0 for m in train)  # two rewards, summed
        assert "rewards/correct/mean" in train[0]["extra"] and "rewards/digits/mean" in train[0]["extra"]
        rewards = [m["reward"] for m in train]
        first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
        print(f"GRPO example on {backend}: mean reward {first:.3f} (steps 1-3) -> {last:.3f} (last 3 steps)")
        assert last > first + 0.3, rewards
        assert_loads(envs[backend], run / "model", adapter=False)
    # Axolotl: the reward file was copied into its run directory and named as an import path.
    axolotl_run = Path(next(r["run_dir"] for r in report["summary"] if r["backend"] == "axolotl"))
    assert (axolotl_run / "reward_rewards.py").exists()
    assert yaml.safe_load((axolotl_run / "axolotl_config.yaml").read_text())["trl"]["reward_funcs"] == [
        "reward_rewards.correct",
        "reward_rewards.digits",
    ]


@pytest.mark.parametrize("other", ["verl", "openrlhf"])
def test_differences_ptsdk_cannot_own_are_named_with_their_source(ptsdk, example_job, other: str) -> None:
    """Against the command-line frameworks, translate --diff names each difference that is left with its source
    and exits 0, because every one is explained (OpenRLHF trains in bf16 only)."""
    job = example_job("sft_lora.yaml", training={"precision": "bf16"} if other == "openrlhf" else {})
    r = ptsdk("translate", str(job), "--backend", "trl", "--diff", other)
    assert r.code == 0, r.err
    marked = [line for line in r.out.splitlines()[1:] if "<-" in line]
    assert all("<- differs: " in line and "UNEXPLAINED" not in line for line in marked), r.out
    lines = {line.split()[0]: line for line in r.out.splitlines()[1:]}
    assert "<-" not in lines["loss_normalization"] and "<-" not in lines["learning_rate"]


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
    # ptsdk lays vERL's data out so that its sampler reads the file's order: nothing differs.
    assert differing == {}, differing
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
