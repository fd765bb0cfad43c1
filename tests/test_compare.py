"""Comparison reports from run directories: parity first, aligned metrics, schema-valid JSON, PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ptsdk.compare import REPORT_SCHEMA, load_run, parity, write_report
from ptsdk.rundir import RunDir

SCHEMA = json.loads(REPORT_SCHEMA.read_text())


def fake_run(root: Path, backend: str, *, losses: list[float], tokens_per_step: int, effective: dict) -> Path:
    """A finished run directory as `ptsdk run` leaves it (manifest + metrics), written by hand."""
    run = root / backend
    run.mkdir()
    manifest = {
        "backend": backend,
        "run_dir": str(run),
        "status": "succeeded",
        "exit_code": 0,
        "wall_time_s": 12.5,
        "peak_rss_mib": 900.0,
        "job": {"name": "sft_lora"},
        "effective": effective,
    }
    (run / RunDir.MANIFEST).write_text(json.dumps(manifest))
    with (run / RunDir.METRICS).open("w") as f:
        for i, loss in enumerate(losses, 1):
            f.write(
                json.dumps(
                    {
                        "step": i,
                        "kind": "train",
                        "loss": loss,
                        "tokens_seen": i * tokens_per_step,
                        "wall_time_s": i * 0.5,
                        "tokens_per_s": 2.0 * tokens_per_step,
                        "reward": None,
                    }
                )
                + "\n"
            )
    return run


BASE = {"global_batch_sequences": 8, "micro_batch": 4, "gradient_accumulation": 2, "learning_rate": 0.002, "seed": 42}


def test_parity_flags_and_explains_differences() -> None:
    rows = {
        r.key: r
        for r in parity(
            {
                "a": {**BASE, "lr_scheduler": "cosine", "warmup": 0.0},
                "b": {
                    **BASE,
                    "lr_scheduler": "linear",
                    "warmup": 0.1,
                    "sources": {"warmup": "framework default (3% of steps)"},
                },
            }
        )
    }
    assert not rows["micro_batch"].differs
    assert rows["warmup"].differs and not rows["warmup"].unexplained
    assert rows["lr_scheduler"].unexplained


def test_report_renders_and_validates(tmp_path: Path) -> None:
    a = fake_run(
        tmp_path, "trl", losses=[2.0, 1.5, 1.2, 1.0], tokens_per_step=64, effective={**BASE, "lr_scheduler": "cosine"}
    )
    b = fake_run(
        tmp_path,
        "axolotl",
        losses=[2.0, 1.51, 1.19, 1.0],
        tokens_per_step=64,
        effective={**BASE, "lr_scheduler": "cosine"},
    )
    out = tmp_path / "report"
    report = write_report([load_run(a), load_run(b)], out)
    jsonschema.validate(json.loads((out / "report.json").read_text()), SCHEMA)
    assert report["unexplained_differences"] == []
    assert [p["tokens_seen"] for p in report["aligned_loss"]] == [64, 128, 192, 256]
    assert report["max_abs_loss_diff"] == pytest.approx(0.01)
    md = (out / "report.md").read_text()
    assert md.index("## Parity") < md.index("## Results")
    assert "| learning_rate | 0.002 | 0.002 |" in md
    import matplotlib.image

    for name in report["plots"]:
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 100 and image.shape[1] > 100
    assert "loss_vs_tokens.png" in report["plots"] and "loss_vs_time.png" in report["plots"]


def test_report_refuses_non_empty_out(tmp_path: Path) -> None:
    from ptsdk.errors import PtsdkError

    a = fake_run(tmp_path, "trl", losses=[1.0], tokens_per_step=8, effective=BASE)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(PtsdkError, match="not empty"):
        write_report([load_run(a)], tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"


def test_compare_cli_on_finished_runs(ptsdk, tmp_path: Path) -> None:
    a = fake_run(tmp_path, "trl", losses=[2.0, 1.0], tokens_per_step=10, effective={**BASE, "optimizer": "adamw_torch"})
    b = fake_run(
        tmp_path, "axolotl", losses=[2.0, 1.1], tokens_per_step=10, effective={**BASE, "optimizer": "adamw_torch_fused"}
    )
    r = ptsdk("compare", "--runs", str(a), "--runs", str(b), "--out", str(tmp_path / "rep"))
    # The report is written, and the exit status says a difference is unexplained.
    assert r.code == 1, r.err
    assert "unexplained differences: optimizer" in r.err and "Traceback" not in r.err
    assert "UNEXPLAINED" in r.out and "optimizer" in r.out
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["unexplained_differences"] == ["optimizer"]


def test_compare_needs_two_backends(ptsdk, tmp_path: Path) -> None:
    job = tmp_path / "j.yaml"
    job.write_text("method: {name: sft}\nmodel: {name_or_path: o/m}\ndata: {train: {path: o/d}}\n")
    r = ptsdk("compare", str(job), "--backends", "trl")
    assert r.code == 2 and "at least two" in r.err
