"""What ptsdk owns on vERL's SFT and OpenRLHF's SFT and DPO (issue #15), without a framework: the translations to
ptsdk's order (and, on vERL, ptsdk's starting adapter), the layout of every epoch for each framework's one-pass
sampler (verl_data.py, prepare_openrlhf.py), and vERL's token counts read back."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from ptsdk.backends.openrlhf.backend import EPOCH_END
from ptsdk.backends.verl.backend import LAYOUT_FILE, filler_tokens, verl_metric_records
from ptsdk.plugins import runtime
from ptsdk.plugins.kit import OWNED_ADAPTER_SOURCE, OWNED_ORDER_SOURCE, owned_adapter, owned_order
from ptsdk.spec import Job

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def translate(ptsdk, job: Path, backend: str = "verl") -> dict:  # type: ignore[no-untyped-def]
    r = ptsdk("translate", str(job), "--backend", backend, "--json", "--no-native-check")
    assert r.code == 0, r.err
    return json.loads(r.out)


def example(tmp_path: Path, name: str = "sft_lora.yaml", **sections: dict) -> Path:
    """An example job with its relative paths made absolute and `sections` merged in."""
    data = yaml.safe_load((EXAMPLES / "jobs" / name).read_text().replace("../", str(EXAMPLES) + "/"))
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def argv(plan: dict) -> list[str]:
    return plan["commands"][-2]["argv"]  # the launch (the export follows it)


def data_spec(plan: dict) -> dict:
    return json.loads(next(f["content"] for f in plan["files"] if f["path"] == "verl_data.json"))


def run_file(module: str) -> ModuleType:
    """A file the plan copies into the run directory, imported as it runs there: ptsdk_runtime beside it."""
    added = runtime.MODULE not in sys.modules
    sys.modules.setdefault(runtime.MODULE, runtime)
    try:
        return importlib.import_module(module)
    finally:
        if added:
            del sys.modules[runtime.MODULE]


@pytest.fixture(scope="module")
def verl_data() -> ModuleType:
    return run_file("ptsdk.backends.verl.verl_data")


@pytest.fixture(scope="module")
def prepare_openrlhf() -> ModuleType:
    return run_file("ptsdk.backends.openrlhf.prepare_openrlhf")


def test_verl_sft_reads_ptsdks_order_from_ptsdks_adapter(ptsdk) -> None:
    plan = translate(ptsdk, EXAMPLES / "jobs" / "sft_lora.yaml")
    job = Job.model_validate(
        {"method": {"name": "sft"}, "model": {"name_or_path": "m"}, "data": {"train": {"path": "d"}}}
    )
    eff = plan["effective"]
    assert eff["data_order"] == owned_order(job) and eff["adapter_init"] == owned_adapter(job)
    assert eff["sources"]["data_order"].startswith(OWNED_ORDER_SOURCE)
    assert eff["sources"]["adapter_init"].startswith(OWNED_ADAPTER_SOURCE)
    # The adapter is made first, from the job's seed, in vERL's environment; then the data are laid out.
    first, second = plan["commands"][0]["argv"], plan["commands"][1]["argv"]
    assert first[1:3] == ["ptsdk_runtime.py", "start-adapter"] and runtime.START_ADAPTER in first and "42" in first
    assert second[1:] == ["verl_data.py", "verl_data.json"]
    args = argv(plan)
    assert f"model.lora_adapter_path={runtime.START_ADAPTER}" in args
    # One pass over every laid-out epoch, 30 steps of it; verl_data.py applied max_samples already.
    assert "trainer.total_epochs=1" in args and "trainer.total_training_steps=30" in args
    assert not any(a.startswith("data.train_max_samples=") for a in args)
    spec = data_spec(plan)
    assert spec["splits"]["train"]["layout"] == "epochs"
    assert spec["order"] == {
        "seed": 42,
        "epochs": None,
        "max_steps": 30,
        "micro_batch": 4,
        "world_size": 1,
        "global_batch": 8,
    }


def test_diff_of_trl_and_verl_has_nothing_left_to_explain(ptsdk) -> None:
    """Order, adapter and normalization are ptsdk's on both: no row of translate --diff differs."""
    r = ptsdk("translate", str(EXAMPLES / "jobs" / "sft_lora.yaml"), "--backend", "trl", "--diff", "verl")
    assert r.code == 0, r.err
    assert "<-" not in r.out, r.out


def test_an_unshuffled_job_reads_the_file_order_in_every_epoch(ptsdk, tmp_path: Path) -> None:
    plan = translate(ptsdk, example(tmp_path, training={"shuffle": False, "max_steps": None, "epochs": 3}))
    assert plan["effective"]["data_order"] == "file order"
    spec = data_spec(plan)
    assert spec["splits"]["train"]["layout"] == "epochs" and spec["order"]["seed"] is None
    assert spec["order"]["epochs"] == 3 and spec["order"]["max_steps"] is None
    # vERL counts the laid-out steps itself (len(train_dataloader) x 1 epoch).
    assert "trainer.total_epochs=1" in argv(plan) and "trainer.total_training_steps=null" in argv(plan)


