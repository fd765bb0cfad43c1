"""Launchers, the plugin kind that says where a run executes: ptsdk's own (local, slurm), a site's own from an
installed distribution, and every bad option refused by name before anything runs. The real Slurm runs are in
tests/backends/test_slurm.py."""

from __future__ import annotations

import json

import pytest
from conftest import local_job, minimal_job
from ptsdk.errors import PtsdkError
from ptsdk.plugins.launcher import LocalLauncher, parse_options
from ptsdk.plugins.manager import get_backend, get_launchers
from ptsdk.plugins.slurm import SlurmLauncher
from ptsdk.spec import validate_job
from test_plugins import install_distribution, run_ptsdk


def test_local_and_slurm_are_built_in() -> None:
    launchers = get_launchers()
    assert launchers["local"] is LocalLauncher and launchers["slurm"] is SlurmLauncher


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--partition", "gpu"], "--partition: name the launcher it is for (--launcher slurm)"),
        (["--launcher", "pbs"], "--launcher pbs: no such launcher; installed launchers: local, ray, slurm"),
        (["--launcher", "slurm", "--launcher-option", "nodes=2"], "--launcher-option nodes: the slurm launcher has"),
        (["--launcher", "slurm", "--launcher-option", "partition"], "expected KEY=VALUE"),
        (["--launcher", "slurm", "--partition", "a", "--launcher-option", "partition=b"], "give it once"),
        (["--launcher", "local", "--time", "10"], "--launcher-option time: the local launcher has no such option"),
    ],
)
def test_bad_launcher_arguments_are_refused_before_anything_runs(ptsdk, write_job, tmp_path, args, says) -> None:
    run = tmp_path / "run"
    r = ptsdk("run", str(write_job(minimal_job())), "-b", "trl", "--run-dir", str(run), *args)
    assert r.code == 2 and "Traceback" not in r.err
    assert says in r.err
    assert not run.exists()


def test_options_parse_and_repeat_is_refused() -> None:
    assert parse_options(["partition=gpu", "time=2:00:00", "gres=gpu:8"]) == {
        "partition": "gpu",
        "time": "2:00:00",
        "gres": "gpu:8",
    }
    assert parse_options(["cpus-per-task=4"]) == {"cpus_per_task": "4"}
    with pytest.raises(PtsdkError, match="given twice"):
        parse_options(["qos=a", "qos=b"])


def test_slurm_refuses_what_it_cannot_submit_before_asking_the_cluster() -> None:
    job = validate_job(
        minimal_job(distributed={"device": "gpu", "nodes": 2, "gpus_per_node": 8}, training={"global_batch_size": 16})
    )
    plan = get_backend("trl")().translate(job)
    assert SlurmLauncher().problems(job, plan)[0].startswith("distributed.nodes: the slurm launcher runs one node")
    (problem,) = SlurmLauncher({"partition": "gpu; rm -rf /"}).problems(validate_job(minimal_job()), plan)
    assert problem.startswith("--launcher-option partition: 'gpu; rm -rf /' is not a Slurm value")


def test_a_sites_launcher_arrives_through_the_entry_point_group(tmp_path) -> None:
    """A launcher from an installed distribution is chosen, given its options, and refuses with its own words."""
    install_distribution(
        tmp_path,
        """
        from ptsdk.plugins import hookimpl
        from ptsdk.plugins.launcher import RunLauncher

        class Kube(RunLauncher):
            name = "kube"
            options = {"namespace": "the namespace"}

            def problems(self, job, plan):
                return [f"kube: namespace {self.given.get('namespace')} has no quota for {job.method.name}"]

            def execute(self, launch):
                raise AssertionError("not reached")

        @hookimpl
        def ptsdk_register_launchers(register):
            register(Kube)
        """,
        dist="ptsdk-kube",
        plugin="kube",
        module="ptsdk_kube",
    )
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps(local_job(tmp_path)))
    proc = run_ptsdk(tmp_path, "run", str(job), "-b", "trl", "--launcher", "kube", "--launcher-option", "namespace=ml")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "kube: namespace ml has no quota for sft" in proc.stderr
