"""Experiment trackers (output.report_to) without any framework: which backend runs which tracker (the matrix),
what each translation sets (the framework's own settings and environment), that every tracker writes under the
run directory's tracking/, and the job record the trackers are given. tests/backends/test_tracking.py runs them
for real and reads the trackers back with their own readers."""

from __future__ import annotations

import json
import sys
import types
from typing import Any, get_args

import pytest
import yaml
from conftest import minimal_job
from ptsdk.backends.axolotl.backend import AxolotlBackend
from ptsdk.backends.openrlhf.backend import OpenRLHFBackend
from ptsdk.backends.trl.backend import TRLBackend
from ptsdk.backends.verl.backend import VerlBackend
from ptsdk.matrix import check
from ptsdk.matrix.check import KNOWN_KEYS, TRACKERS, features_of
from ptsdk.plugins import kit, runtime
from ptsdk.plugins.backend import Plan
from ptsdk.plugins.manager import get_backends
from ptsdk.spec import Job, validate_job
from ptsdk.spec.output import OutputSpec

#: What each backend runs, proven by tests/backends/test_tracking.py (OpenRLHF's TensorBoard by its CPU runs).
RUNS = {
    "trl": {"tensorboard", "mlflow", "wandb", "trackio"},
    "axolotl": {"tensorboard", "mlflow", "wandb", "trackio"},
    "verl": {"tensorboard", "wandb", "trackio"},
    "openrlhf": {"tensorboard"},
}


def job(*report: str, **overrides: Any) -> Job:
    return validate_job(minimal_job(name="tracked", output={"report_to": list(report)}, **overrides))


def notes(plan: Plan) -> list[str]:
    return [n.message for n in plan.notes if n.field == "output.report_to"]


def test_every_tracker_of_the_spec_is_a_matrix_feature() -> None:
    spec = set(get_args(get_args(OutputSpec.model_fields["report_to"].annotation)[0]))
    assert set(TRACKERS) == spec
    assert {("feature", f"tracking_{t}") for t in spec} <= KNOWN_KEYS
    assert features_of(job("mlflow", "wandb"))[-2:] == [
        ("tracking_mlflow", "output.report_to", "experiment tracking with MLflow"),
        ("tracking_wandb", "output.report_to", "experiment tracking with Weights & Biases"),
    ]
    assert not [f for f in features_of(job()) if f[0].startswith("tracking_")]


def test_each_backend_declares_the_trackers_it_runs() -> None:
    for name, cls in get_backends().items():
        declared = {c.name.removeprefix("tracking_") for c in cls.capabilities if c.name.startswith("tracking_")}
        assert declared == RUNS.get(name, set()), name
        for c in cls.capabilities:
            if c.name.startswith("tracking_"):
                assert c.evidence and c.verified.value == "trained", (name, c)


@pytest.mark.parametrize("tracker", sorted(TRACKERS))
def test_a_backend_without_the_tracker_refuses_it_by_name(tracker: str) -> None:
    backends = get_backends()
    able = sorted(name for name, runs in RUNS.items() if tracker in runs)
    for name in backends:
        result = check(job(tracker), name, backends)
        # the tracker's line only: the hub dataset of minimal_job is vERL's own static problem, and a distribution
        # installed beside ptsdk may not run SFT at all
        unmet = [str(u) for u in result.unmet if u.requirement.field == "output.report_to"]
        if tracker in RUNS.get(name, set()):
            assert unmet == [], name
            continue
        who = ", ".join(able) if able else "no installed backend"
        label = f"experiment tracking with {TRACKERS[tracker]}"
        assert unmet == [f"output.report_to: {name} cannot run {label}; backends that can: {who}"]


