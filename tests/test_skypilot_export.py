"""`ptsdk export skypilot`: the task YAML is parsed by SkyPilot's own parser (sky.Task.from_yaml, no cloud
credentials), its run step is executed as SkyPilot would on two nodes (with a stand-in ptsdk that validates
the job each node would run), and bad input is refused with `field: problem` lines before anything is written.

SkyPilot is not a ptsdk dependency (about 460 MB): the first test that needs it builds a virtual environment once
under $PTSDK_HOME/tools (uv: a few seconds; pip: about a minute), or uses PTSDK_SKYPILOT_PYTHON, an interpreter
that has it. A parser that rejects the YAML, or an environment that cannot be built, fails the test."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import fake_model

SKYPILOT = "skypilot==0.14.1"

PARSE = r"""
import json, sys
import sky

out = []
for path in sys.argv[1:]:
    try:
        task = sky.Task.from_yaml(path)
    except Exception as exc:  # the parser's verdict, reported per file
        out.append({"path": path, "error": f"{type(exc).__name__}: {exc}"})
        continue
    resources = []
    for r in task.resources:
        resources.append({
            "accelerators": r.accelerators,
            "cpus": r.cpus,
            "cloud": str(r.cloud).lower() if r.cloud is not None else None,
        })
    out.append({
        "path": path, "error": None, "name": task.name, "num_nodes": task.num_nodes, "resources": resources,
        "setup": task.setup, "run": task.run, "file_mounts": task.file_mounts, "workdir": task.workdir,
    })
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def sky_python() -> str:
    """An interpreter with SkyPilot: PTSDK_SKYPILOT_PYTHON, else a venv built once under $PTSDK_HOME/tools."""
    given = os.environ.get("PTSDK_SKYPILOT_PYTHON")
    if given:
        return given
    from ptsdk.envs import ptsdk_home

    home = ptsdk_home() / "tools" / SKYPILOT.replace("==", "-")
    python = home / "bin" / "python"
    if (home / ".ready").is_file():
        return str(python)
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = home.with_name(f"{home.name}.{uuid.uuid4().hex[:8]}.partial")
    uv = Path(sys.executable).with_name("uv")
    uv_path = str(uv) if uv.exists() else shutil.which("uv")
    try:
        if uv_path:
            subprocess.run([uv_path, "venv", "-q", "--python", sys.executable, str(staging)], check=True)
            install = [uv_path, "pip", "install", "-q", "--python", str(staging / "bin" / "python"), SKYPILOT]
        else:
            subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True)
            install = [str(staging / "bin" / "python"), "-m", "pip", "install", "-q", SKYPILOT]
        subprocess.run(install, check=True, timeout=900)
        (staging / ".ready").touch()
        try:
            staging.rename(home)
        except OSError:  # another session finished first: use its environment
            if not (home / ".ready").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(python)


