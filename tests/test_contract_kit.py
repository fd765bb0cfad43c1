"""The backend contract fits frameworks that are not one config file read by a Trainer.

A temporary *installed* distribution (dist-info with a `ptsdk` entry point) brings two backends:
one whose native config is a list of Hydra overrides launched by torchrun (vERL's shape) and one
whose native config is a command line launched by the deepspeed launcher (OpenRLHF's shape).
The contract kit runs against both and against every built-in backend, with every example job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml
from conftest import EXAMPLES, fake_model

FAKES = '''
from dataclasses import replace
from pathlib import Path

from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins import hookimpl
from ptsdk.plugins.backend import Backend, Note, Plan, PlanFile
from ptsdk.plugins.kit import Effective, TrainerBackend, apply_passthrough, common_env, launcher_for, local_inputs

EVIDENCE = "tests/test_contract_kit.py::test_contract_kit_on_entry_point_backends"
V, D = Verified.validated, Verified.declared


class HydraFake(Backend):
    """Native config = Hydra overrides (no config file), launched by torchrun."""

    name = "hydrafake"
    framework = "hydrafake"
    capabilities = (
        *caps("method", "sft grpo", V, EVIDENCE), *caps("adapter", "full lora", V, EVIDENCE),
        *caps("device", "cpu", V, EVIDENCE), *caps("strategy", "ddp fsdp", D), *caps("reward", "functions", D),
    )

    def static_problems(self, job):
        return ["data.eval: hydrafake has no evaluation split; remove data.eval"] if job.data.eval else []

    def translate(self, job):
        notes = []
        overrides = {"model.path": job.model.name_or_path, "data.train_files": "data/train.parquet",
                     "data.train_batch_size": job.training.global_batch_size,
                     "optim.lr": job.training.learning_rate, "trainer.n_gpus_per_node": job.distributed.gpus_per_node}
        if job.adapter.type == "lora":
            overrides["model.lora_rank"] = job.adapter.r
        apply_passthrough(job, self.name, overrides, notes)
        notes.append(Note("training.global_batch_size", "derived", "data.train_batch_size counts prompts"))
        return Plan(backend=self.name, files=[PlanFile("README.txt", content="overrides only\\n")],
                    entrypoint=["-m", "hydrafake.trainer"], args=[f"{k}={v}" for k, v in overrides.items()],
                    launcher=launcher_for(job), env=common_env(job), notes=notes, inputs=local_inputs(job), job=job)


class CliFake(TrainerBackend):
    """Native config = a command line of dotted flags, launched by the deepspeed launcher."""

    name = "clifake"
    framework = "clifake"
    capabilities = (*caps("method", "sft dpo", V, EVIDENCE), *caps("adapter", "full lora qlora", V, EVIDENCE),
                    *caps("loss", "dpo:sigmoid", V, EVIDENCE), *caps("device", "cpu", V, EVIDENCE),
                    *caps("strategy", "ddp deepspeed_zero2", D))

    def translate(self, job):
        t = job.training
        args = ["--model.model_name_or_path", job.model.name_or_path, "--data.dataset", job.data.train.path,
                "--train.batch_size", str(t.global_batch_size), "--train.micro_batch_size", str(t.micro_batch_size),
                "--adam.lr", str(t.learning_rate)]
        if job.adapter.type != "full":
            args += ["--ds.lora.rank", str(job.adapter.r)]
        effective = Effective.from_job(
            job, micro_batch=t.micro_batch_size, gradient_accumulation=job.gradient_accumulation_steps,
            learning_rate=t.learning_rate, lr_scheduler=t.lr_scheduler, warmup=None, max_length=None,
            truncation="drop", packing=False, loss_mask="completion", data_order="file order",
            optimizer="adamw", weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
            adapter_init=None, loss_normalization="tokens", sources={"truncation": "clifake drops"},
        )
        module = "clifake.cli.train_dpo" if job.method.name == "dpo" else "clifake.cli.train_sft"
        return Plan(
            backend=self.name, files=[], entrypoint=["-m", module], args=args, launcher=launcher_for(job, "deepspeed"),
            env=common_env(job), effective=effective.to_dict(), job=job,
        )

    def resume(self, plan, run_dir):
        return replace(plan, args=[*plan.args, "--ckpt.load_checkpoint"])


@hookimpl
def ptsdk_register_backends(register):
    register(HydraFake)
    register(CliFake)
'''

CHECK = """
import glob, json, sys
from ptsdk.plugins.manager import get_backends
from ptsdk.plugins.testing import contract_problems