def test_a_tracker_the_backend_lacks_is_refused_by_the_cli_with_who_can(ptsdk, write_job) -> None:
    """OpenRLHF 0.11.2 has no Trackio logger: refused before launch, by name, with the backends that run it."""
    r = ptsdk("validate", str(write_job(minimal_job(output={"report_to": ["trackio"]}))), "--backend", "openrlhf")
    assert r.code == 2 and "Traceback" not in r.err
    assert "output.report_to: openrlhf cannot run experiment tracking with Trackio" in r.err
    assert "axolotl, trl, verl" in r.err


# --- the environment and the job record, shared by every backend ---------------------------------------------


def test_every_tracker_writes_under_the_run_directorys_tracking_folder() -> None:
    env = kit.tracking_env(job(*TRACKERS), "trl")
    paths = {k: v for k, v in env.items() if k.endswith(("_DIR", "_URI")) or k == "TENSORBOARD_LOGGING_DIR"}
    assert set(paths) == {
        "TENSORBOARD_LOGGING_DIR",
        "WANDB_DIR",
        "WANDB_CONFIG_DIR",
        "WANDB_CACHE_DIR",
        "WANDB_DATA_DIR",
        "WANDB_ARTIFACT_DIR",
        "MLFLOW_TRACKING_URI",
        "TRACKIO_DIR",
    }
    for key, value in paths.items():
        path = value.removeprefix("file:")
        assert path.split("/")[0] == runtime.TRACKING_DIR and not path.startswith(("/", "~")), key
    assert env["WANDB_MODE"] == "offline" and env["MLFLOW_ALLOW_FILE_STORE"] == "true"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"  # MLflow writes an installation id under ~/.config otherwise
    assert env["WANDB_PROJECT"] == env["MLFLOW_EXPERIMENT_NAME"] == "tracked"
    assert kit.tracking_env(job(), "trl") == {} and kit.tracking_files(job(), "trl") == []


def test_the_job_record_holds_the_job_its_hash_and_the_backend() -> None:
    j = job("mlflow", "wandb")
    [file] = kit.tracking_files(j, "axolotl")
    record = json.loads(file.content or "")
    assert file.path == runtime.TRACKING_JOB
    assert record == kit.tracking_record(j, "axolotl")
    assert record["job"] == j.model_dump(mode="json") and record["name"] == "tracked" and len(record["sha256"]) == 16
    env = kit.tracking_env(j, "axolotl")
    assert json.loads(env["MLFLOW_RUN_CONTEXT"]) == {
        "ptsdk.job": "tracked",
        "ptsdk.job_sha256": record["sha256"],
        "ptsdk.backend": "axolotl",
    }
    assert env["WANDB_TAGS"] == f"ptsdk,ptsdk-job-{record['sha256']}"
    other = kit.tracking_record(job("mlflow", "wandb", training={"learning_rate": 0.5}), "axolotl")
    assert other["sha256"] != record["sha256"]
    assert kit.tracking_record(job("mlflow", "wandb"), "axolotl")["sha256"] == record["sha256"]


# --- each backend's own settings -----------------------------------------------------------------------------


def test_trl_reports_through_the_trainers_report_to_and_environment() -> None:
    plan = TRLBackend().translate(job("tensorboard", "mlflow", "wandb"))
    cfg = yaml.safe_load(plan.file("trl_config.yaml").content or "")
    assert cfg["report_to"] == ["tensorboard", "mlflow", "wandb"] and "run_name" not in cfg
    assert plan.env["TENSORBOARD_LOGGING_DIR"] == kit.TENSORBOARD_DIR
    assert plan.env["MLFLOW_TRACKING_URI"] == kit.MLFLOW_URI and plan.env["WANDB_DIR"] == kit.WANDB_DIR
    assert plan.file(runtime.TRACKING_JOB).content == kit.tracking_files(plan.job, "trl")[0].content  # type: ignore[arg-type]
    assert [m.split(":")[0] for m in notes(plan)] == ["tensorboard", "mlflow", "wandb"]
    quiet = TRLBackend().translate(job())
    assert yaml.safe_load(quiet.file("trl_config.yaml").content or "")["report_to"] == ["none"]
    assert not any(k.startswith(("WANDB", "MLFLOW", "TENSORBOARD")) for k in quiet.env) and notes(quiet) == []
    with pytest.raises(KeyError):
        quiet.file(runtime.TRACKING_JOB)