def sky_parse(sky_python: str, *paths: Path) -> list[dict[str, Any]]:
    """SkyPilot's own parse of each task file: the Task's fields, or the parser's error."""
    done = subprocess.run(
        [sky_python, "-c", PARSE, *map(str, paths)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"SkyPilot's parser did not run: {done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def two_node_job(root: Path, **distributed: Any) -> Path:
    """A 2-node, 4-GPU-per-node SFT job whose model and data are local, named relative to the job file."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    rows = "".join(json.dumps({"prompt": f"{i}+1=", "completion": str(i + 1)}) + "\n" for i in range(8))
    (root / "data" / "train.jsonl").write_text(rows)
    fake_model(root / "my model")  # a space in a local name
    jobs = root / "jobs"
    jobs.mkdir(exist_ok=True)
    job = {
        "name": "sft2",
        "method": {"name": "sft"},
        "model": {"name_or_path": "../my model"},
        "data": {"train": {"path": "../data/train.jsonl"}},
        "training": {"global_batch_size": 24},  # divisible by 2 and 3 nodes x 4
        "distributed": {"device": "gpu", "nodes": 2, "gpus_per_node": 4, **distributed},
    }
    path = jobs / "sft2.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def test_two_node_job_is_accepted_by_skypilots_parser(ptsdk, tmp_path: Path, sky_python: str) -> None:
    job = two_node_job(tmp_path)
    out = tmp_path / "sft2.sky.yaml"
    r = ptsdk("export", "skypilot", str(job), "-b", "trl", "--accelerators", "H100", "--cloud", "aws", "-o", str(out))
    assert r.code == 0, r.err
    cpu_job = tmp_path / "cpu.sky.yaml"
    r = ptsdk("export", "skypilot", "examples/jobs/sft_lora.yaml", "-b", "trl", "-o", str(cpu_job))
    assert r.code == 0, r.err
    default_gpus = tmp_path / "any.sky.yaml"
    r = ptsdk("export", "skypilot", str(job), "-b", "axolotl", "--nodes", "3", "-o", str(default_gpus))
    assert r.code == 0, r.err
    # A control: the harness does see a rejection (the test fails, not skips, on one).
    broken = tmp_path / "broken.sky.yaml"
    broken.write_text(out.read_text() + "no_such_field: 1\n")

    two, cpu, three, bad = sky_parse(sky_python, out, cpu_job, default_gpus, broken)
    assert bad["error"] and "no_such_field" in bad["error"]
    for task in (two, cpu, three):
        assert task["error"] is None, task["error"]

    assert two["name"] == "sft2" and two["num_nodes"] == 2
    assert two["resources"] == [{"accelerators": {"H100": 4}, "cpus": None, "cloud": "aws"}]
    assert two["setup"].endswith('/.ptsdk-venv/bin/ptsdk" env create trl')
    assert "run job.json --backend trl --run-dir" in two["run"]
    assert "SKYPILOT_NODE_IPS" in two["run"] and "SKYPILOT_NUM_NODES" in two["run"]
    mounts = two["file_mounts"]
    assert mounts["~/ptsdk-jobs/sft2/inputs/0-train.jsonl"] == str(tmp_path / "data" / "train.jsonl")
    assert mounts["~/ptsdk-jobs/sft2/inputs/1-my_model"] == str(tmp_path / "my model")
    assert all(Path(src).exists() for src in mounts.values())  # SkyPilot checks these only at launch

    assert cpu["num_nodes"] == 1 and cpu["resources"][0]["cpus"] == "2+" and not cpu["resources"][0]["accelerators"]
    assert "SKYPILOT_NODE_IPS" not in cpu["run"]
    assert all(Path(src).exists() for src in cpu["file_mounts"].values())

    assert three["num_nodes"] == 3  # --nodes
    assert sorted(three["resources"], key=str) == sorted(
        ({"accelerators": {gpu: 4}, "cpus": None, "cloud": None} for gpu in ("H100", "A100-80GB", "A100")), key=str
    )


def _stand_in_ptsdk(home: Path) -> None:
    """$HOME/.ptsdk-venv/bin/ptsdk as the task's setup would leave it, but it records its arguments and only
    validates the job it was given (with the real ptsdk: spec, files, data and the backend's verdict)."""
    bin_dir = home / ".ptsdk-venv" / "bin"
    bin_dir.mkdir(parents=True)
    stub = bin_dir / "ptsdk"
    stub.write_text(
        f"#!{sys.executable}\n"
        "import json, os, subprocess, sys\n"
        "args = sys.argv[1:]\n"
        "open(os.path.join(os.environ['HOME'], 'argv.json'), 'w').write(json.dumps([os.getcwd(), *args]))\n"
        "assert args[0] == 'run', args\n"
        "backend = args[args.index('--backend') + 1]\n"
        "sys.exit(subprocess.call([sys.executable, '-m', 'ptsdk', 'validate', args[1], '--backend', backend]))\n"
    )
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)


def _node(tmp_path: Path, task: dict[str, Any], rank: int, num_nodes: int = 2) -> subprocess.CompletedProcess[str]:
    """The task's run step on one node: the job's file mounts in place under a fresh $HOME, SkyPilot's env vars."""
    home = tmp_path / f"node{rank}-{num_nodes}"
    for remote, local in task["file_mounts"].items():
        if not remote.startswith("~/ptsdk-jobs/"):
            continue  # the ptsdk checkout: the stand-in ptsdk is installed instead
        target = home / remote.removeprefix("~/")
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if Path(local).is_dir() else shutil.copy)(local, target)
    _stand_in_ptsdk(home)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "SKYPILOT_NODE_RANK": str(rank),
        "SKYPILOT_NODE_IPS": "10.1.0.7\n10.1.0.8",
        "SKYPILOT_NUM_NODES": str(num_nodes),
        "SKYPILOT_NUM_GPUS_PER_NODE": "4",
        "SKYPILOT_TASK_ID": "sky-2026-11-28-20-00-00-000000_c_1",
        **{k: v for k, v in os.environ.items() if k.startswith(("PTSDK_", "PYTHON"))},
    }
    return subprocess.run(["bash", "-c", task["run"]], env=env, capture_output=True, text=True, timeout=120)


