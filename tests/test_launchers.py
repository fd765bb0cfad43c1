"""Launchers, the plugin kind that says where a run executes: ptsdk's own (local, slurm), a site's own from an
installed distribution, and every bad option refused by name before anything runs. The real Slurm runs are in
tests/backends/test_slurm.py."""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import replace

import pytest
from conftest import local_job, minimal_job
from ptsdk.errors import PtsdkError
from ptsdk.plugins.backend import PYTHON, Command
from ptsdk.plugins.launcher import Launch, LocalLauncher, parse_options
from ptsdk.plugins.manager import get_backend, get_launchers
from ptsdk.plugins.slurm import FIRST_NODE, NODE_SCRIPT, SlurmLauncher
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
    two_nodes = {"device": "gpu", "nodes": 2, "gpus_per_node": 8}
    job = validate_job(minimal_job(distributed=two_nodes, training={"global_batch_size": 16}))
    grpo = validate_job(
        minimal_job(
            method={"name": "grpo", "rewards": ["r.py:f"]}, distributed=two_nodes, training={"global_batch_size": 16}
        )
    )
    for backend, it, says in [
        ("openrlhf", job, "DeepSpeed's launcher"),
        ("openrlhf", grpo, "as one Ray cluster"),
        ("verl", grpo, "as one Ray cluster"),
    ]:
        plan = get_backend(backend)().translate(it)
        (problem,) = SlurmLauncher().problems(it, plan)  # refused before sbatch is asked (no Slurm here)
        assert problem.startswith(f"distributed.nodes: {backend} ") and says in problem
    plan = get_backend("trl")().translate(job)
    (problem,) = SlurmLauncher({"partition": "gpu; rm -rf /"}).problems(validate_job(minimal_job()), plan)
    assert problem.startswith("--launcher-option partition: 'gpu; rm -rf /' is not a Slurm value")


def test_slurm_gives_a_multi_node_job_its_first_node_as_rendezvous_host() -> None:
    two_nodes = {"device": "gpu", "nodes": 2, "gpus_per_node": 8}
    job = validate_job(minimal_job(distributed=two_nodes, training={"global_batch_size": 16}))
    assert SlurmLauncher().adapt_job(job).distributed.master_addr == FIRST_NODE
    assert job.distributed.master_addr is None  # a copy: the caller's job is left as it was
    own = validate_job(
        minimal_job(distributed={**two_nodes, "master_addr": "10.0.0.1"}, training={"global_batch_size": 16})
    )
    assert SlurmLauncher().adapt_job(own).distributed.master_addr == "10.0.0.1"  # the job's own host is kept
    one = validate_job(minimal_job())
    assert SlurmLauncher().adapt_job(one) is one


def test_a_multi_node_slurm_script_prepares_once_and_starts_one_task_per_node(tmp_path) -> None:
    """The batch script's order (preparation once, srun on every node, finalize once) and the node script's
    rendezvous, read by bash's own parser; the real two-node run is in tests/backends/test_slurm.py."""
    two_nodes = {"device": "gpu", "nodes": 2, "gpus_per_node": 8}
    job = SlurmLauncher().adapt_job(
        validate_job(minimal_job(distributed=two_nodes, training={"global_batch_size": 16}))
    )
    backend = get_backend("trl")()
    plan = replace(
        backend.translate(job),
        prepare=[Command([PYTHON, "prepare_data.py"])],
        finalize=[Command([PYTHON, "export.py"])],
    )
    launch = Launch(plan, backend.env, tmp_path, tmp_path / "command.sh", io.StringIO(), None, lambda _: None)
    script, node = SlurmLauncher().script(launch), SlurmLauncher().node_script(launch)
    lines = script.splitlines()
    at = {key: next(i for i, line in enumerate(lines) if key in line) for key in ("prepare_data", "srun", "export.py")}
    assert at["prepare_data"] < at["srun"] < at["export.py"]
    assert "#SBATCH --nodes=2" in lines and "#SBATCH --ntasks-per-node=1" in lines
    assert f"srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 bash {NODE_SCRIPT}" in lines
    assert "export PTSDK_RDZV_HOST=" in script and 'scontrol show hostnames "$SLURM_JOB_NODELIST"' in script
    assert '--rdzv_endpoint="$PTSDK_RDZV_HOST":29500' in node and "--nnodes=2" in node
    assert FIRST_NODE not in node and "prepare_data" not in node and "export.py" not in node
    for text in (script, node):
        (tmp_path / "check.sh").write_text(text)
        assert subprocess.run(["bash", "-n", str(tmp_path / "check.sh")], capture_output=True).returncode == 0


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