def test_a_per_epoch_cadence_keeps_verls_sampler_and_says_why(ptsdk, tmp_path: Path) -> None:
    """vERL's after_each_epoch is its own epoch (len(train_dataloader)): one pass over every laid-out epoch would
    make it the whole run, so such a job keeps vERL's sampler, named in the parity table."""
    job = example(tmp_path, training={"max_steps": None, "epochs": 2}, output={"saves_per_epoch": 1})
    plan = translate(ptsdk, job)
    eff = plan["effective"]
    assert eff["data_order"] == "shuffled by verl (seed 0)"
    assert "saves_per_epoch" in eff["sources"]["data_order"]
    assert data_spec(plan)["splits"]["train"]["layout"] == "file"
    assert "trainer.total_epochs=2" in argv(plan) and "trainer.save_freq=after_each_epoch" in argv(plan)
    assert eff["adapter_init"].startswith("ptsdk's seeded adapter")  # the adapter is ptsdk's all the same


def test_a_named_adapter_or_a_full_fine_tune_makes_no_starting_adapter(ptsdk, tmp_path: Path) -> None:
    init = str(EXAMPLES / "tiny-model-lora-init")
    named = translate(ptsdk, example(tmp_path, adapter={"init_path": init}))
    assert named["effective"]["adapter_init"] == "saved adapter"
    assert f"model.lora_adapter_path={init}" in argv(named)
    full = translate(ptsdk, example(tmp_path, "compare_sft_trl_verl.yaml"))
    assert full["effective"]["adapter_init"] is None
    assert all("start-adapter" not in c["argv"] for p in (named, full) for c in p["commands"])


def test_an_epoch_is_read_as_the_trainers_optimizer_steps_read_it(verl_data: ModuleType) -> None:
    """One process: every row once, the last step short (filled up to vERL's batch with rows without loss tokens).
    Several processes: accelerate completes the micro-batches to a multiple of the processes with the epoch's
    first rows again (even_batches), then the last step is short."""
    order = runtime.epoch_order(20, 42, 0)
    assert verl_data.epoch_rows(order, 4, 1, 8) == [*order, None, None, None, None]
    assert verl_data.epoch_rows(order[:16], 4, 1, 8) == order[:16]  # whole steps: no filler
    ten = list(range(10))
    # 2 processes x micro-batches of 2: 5 micro-batches become 6 (rows 0 and 1 again); 12 rows = 1.5 steps of 8.
    assert verl_data.epoch_rows(ten, 2, 2, 8) == [*ten, 0, 1, None, None, None, None]
    assert verl_data.epoch_rows([0, 1, 2], 2, 2, 4) == [0, 1, 2, 0]  # fewer rows than one round: cycled


def test_every_epoch_of_the_run_is_laid_out_in_ptsdks_order(verl_data: ModuleType) -> None:
    order = {"seed": 42, "epochs": None, "max_steps": 5, "micro_batch": 4, "world_size": 1, "global_batch": 8}
    layout = verl_data.epoch_layout(20, order)
    # 3 steps an epoch (8, 8 and 4 rows): 5 steps start 2 epochs, each in its own order.
    assert layout["steps_per_epoch"] == 3 and len(layout["orders"]) == 2
    assert layout["orders"] == [runtime.epoch_order(20, 42, 0), runtime.epoch_order(20, 42, 1)]
    seq = layout["sequence"]
    assert len(seq) == 48 and seq[:20] == layout["orders"][0] and seq[24:44] == layout["orders"][1]
    assert layout["filler_rows"] == {3: 4, 6: 4}
    by_epochs = verl_data.epoch_layout(16, {**order, "seed": None, "epochs": 3, "max_steps": None})
    assert by_epochs["sequence"] == list(range(16)) * 3 and by_epochs["filler_rows"] == {}


def test_the_layout_and_ptsdks_order_are_written_with_the_data(verl_data: ModuleType, tmp_path: Path) -> None:
    order = {"seed": 7, "epochs": 2, "max_steps": None, "micro_batch": 2, "world_size": 1, "global_batch": 4}
    layout = verl_data.epoch_layout(6, order)
    verl_data.write_layout(layout, order, str(tmp_path))
    logged = [json.loads(line) for line in (tmp_path / runtime.ORDER_LOG).read_text().splitlines()]
    assert logged == [{"epoch": e, "rows": 6, "seed": 7, "indices": runtime.epoch_order(6, 7, e)} for e in (0, 1)]
    summary = json.loads((tmp_path / LAYOUT_FILE).read_text())
    assert summary["filler_rows"] == {"2": 2, "4": 2} and summary["laid_out_rows"] == 16
    # The file's order (training.shuffle: false) is no order of ptsdk's: nothing logged, as on TRL.
    verl_data.write_layout(layout, {**order, "seed": None}, str(tmp_path / "file"))
    assert not (tmp_path / "file" / runtime.ORDER_LOG).exists()


