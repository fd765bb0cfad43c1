"""ptsdk.api returns the data the CLI prints, raises the errors the CLI prints, and takes jobs built in code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import local_job
from ptsdk import api
from ptsdk.errors import PtsdkError, SpecError, UnsupportedError
from ptsdk.spec import Job


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(local_job(tmp_path)))
    return path


def test_validate_matches_the_cli(ptsdk, job_file: Path) -> None:  # type: ignore[no-untyped-def]
    checked = api.validate(job_file, backend="trl")
    r = ptsdk("validate", str(job_file), "--backend", "trl")
    assert r.code == 0
    others = ", ".join(b for b in checked.accepted_by if b != "trl") or "none"
    assert f"backend trl: supported (also accepted by: {others})" in r.out
    assert checked.job.name == "job" and "trl" in checked.accepted_by
    assert api.validate(job_file).accepted_by == checked.accepted_by


def test_errors_carry_the_lines_the_cli_prints(ptsdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = local_job(tmp_path, training={"global_batch_size": 3, "micro_batch_size": 2})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as info:
        api.validate(path)
    r = ptsdk("validate", str(path))
    assert r.code == 2 and info.value.lines
    for line in info.value.lines:
        assert line in r.err
    data = local_job(tmp_path, training={"max_tokens_per_micro_batch": 512})
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UnsupportedError) as refused:
        api.validate(path, backend="trl")
    r = ptsdk("validate", str(path), "--backend", "trl")
    assert r.code == 2
    assert refused.value.lines and all(line in r.err for line in refused.value.lines)
    assert refused.value.lines[0].startswith("training.max_tokens_per_micro_batch: trl cannot run")


def test_a_job_built_in_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = local_job(tmp_path)
    data["data"]["train"]["path"] = Path(data["data"]["train"]["path"]).name  # relative: to the working directory
    job = Job.model_validate(data)
    checked = api.validate(job, backend="trl")
    assert checked.job.data.train.path == str(tmp_path / Path(data["data"]["train"]["path"]).name)
    assert job.data.train.path == Path(data["data"]["train"]["path"]).name  # the caller's job is not changed
    assert checked.job.name == "job"
    with pytest.raises(TypeError, match="a job is a ptsdk.spec.Job or a job file's path"):
        api.validate({"method": {"name": "sft"}})  # type: ignore[arg-type]


def test_translate_matches_the_cli(ptsdk, job_file: Path) -> None:  # type: ignore[no-untyped-def]
    t = api.translate(job_file, "trl", native_check=False)
    r = ptsdk("translate", str(job_file), "--backend", "trl", "--no-native-check", "--json")
    plan = json.loads(r.out)
    assert plan["native_config"] == t.native_config
    assert [str(n) for n in plan["notes"]] == t.notes or len(plan["notes"]) == len(t.notes)
    assert plan["effective"] == json.loads(json.dumps(t.effective))
    r = ptsdk("translate", str(job_file), "--backend", "trl", "--no-native-check")
    assert t.native_text in r.out
    assert all(note in r.out for note in t.notes)
    assert not t.native_checked


def test_matrix_and_backends_match_the_cli(ptsdk) -> None:  # type: ignore[no-untyped-def]
    r = ptsdk("matrix", "--format", "json")
    assert api.matrix() == json.loads(r.out)["capabilities"]
    r = ptsdk("matrix", "--format", "json", "--kind", "adapter", "--backend", "trl")
    assert api.matrix(kind="adapter", backend=["trl"]) == json.loads(r.out)["capabilities"]
    r = ptsdk("backends", "--format", "json")
    assert api.backends() == json.loads(r.out)
    with pytest.raises(PtsdkError, match="--backend nope: no such backend"):
        api.matrix(backend=["nope"])


def test_compare_refuses_bad_arguments_before_any_work(tmp_path: Path, job_file: Path) -> None:
    with pytest.raises(PtsdkError, match="not both"):
        api.compare(job_file, ["trl", "axolotl"], runs=[tmp_path])
    with pytest.raises(PtsdkError, match="at least two backends"):
        api.compare(job_file, ["trl"])
    with pytest.raises(PtsdkError, match="names a backend twice"):
        api.compare(job_file, ["trl", "trl"])