jobs = sorted(glob.glob(sys.argv[1] + "/*.yaml"))
problems = {name: contract_problems(cls, jobs) for name, cls in get_backends().items()}
print(json.dumps({"jobs": len(jobs), "problems": problems}))
"""


def install(site: Path) -> None:
    (site / "ptsdk_fakes.py").write_text(textwrap.dedent(FAKES))
    dist = site / "ptsdk_fakes-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ptsdk-fakes\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[ptsdk]\nfakes = ptsdk_fakes\n")


def job_copy(name: str, tmp: Path) -> Path:
    """An example job with absolute data paths and a (placeholder) local model folder."""
    data = yaml.safe_load((EXAMPLES / "jobs" / name).read_text())
    data["model"]["name_or_path"] = str(fake_model(tmp / "model"))
    for split in ("train", "eval"):
        if split in data["data"]:
            data["data"][split]["path"] = str((EXAMPLES / "jobs" / data["data"][split]["path"]).resolve())
    path = tmp / name
    path.write_text(yaml.safe_dump(data))
    return path


def run(site: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=120)


def test_contract_kit_on_entry_point_backends(tmp_path: Path) -> None:
    install(tmp_path)
    proc = run(tmp_path, "-c", CHECK, str(EXAMPLES / "jobs"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["jobs"] >= 10
    assert {"hydrafake", "clifake", "trl", "axolotl", "verl", "openrlhf"} <= set(result["problems"])
    assert all(p == [] for p in result["problems"].values()), result["problems"]


def test_overrides_backend_through_the_cli(tmp_path: Path) -> None:
    """ptsdk renders, validates and writes a plan whose native config is a list of overrides."""
    install(tmp_path)
    job = job_copy("sft_ddp.yaml", tmp_path)
    proc = run(
        tmp_path,
        "-m",
        "ptsdk",
        "translate",
        str(job),
        "-b",
        "hydrafake",
        "--no-native-check",
        "--out",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "# native arguments" in proc.stdout and "data.train_batch_size=" in proc.stdout
    script = (tmp_path / "out" / "command.sh").read_text()
    assert "-m torch.distributed.run --nproc_per_node=2 --standalone -m hydrafake.trainer model.path=" in script
    # One feasibility verdict: a job hydrafake's own static check refuses is refused by validate -b hydrafake
    # and left out of every "who else can run it" list.
    lora = job_copy("sft_lora.yaml", tmp_path)
    proc = run(tmp_path, "-m", "ptsdk", "validate", str(lora), "-b", "trl")
    assert proc.returncode == 0, proc.stderr
    # (built-in backends that also run CPU LoRA SFT, verl say, may join these lists)
    also = proc.stdout.split("also accepted by: ", 1)[1].split(")", 1)[0].split(", ")
    assert {"axolotl", "clifake"} <= set(also) and "hydrafake" not in also
    proc = run(tmp_path, "-m", "ptsdk", "validate", str(lora), "-b", "hydrafake")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "data.eval: hydrafake has no evaluation split" in proc.stderr
    accepted = proc.stderr.split("backends that accept the whole job: ", 1)[1].split("\n", 1)[0].split(", ")
    assert {"axolotl", "clifake", "trl"} <= set(accepted) and "hydrafake" not in accepted


def test_command_line_backend_through_the_cli(tmp_path: Path) -> None:
    """A command-line backend: no config file, its flags are the config, the deepspeed launcher starts it."""
    install(tmp_path)
    job = job_copy("sft_ddp.yaml", tmp_path)
    proc = run(tmp_path, "-m", "ptsdk", "translate", str(job), "-b", "clifake", "--no-native-check", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["native_config"] is None and plan["entrypoint"] == ["-m", "clifake.cli.train_sft"]
    assert plan["launcher"]["kind"] == "deepspeed"
    argv = plan["commands"][-1]["argv"]
    assert argv[:7] == [
        "{python}",
        "-m",
        "deepspeed.launcher.runner",
        "--num_gpus=2",
        "--num_nodes=1",
        "--module",
        "clifake.cli.train_sft",
    ]
    assert argv[argv.index("--train.batch_size") + 1] == "8"