def test_axolotl_reports_through_its_own_use_settings() -> None:
    plan = AxolotlBackend().translate(job("tensorboard", "mlflow", "wandb"))
    cfg = yaml.safe_load(plan.file("axolotl_config.yaml").content or "")
    assert cfg["use_tensorboard"] is True
    assert (cfg["use_wandb"], cfg["wandb_project"], cfg["wandb_mode"]) == (True, "tracked", "offline")
    assert (cfg["use_mlflow"], cfg["mlflow_tracking_uri"], cfg["mlflow_experiment_name"]) == (
        True,
        kit.MLFLOW_URI,
        "tracked",
    )
    assert not {"use_trackio", "wandb_name", "mlflow_run_name"} & set(cfg)  # the run's name: ptsdk_runtime's callback
    assert plan.env["TENSORBOARD_LOGGING_DIR"] == kit.TENSORBOARD_DIR and plan.env["WANDB_MODE"] == "offline"
    assert plan.file(runtime.TRACKING_JOB)
    quiet = yaml.safe_load(AxolotlBackend().translate(job()).file("axolotl_config.yaml").content or "")
    assert not {"use_tensorboard", "use_wandb", "use_mlflow", "wandb_project"} & set(quiet)


def test_verl_reports_through_trainer_logger_and_its_environment() -> None:
    plan = VerlBackend().translate(job("tensorboard", "wandb"))
    args = dict(a.split("=", 1) for a in plan.args)
    assert args["trainer.logger"] == "[console,file,tensorboard,wandb]"
    assert args["trainer.experiment_name"] == "tracked"
    assert plan.env["TENSORBOARD_DIR"] == kit.TENSORBOARD_DIR and "TENSORBOARD_LOGGING_DIR" not in plan.env
    assert plan.env["WANDB_MODE"] == "offline" and plan.env["WANDB_DIR"] == kit.WANDB_DIR
    assert [m.split(":")[0] for m in notes(plan)] == ["tensorboard", "wandb"]


def test_openrlhf_always_writes_tensorboard() -> None:
    for report in ((), ("tensorboard",)):
        plan = OpenRLHFBackend().translate(job(*report))
        assert plan.args[plan.args.index("--logger.tensorboard_dir") + 1] == "logs/tensorboard"
    assert notes(plan)[0].startswith("tensorboard: OpenRLHF's event files in logs/tensorboard/")


def test_trackio_init_drops_only_the_unset_keywords_its_version_does_not_take(monkeypatch) -> None:
    """Axolotl's pinned transformers passes trackio.init(bucket_id=None), which its pinned trackio 0.19 lacks: the
    shim drops that unset keyword; a keyword with a value still reaches trackio (and fails there), never dropped."""
    calls: list[dict[str, Any]] = []

    def init(project: str, name: str | None = None, resume: str = "never") -> str:  # trackio 0.19's shape
        calls.append({"project": project, "name": name, "resume": resume})
        return "run"

    monkeypatch.setitem(sys.modules, "trackio", types.SimpleNamespace(init=init))
    runtime.trackio_takes_what_transformers_passes()
    runtime.trackio_takes_what_transformers_passes()  # twice: wrapped once
    trackio = sys.modules["trackio"]
    assert trackio.init(project="p", name="n", resume="allow", bucket_id=None) == "run"
    assert calls == [{"project": "p", "name": "n", "resume": "allow"}]
    with pytest.raises(TypeError, match="bucket_id"):
        trackio.init(project="p", bucket_id="bucket")
    assert trackio.init.__wrapped__ is init
