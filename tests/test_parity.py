"""What ptsdk owns of the optimization (issue #15), without a framework: its data order, the settings each backend
is translated to, the parity verdicts of translate --diff, and where compare finds two runs' rollouts part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ptsdk.compare import PARITY_ATOL, PARITY_RTOL, agree, load_run, rollout_divergence
from ptsdk.plugins import runtime
from ptsdk.plugins.kit import LOSS_NORMALIZATION, owned_adapter, owned_order
from ptsdk.spec import Job

from tests.test_compare import BASE, fake_run

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_epoch_order_is_a_seeded_permutation_new_each_epoch() -> None:
    first, second = runtime.epoch_order(256, 42, 0), runtime.epoch_order(256, 42, 1)
    assert sorted(first) == sorted(second) == list(range(256))
    assert first != second and first != list(range(256))
    assert runtime.epoch_order(256, 42, 0) == first  # the same in every process and framework
    assert runtime.epoch_order(256, 43, 0) != first
    # Python's generator with a string seed (SHA-512 of "42:0"): fixed across Python 3 versions and platforms.
    assert runtime.epoch_order(5, 42, 0) == [2, 1, 4, 3, 0]
    assert runtime.epoch_order(0, 42, 0) == [] and runtime.epoch_order(1, 42, 7) == [0]


def translate(ptsdk, job: Path, backend: str) -> dict:  # type: ignore[no-untyped-def]
    r = ptsdk("translate", str(job), "--backend", backend, "--json", "--no-native-check")
    assert r.code == 0, r.err
    return json.loads(r.out)


@pytest.mark.parametrize("backend", ["trl", "axolotl"])
def test_trainer_backends_take_ptsdks_order_adapter_and_normalization(ptsdk, backend: str) -> None:
    plan = translate(ptsdk, EXAMPLES / "jobs" / "sft_lora.yaml", backend)
    job = Job.model_validate(
        {"method": {"name": "sft"}, "model": {"name_or_path": "m"}, "data": {"train": {"path": "d"}}}
    )
    eff = plan["effective"]
    assert eff["data_order"] == owned_order(job) and eff["adapter_init"] == owned_adapter(job)
    assert eff["loss_normalization"] == LOSS_NORMALIZATION["tokens"]
    launch = plan["commands"][-1]["env"] if backend == "trl" else plan["env"]
    assert launch[runtime.ORDER_ENV] == "seeded:42" and launch[runtime.LOSS_NORMALIZATION_ENV] == "tokens"
    assert launch[runtime.SEED_ENV] == "42"
    if backend == "axolotl":  # the adapter is made by the plan's first command, from the job's seed
        first = plan["commands"][0]["argv"]
        assert first[1:4] == ["ptsdk_runtime.py", "start-adapter", first[3]] and runtime.START_ADAPTER in first
        assert "lora_model_dir: start_adapter" in next(
            f["content"] for f in plan["files"] if f["path"].endswith(".yaml")
        )


def test_diff_of_trl_and_axolotl_has_nothing_left_to_explain(ptsdk) -> None:
    r = ptsdk("translate", str(EXAMPLES / "jobs" / "sft_lora.yaml"), "--backend", "trl", "--diff", "axolotl")
    assert r.code == 0, r.err
    assert "<-" not in r.out, r.out


def test_unshuffled_jobs_keep_file_order_and_named_adapters_win(ptsdk, tmp_path: Path) -> None:
    job = example_with(tmp_path, "compare_sft_lora.yaml", "", "")
    for backend in ("trl", "axolotl"):
        eff = translate(ptsdk, job, backend)["effective"]
        assert eff["data_order"] == "file order" and eff["adapter_init"] == "saved adapter"


def example_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """An example job with one piece of its text replaced, its relative paths made absolute."""
    text = (EXAMPLES / "jobs" / name).read_text()
    assert old in text
    job = tmp_path / name
    job.write_text(text.replace(old, new).replace("../", str(EXAMPLES) + "/"))
    return job


def test_loss_normalization_is_an_sft_setting(ptsdk, tmp_path: Path) -> None:
    job = example_with(tmp_path, "dpo.yaml", "precision: fp32}", "precision: fp32, loss_normalization: micro_batch}")
    r = ptsdk("validate", str(job))
    assert r.code == 2 and "training.loss_normalization" in r.err and "Traceback" not in r.err


def test_matrix_refuses_per_micro_batch_loss_where_no_test_runs_it(ptsdk, tmp_path: Path) -> None:
    job = example_with(
        tmp_path, "sft_lora.yaml", "precision: fp32", "precision: fp32\n  loss_normalization: micro_batch"
    )
    r = ptsdk("validate", str(job), "--backend", "verl")
    assert r.code == 2 and "training.loss_normalization" in r.err and "axolotl" in r.err and "trl" in r.err
    assert ptsdk("validate", str(job), "--backend", "trl").code == 0


def test_losses_agree_within_the_relative_or_absolute_tolerance() -> None:
    assert agree({"max_abs_diff": 4e-4, "max_rel_diff": 0.9 * PARITY_RTOL})
    assert agree({"max_abs_diff": 0.9 * PARITY_ATOL, "max_rel_diff": 1.0})  # GRPO's ~1e-8 loss
    assert not agree({"max_abs_diff": 1e-3, "max_rel_diff": 2 * PARITY_RTOL})


def rollout_run(root: Path, backend: str, calls: list[dict]) -> Path:
    run = fake_run(root, backend, losses=[0.0, 0.0], tokens_per_step=10, effective=BASE)
    (run / "logs").mkdir(exist_ok=True)
    (run / runtime.ROLLOUT_LOG).write_text("".join(json.dumps(c) + "\n" for c in calls))
    return run


def call(step: int, completions: list[str], rewards: list[float]) -> dict:
    return {
        "step": step,
        "call": step + 1,
        "reward": "digits",
        "prompts": ["1+1?", "2+2?"],
        "completions": completions,
        "rewards": rewards,
    }


def test_rollout_divergence_names_the_first_call_and_item_that_differ(tmp_path: Path) -> None:
    same = [call(0, ["2", "4"], [1.0, 1.0]), call(1, ["x", "4"], [0.0, 1.0])]
    a = rollout_run(tmp_path, "trl", same)
    b = rollout_run(tmp_path, "axolotl", same)
    assert rollout_divergence([load_run(a), load_run(b)]) == {"compared": 2}
    (b / runtime.ROLLOUT_LOG).write_text(
        "".join(json.dumps(c) + "\n" for c in [same[0], call(1, ["x", "5"], [0.0, 1.0])]) + '{"cut short'
    )
    found = rollout_divergence([load_run(a), load_run(b)])
    assert found is not None
    assert (found["step"], found["what"], found["index"]) == (1, "completions", 1)
    assert found["values"] == {"trl": "4", "axolotl": "5"}


def test_runs_without_rollout_logs_compare_nothing(tmp_path: Path) -> None:
    a = fake_run(tmp_path, "trl", losses=[1.0], tokens_per_step=8, effective=BASE)
    b = fake_run(tmp_path, "axolotl", losses=[1.0], tokens_per_step=8, effective=BASE)
    assert rollout_divergence([load_run(a), load_run(b)]) is None