def test_run_step_points_every_node_at_the_head(ptsdk, tmp_path: Path) -> None:
    job = two_node_job(tmp_path, master_addr="10.9.9.9")
    r = ptsdk("export", "skypilot", str(job), "-b", "trl", "--accelerators", "H100:4")
    assert r.code == 0, r.err
    assert "replaced on each node by the head node's address" in r.err
    task = yaml.safe_load(r.out)
    for rank in (0, 1):
        done = _node(tmp_path, task, rank)
        assert done.returncode == 0, done.stdout + done.stderr
        home = tmp_path / f"node{rank}-2"
        cwd, *argv = json.loads((home / "argv.json").read_text())
        run_dir = f"{home}/ptsdk-runs/sft2-trl-sky-2026-11-28-20-00-00-000000_c_1-node{rank}"
        assert argv == ["run", "job.json", "--backend", "trl", "--run-dir", run_dir]
        assert cwd == str(home / "ptsdk-jobs" / "sft2")
        sent = json.loads((home / "ptsdk-jobs" / "sft2" / "job.json").read_text())
        assert sent["distributed"]["master_addr"] == "10.1.0.7"  # the head, on every node
        assert sent["distributed"]["nodes"] == 2
        assert sent["model"]["name_or_path"] == "./inputs/1-my_model"
        assert "valid sft job" in done.stdout  # the real ptsdk accepted the relocated job on this node
    # SkyPilot started another number of nodes (sky launch --num-nodes): refused, not a different job.
    done = _node(tmp_path, task, 0, num_nodes=3)
    assert done.returncode == 2 and "export it again with --nodes" in done.stderr
    assert not (tmp_path / "node0-3" / "argv.json").exists()


def _refused(r: Any, *expected: str) -> None:
    assert r.code == 2, (r.out, r.err)
    assert "Traceback" not in r.err and r.out == ""
    for text in expected:
        assert text in r.err, r.err


@pytest.mark.parametrize(
    ("backend", "options", "expected"),
    [
        ("openrlhf", [], ["distributed.nodes: openrlhf starts 2 nodes with DeepSpeed's launcher"]),
        ("trl", ["--accelerators", "H100:8"], ["--accelerators H100:8: the job runs 4 process(es) per node"]),
        ("trl", ["--accelerators", "H100:x"], ["is not TYPE or TYPE:COUNT"]),
        ("trl", ["--accelerators", "H100:0"], ["asks for no accelerator"]),
        ("trl", ["--cloud", "my cloud"], ["--cloud 'my cloud': not a cloud name"]),
        ("trl", ["--nodes", "0"], ["--nodes 0: a task runs on at least 1 node"]),
        ("trl", ["--name", "a b"], ["--name 'a b'"]),
        ("trl", ["--ptsdk", str(Path.cwd() / "no-such-checkout")], ["no pyproject.toml there"]),
        ("nosuch", [], ["nosuch"]),
    ],
)
def test_refused_before_anything_is_written(
    ptsdk, tmp_path: Path, backend: str, options: list[str], expected: list[str]
) -> None:
    job = two_node_job(tmp_path)
    out = tmp_path / "task.yaml"
    _refused(ptsdk("export", "skypilot", str(job), "-b", backend, *options, "-o", str(out)), *expected)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["data", "jobs", "my model"]


def test_ray_backend_on_several_nodes_is_refused(ptsdk, tmp_path: Path) -> None:
    rows = "".join(json.dumps({"prompt": f"{i}+1=", "ground_truth": str(i + 1)}) + "\n" for i in range(8))
    (tmp_path / "rl.jsonl").write_text(rows)
    (tmp_path / "rewards.py").write_text("def r(prompts, completions, **kw):\n    return [0.0 for _ in completions]\n")
    job = {
        "method": {"name": "grpo", "num_generations": 4, "rewards": ["rewards.py:r"]},
        "model": {"name_or_path": str(fake_model(tmp_path / "model"))},
        "data": {"train": {"path": "rl.jsonl"}},
        "training": {"global_batch_size": 16, "micro_batch_size": 2},
        "distributed": {"device": "gpu", "nodes": 2, "gpus_per_node": 4, "strategy": "fsdp"},
    }
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(job))
    _refused(ptsdk("export", "skypilot", str(path), "-b", "verl"), "distributed.nodes: verl runs this job on a Ray")
    # One node is fine, and the reward file travels with the job.
    r = ptsdk("export", "skypilot", str(path), "-b", "verl", "--nodes", "1")
    assert r.code == 0, r.err
    task = yaml.safe_load(r.out)
    assert task["file_mounts"]["~/ptsdk-jobs/grpo/inputs/2-rewards.py"] == str(tmp_path / "rewards.py")
    assert '"./inputs/2-rewards.py:r"' in task["run"]


def test_bad_job_is_a_field_problem(ptsdk, tmp_path: Path) -> None:
    job = two_node_job(tmp_path, gpus_per_node="four")
    _refused(ptsdk("export", "skypilot", str(job), "-b", "trl"), "distributed.gpus_per_node")
    _refused(ptsdk("export", "skypilot", str(tmp_path / "nope.yaml"), "-b", "trl"), "no such job file")
    job = two_node_job(tmp_path)
    (tmp_path / "data" / "train.jsonl").unlink()
    _refused(ptsdk("export", "skypilot", str(job), "-b", "trl"), "data.train.path")


def test_out_never_replaces_a_file(ptsdk, tmp_path: Path) -> None:
    out = tmp_path / "task.yaml"
    out.write_text("mine\n")
    _refused(ptsdk("export", "skypilot", str(two_node_job(tmp_path)), "-b", "trl", "-o", str(out)), "exists")
    assert out.read_text() == "mine\n"