def test_filler_tokens_are_left_out_of_verls_token_counts(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / LAYOUT_FILE).write_text(json.dumps({"filler_rows": {"3": 4}, "filler_row_tokens": 5}))
    log = tmp_path / "verl_metrics.jsonl"
    log.write_text(
        "".join(
            json.dumps({"step": s, "data": {"train/loss": 1.0, "train/global_tokens": 100}}) + "\n" for s in (1, 2, 3)
        )
    )
    fillers = filler_tokens(tmp_path)
    assert fillers == {3: 20}
    assert [m.tokens_seen for m in verl_metric_records([log], fillers)] == [100, 200, 280]
    assert filler_tokens(tmp_path / "elsewhere") == {}  # no layout (or a run before it): counted as vERL logs them


# --- OpenRLHF ----------------------------------------------------------------------------------------------


def test_openrlhf_sft_and_dpo_read_ptsdks_order_in_one_pass(ptsdk, tmp_path: Path) -> None:
    job = Job.model_validate(
        {"method": {"name": "sft"}, "model": {"name_or_path": "m"}, "data": {"train": {"path": "d"}}}
    )
    sft = translate(ptsdk, EXAMPLES / "jobs" / "openrlhf_cpu_sft_lora.yaml", "openrlhf")
    dpo = translate(ptsdk, example(tmp_path, "dpo.yaml", training={"precision": "bf16"}), "openrlhf")
    for plan in (sft, dpo):
        eff = plan["effective"]
        assert eff["data_order"] == owned_order(job) and eff["sources"]["data_order"].startswith(OWNED_ORDER_SOURCE)
        # Named: OpenRLHF's accumulation windows run on across an epoch's end (the Trainer makes a short step).
        assert eff["epoch_end_step"] == EPOCH_END and "short last step" in eff["sources"]["epoch_end_step"]
        args = plan["commands"][-1]["argv"]
        assert args[args.index("--train.max_epochs") + 1] == "1"
    spec = json.loads(next(f["content"] for f in sft["files"] if f["path"] == "openrlhf_data.json"))
    assert spec["order"] == {
        "seed": 42,
        "epochs": 6,
        "max_steps": None,
        "global_batch": 8,
        "sampler_seed": 42,
        "world_size": 1,
    }
    r = ptsdk(
        "translate", str(EXAMPLES / "jobs" / "openrlhf_cpu_sft_lora.yaml"), "--backend", "trl", "--diff", "openrlhf"
    )
    assert r.code == 0, r.err
    rows = {line.split()[0]: line for line in r.out.splitlines()[1:]}
    assert "<-" not in rows["data_order"] and "<-" in rows["epoch_end_step"]


def test_openrlhf_reads_the_file_order_in_every_epoch(ptsdk, tmp_path: Path) -> None:
    job = example(tmp_path, "openrlhf_cpu_sft_lora.yaml", training={"shuffle": False})
    plan = translate(ptsdk, job, "openrlhf")
    assert plan["effective"]["data_order"] == "file order"
    assert not any(n["field"] == "training.shuffle" and n["kind"] == "approximated" for n in plan["notes"])
    spec = json.loads(next(f["content"] for f in plan["files"] if f["path"] == "openrlhf_data.json"))
    assert spec["order"]["seed"] is None and spec["repeat_to"] is None


def test_openrlhf_records_are_placed_where_its_sampler_reads_each_epoch(
    prepare_openrlhf: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    order = {"seed": 42, "epochs": None, "max_steps": 3, "global_batch": 4, "sampler_seed": 42, "world_size": 1}
    orders, sequence = prepare_openrlhf.epoch_sequence(5, order)
    # 3 steps of 4 rows read 12 rows: epochs 0 and 1 whole, 2 of epoch 2 (OpenRLHF trains the whole pass).
    assert orders == [runtime.epoch_order(5, 42, e) for e in range(3)]
    assert sequence == [*orders[0], *orders[1], *orders[2][:2]]
    by_epochs = prepare_openrlhf.epoch_sequence(5, {**order, "seed": None, "epochs": 2, "max_steps": None})
    assert by_epochs == ([list(range(5))] * 2, list(range(5)) * 2)
    # The sampler's j-th read (here a reversal, in a real run torch.randperm seeded with --train.seed) is the j-th.
    monkeypatch.setattr(prepare_openrlhf, "sampler_order", lambda n, seed, world: list(range(n))[::-1])
    records = [{"i": i} for i in range(5)]
    placed, logged = prepare_openrlhf.lay_out(records, order)
    assert [placed[p]["i"] for p in range(12)[::-1]] == sequence and logged == orders
    monkeypatch.chdir(tmp_path)
    prepare_openrlhf.write_order_log(orders, 42)
    lines = [json.loads(line) for line in (tmp_path / runtime.ORDER_LOG).read_text().splitlines()]
    assert [(r["epoch"], r["rows"], r["seed"], r["indices"]) for r in lines] == [
        (e, 5, 42, o) for e, o in enumerate(orders)
    ]
