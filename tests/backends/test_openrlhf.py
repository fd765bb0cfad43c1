"""OpenRLHF for real: every command line ptsdk generates goes through OpenRLHF 0.11.2's own parser
(abbreviations off) and the checks its main block and train() run after parsing, in its own
environment; the data goes through the run's own preparation step; the bridged reward is loaded
and called by OpenRLHF's own reward executor.

OpenRLHF does not run on a CPU unmodified (flash-attn import, torch.cuda.set_device, a cuda device
mesh). Its CPU smoke mode (backends/openrlhf/cpu_smoke.py: a flash_attn stand-in and those calls
redirected, nothing else) trains SFT-LoRA and full DPO for real here with OpenRLHF's own CLIs,
trainer, loss and DeepSpeed engine, and the SFT job is compared with TRL through `ptsdk compare`:
the matrix says `trained` for those. Everything else is `validated` by OpenRLHF's own parsers.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from ptsdk.backends.openrlhf.backend import CPU_SMOKE, HERE as BACKEND_DIR, OpenRLHFBackend
from ptsdk.matrix.capability import Verified
from ptsdk.matrix.check import requirements_of
from ptsdk.plugins.backend import Plan
from ptsdk.plugins.testing import BackendContract
from ptsdk.rundir import write_plan
from ptsdk.spec import load_job

from .conftest import assert_loads, dataset_with_configs, run_on, trained

pytestmark = pytest.mark.openrlhf

DATA = EXAMPLES / "data"
REWARD = f"{(EXAMPLES / 'rewards.py').resolve()}:correct"
PARSERS = "test_every_command_line_passes_openrlhf_parsers"


@pytest.fixture(scope="module")
def model(openrlhf_env, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The example's tiny Llama, built with OpenRLHF's own transformers."""
    out = tmp_path_factory.mktemp("openrlhf-model") / "tiny-model"
    subprocess.run(
        [openrlhf_env.python, str(EXAMPLES / "make_tiny_model.py"), str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def gpu_job(model_path: Path | str, /, **overrides: Any) -> dict[str, Any]:
    """A small GPU job (OpenRLHF has no CPU mode): SFT unless `method` says otherwise."""
    job: dict[str, Any] = {
        "method": {"name": "sft"},
        "model": {"name_or_path": str(model_path), "attn_implementation": "sdpa"},
        "data": {"train": {"path": str(DATA / "sft_train.jsonl")}, "max_length": 64},
        "training": {"global_batch_size": 8, "micro_batch_size": 4, "learning_rate": 1e-4, "max_steps": 3},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(job.get(key), dict) and not {"name", "type"} & set(value):
            job[key] = {**job[key], **value}
        else:
            job[key] = value
    return job


def rl(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "max_prompt_length": 32,
        "max_completion_length": 8,
        "rewards": [REWARD],
        **fields,
    }


RL_DATA = {"train": {"path": str(DATA / "rl_train.jsonl")}, "max_length": 64}
PREF_DATA = {"train": {"path": str(DATA / "pref_train.jsonl")}, "max_length": 64}
TWO_GPUS = {"gpus_per_node": 2}

#: Every method, adapter and topology the matrix claims for OpenRLHF, one job each.
CASES: dict[str, dict[str, Any]] = {
    "sft-full-1gpu-eval": {
        "data": {"eval": {"path": str(DATA / "sft_eval.jsonl")}},
        "output": {"eval_steps": 2, "save_steps": 2},
    },
    "sft-lora-zero1-2gpu": {
        "adapter": {"type": "lora", "r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
        "distributed": {**TWO_GPUS, "strategy": "deepspeed", "zero_stage": 1},
        "training": {"gradient_checkpointing": True, "global_batch_size": 16},
    },
    "sft-qlora-zero2-padding-free": {
        "adapter": {"type": "qlora", "r": 8, "alpha": 16},
        "model": {"quantization": "4bit"},
        "distributed": {"strategy": "deepspeed", "zero_stage": 2},
        "training": {"padding_free": True, "adam_beta1": 0.8, "adam_beta2": 0.95, "adam_epsilon": 1e-6},
    },
    "sft-instruction-eval-split-min-lr": {
        "data": {"train": {"path": str(DATA / "sft_train.jsonl")}, "eval_split": 0.25},
        "training": {"min_lr_ratio": 0.1},
        "output": {"eval_steps": 2},
    },
    "sft-full-zero3-offload-2nodes": {
        "distributed": {
            "nodes": 2,
            "gpus_per_node": 8,
            "master_addr": "10.0.0.1",
            "strategy": "deepspeed",
            "zero_stage": 3,
            "offload": "optimizer",
        },
        "training": {"global_batch_size": 64, "micro_batch_size": 2, "max_steps": None, "epochs": 2},
    },
    "sft-ddp-2gpu-chat": {
        "data": {"train": {"path": str(DATA / "chat_train.jsonl")}, "format": "messages", "max_length": 96},
        "distributed": TWO_GPUS,
    },
    "sft-loss-on-all": {"method": {"name": "sft", "loss_on": "all"}},
    "sft-inline-chat-template": {
        "model": {"chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"}
    },
    "dpo-sigmoid-lora-zero0": {
        "method": {"name": "dpo", "beta": 0.1, "label_smoothing": 0.1},
        "data": PREF_DATA,
        "adapter": {"type": "lora", "r": 8, "alpha": 16},
        "distributed": {"strategy": "deepspeed", "zero_stage": 0},
    },
    "dpo-chat-template": {
        "method": {"name": "dpo"},
        "data": PREF_DATA,
        "model": {"chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"},
    },
    "ipo-full-zero3": {
        "method": {"name": "ipo", "beta": 0.2},
        "data": {**PREF_DATA, "eval": {"path": str(DATA / "pref_train.jsonl"), "max_samples": 8}},
        "distributed": {"strategy": "deepspeed", "zero_stage": 3},
    },
    "ppo-critic-4gpu-colocated": {
        "method": rl("ppo"),
        "data": RL_DATA,
        "distributed": {"gpus_per_node": 4},
        "rollout": {"engine": "vllm", "tensor_parallel_size": 2, "num_engines": 2, "colocate": True},
        "training": {"global_batch_size": 16, "micro_batch_size": 2},
    },
    "ppo-reward-model": {
        "method": {**rl("ppo"), "rewards": [], "reward_model": "MODEL"},
        "data": RL_DATA,
    },
    "grpo-lora-zero2-2gpu-kl": {
        "method": rl("grpo", num_generations=4, kl_coef=0.01),
        "data": RL_DATA,
        "adapter": {"type": "lora", "r": 8, "alpha": 16},
        "distributed": {**TWO_GPUS, "strategy": "deepspeed", "zero_stage": 2},
        "training": {"micro_batch_size": 2},
    },
    "grpo-dr-grpo-padding-free": {
        "method": rl("grpo", num_generations=4, loss_type="dr_grpo"),
        "data": RL_DATA,
        "training": {"padding_free": True, "micro_batch_size": 4},
    },
    # KL: both placements, every estimator (the methods' defaults: GRPO loss/k3, the others reward/k1).
    "grpo-kl-loss-k1-token-batching": {
        "method": rl("grpo", num_generations=4, kl_coef=0.02, kl_estimator="k1"),
        "data": RL_DATA,
        "training": {"max_tokens_per_micro_batch": 256, "min_lr_ratio": 0.1},
    },
    "rloo-kl-loss-k2": {
        "method": rl("rloo", num_generations=4, kl_placement="loss", kl_estimator="k2"),
        "data": RL_DATA,
    },
    "grpo-kl-reward-k2": {
        "method": rl("grpo", num_generations=4, kl_coef=0.02, kl_placement="reward", kl_estimator="k2"),
        "data": RL_DATA,
    },
    "reinforce-pp-kl-reward-k3": {"method": rl("reinforce_pp", kl_estimator="k3"), "data": RL_DATA},
    # Several optimizer steps per rollout, two PPO epochs, the critic's own learning rate, GAE's gamma/lambda.
    "ppo-rollout-epochs-critic": {
        "method": rl(
            "ppo", rollout_batch_size=16, epochs_per_rollout=2, critic_learning_rate=5e-6, gamma=0.99, lam=0.9
        ),
        "data": RL_DATA,
        "training": {"adam_beta2": 0.95},
    },
    "rloo-qlora": {
        "method": rl("rloo", num_generations=4),
        "data": RL_DATA,
        "adapter": {"type": "qlora", "r": 8, "alpha": 16},
        "model": {"quantization": "4bit"},
    },
    "reinforce-pp": {"method": rl("reinforce_pp"), "data": RL_DATA},
    "reinforce-pp-baseline": {"method": rl("reinforce_pp", num_generations=4), "data": RL_DATA},
    "sft-lora-cpu-smoke": {
        "adapter": {"type": "lora", "r": 8, "alpha": 16},
        "model": {"attn_implementation": None},
        "distributed": {"device": "cpu"},
    },
    "dpo-cpu-smoke": {"method": {"name": "dpo"}, "data": PREF_DATA, "distributed": {"device": "cpu"}},
    "rloo-ray-cluster-2nodes-dedicated-engines": {
        "method": rl("rloo", num_generations=4),
        "data": RL_DATA,
        "distributed": {
            "nodes": 2,
            "gpus_per_node": 8,
            "master_addr": "head",
            "ray_address": "http://head:8265",
            "strategy": "deepspeed",
            "zero_stage": 3,
            "offload": "optimizer",
        },
        "rollout": {"engine": "vllm", "tensor_parallel_size": 4, "num_engines": 2, "colocate": False},
        "training": {"global_batch_size": 64, "micro_batch_size": 2, "max_steps": None, "epochs": 1},
    },
}


def write_job(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def plan_in_dir(tmp_path: Path, name: str, data: dict[str, Any], *, resume: bool = False) -> tuple[Plan, Path]:
    """The job translated and written, as `ptsdk run` writes a run directory."""
    job = load_job(write_job(tmp_path, name, data), check_files=False)
    backend = OpenRLHFBackend()
    plan = backend.translate(job)
    workdir = tmp_path / f"run-{name}"
    if resume:  # as after a run that saved a DeepSpeed checkpoint (`latest` names its tag)
        (workdir / "checkpoints").mkdir(parents=True)
        (workdir / "checkpoints" / "latest").write_text("global_step1")
        plan = backend.resume(plan, workdir)
    workdir.mkdir(exist_ok=True)
    write_plan(plan, workdir)
    return plan, workdir


def check_all(tmp_path: Path, jobs: dict[str, dict[str, Any]]) -> dict[str, tuple[Plan, Path, dict[str, Any]]]:
    """Every job translated, then checked in ONE process of OpenRLHF's environment."""
    backend = OpenRLHFBackend()
    planned = {name: plan_in_dir(tmp_path, name, data) for name, data in jobs.items()}
    requests = [backend.check_request(plan, workdir) for plan, workdir in planned.values()]
    results = backend.run_check(requests, timeout=900)
    return {name: (*planned[name], result) for name, result in zip(planned, results, strict=True)}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def subset_dataset(folder: Path) -> Path:
    """A local dataset with two configurations (what `datasets.load_dataset(path, name)` reads offline), like
    a hub dataset with subsets: `main` holds the example's records, `other` one record that must not appear."""
    return dataset_with_configs(
        folder,
        {
            "main": read_jsonl(DATA / "sft_train.jsonl")[:8],
            "other": [{"prompt": "from the other subset", "completion": " no"}],
        },
    )


def test_every_command_line_passes_openrlhf_parsers(openrlhf_env, model, tmp_path) -> None:
    jobs = {name: gpu_job(model, **case) for name, case in CASES.items()}
    jobs["ppo-reward-model"]["method"]["reward_model"] = str(model)
    hub = subset_dataset(tmp_path / "hub-dataset")
    jobs["sft-hub-subset"] = gpu_job(model, data={"train": {"path": str(hub), "subset": "main"}})
    alpaca = tmp_path / "alpaca.jsonl"
    alpaca.write_text(
        '{"instruction": "Add the numbers.", "input": "6 + 6", "output": "12"}\n'
        '{"instruction": "What is 4 + 8?", "input": "", "output": "12"}\n'
    )
    jobs["sft-instruction-eval-split-min-lr"]["data"].update(train={"path": str(alpaca)}, format="instruction")
    results = check_all(tmp_path, jobs)

    failed = {name: r["errors"] for name, (_, _, r) in results.items() if not r["ok"]}
    assert not failed, json.dumps(failed, indent=1)
    for name, (plan, workdir, result) in results.items():
        assert result["parsed"] and result["versions"]["openrlhf"] == "0.11.2", name
        assert (workdir / "data" / "train.jsonl").exists(), name
        if plan.job.method.family == "rl":
            # train_ppo_ray's argument-only asserts (colocation GPU counts...) ran too.
            assert result["train_asserts"] >= 3, name

    # The cases cover everything the matrix claims on the strength of this test.
    covered = {req.key for plan, _, _ in results.values() for req in requirements_of(plan.job)}
    claimed = {c.key for c in OpenRLHFBackend.capabilities if c.evidence.endswith("::" + PARSERS)}
    assert claimed <= covered, sorted(claimed - covered)

    # Units: RL counts prompts per rollout and completions per optimizer step.
    grpo = results["grpo-lora-zero2-2gpu-kl"][0].args
    assert flag(grpo, "--rollout.batch_size") == "2" and flag(grpo, "--train.batch_size") == "8"
    assert flag(grpo, "--algo.advantage.estimator") == "group_norm" and "--algo.kl.use_loss" in grpo
    assert flag(grpo, "--data.max_len") == "40"  # 32 prompt + 8 completion tokens
    assert flag(results["grpo-dr-grpo-padding-free"][0].args, "--algo.advantage.estimator") == "dr_grpo"
    assert "--ds.packing_samples" in results["grpo-dr-grpo-padding-free"][0].args
    # KL: in the loss (--algo.kl.use_loss) or the reward, with the job's estimator.
    for name, in_loss, estimator in (
        ("grpo-lora-zero2-2gpu-kl", True, "k3"),
        ("grpo-kl-loss-k1-token-batching", True, "k1"),
        ("rloo-kl-loss-k2", True, "k2"),
        ("grpo-kl-reward-k2", False, "k2"),
        ("reinforce-pp-kl-reward-k3", False, "k3"),
        ("reinforce-pp", False, None),  # reward/k1: OpenRLHF's default estimator
    ):
        args = results[name][0].args
        assert ("--algo.kl.use_loss" in args) == in_loss and flag(args, "--algo.kl.estimator") == estimator, name
    tokens = results["grpo-kl-loss-k1-token-batching"][0].args
    assert "--train.dynamic_batch_enable" in tokens and flag(tokens, "--train.max_tokens_per_gpu") == "256"
    assert (
        flag(tokens, "--actor.lr_scheduler") == "cosine_with_min_lr" and flag(tokens, "--actor.min_lr_ratio") == "0.1"
    )
    ppo_epochs = results["ppo-rollout-epochs-critic"][0].args
    assert flag(ppo_epochs, "--rollout.batch_size") == "16" and flag(ppo_epochs, "--train.batch_size") == "8"
    assert flag(ppo_epochs, "--train.max_epochs") == "2" and flag(ppo_epochs, "--critic.adam.lr") == "5e-06"
    assert flag(ppo_epochs, "--algo.advantage.gamma") == "0.99" and flag(ppo_epochs, "--algo.advantage.lambd") == "0.9"
    assert ppo_epochs[ppo_epochs.index("--critic.adam.betas") + 2] == "0.95"
    # max_steps 3 with 2 steps x 2 epochs per rollout of 16 prompts: one whole rollout.
    assert len(read_jsonl(results["ppo-rollout-epochs-critic"][1] / "data" / "train.jsonl")) == 16
    betas = results["sft-qlora-zero2-padding-free"][0].args
    assert betas[betas.index("--adam.betas") + 1 :][:2] == ["0.8", "0.95"] and flag(betas, "--adam.eps") == "1e-06"
    # The hub subset: only its configuration's records were prepared.
    # (laid out in ptsdk's order for OpenRLHF's sampler: the same records, in another order)
    prepared = {r["prompt"] for r in read_jsonl(results["sft-hub-subset"][1] / "data" / "train.jsonl")}
    assert prepared == {r["prompt"] for r in read_jsonl(DATA / "sft_train.jsonl")[:8]}
    # Alpaca records: the template rendered by the preparation step; eval_split held one of two records out.
    held = results["sft-instruction-eval-split-min-lr"][1] / "data"
    rows = read_jsonl(held / "train.jsonl") + read_jsonl(held / "eval.jsonl")
    assert len(read_jsonl(held / "eval.jsonl")) == 1 and {r["completion"] for r in rows} == {"12"}
    prompts = {r["prompt"] for r in rows}
    assert len(prompts) == 2 and all(p.startswith("Below is an instruction that describes a task") for p in prompts)
    assert sum("### Input:\n6 + 6\n\n### Response:\n" in p for p in prompts) == 1
    assert flag(results["reinforce-pp"][0].args, "--algo.advantage.estimator") == "reinforce"
    assert flag(results["reinforce-pp-baseline"][0].args, "--algo.advantage.estimator") == "reinforce_baseline"
    ppo = results["ppo-critic-4gpu-colocated"][0].args
    assert flag(ppo, "--algo.advantage.estimator") == "gae" and flag(ppo, "--critic.num_gpus_per_node") == "4"
    assert flag(ppo, "--vllm.tensor_parallel_size") == "2" and "--train.colocate_all" in ppo
    cluster_plan, cluster_dir, _ = results["rloo-ray-cluster-2nodes-dedicated-engines"]
    assert cluster_plan.launch.argv[1:5] == ["-m", "ray.scripts.scripts", "job", "submit"]
    assert "ray start --head" in (cluster_dir / "RAY.md").read_text()
    assert "--train.colocate_all" not in cluster_plan.args and flag(cluster_plan.args, "--actor.num_nodes") == "2"
    multi_plan, multi_dir, _ = results["sft-full-zero3-offload-2nodes"]
    assert (
        "--hostfile=hostfile" in multi_plan.launcher.args()
        and "10.0.0.1 slots=8" in (multi_dir / "hostfile").read_text()
    )
    assert flag(multi_plan.args, "--ds.zero_stage") == "3" and "--ds.adam_offload" in multi_plan.args
    # CPU smoke mode: the same module and flags behind the shim, one torchrun process, sdpa attention.
    for name, module in (("sft-lora-cpu-smoke", "train_sft"), ("dpo-cpu-smoke", "train_dpo")):
        plan = results[name][0]
        assert plan.entrypoint == [CPU_SMOKE, "-m", f"openrlhf.cli.{module}"], name
        assert plan.launcher.args() == ["--nproc_per_node=1", "--standalone"] and plan.env["DS_ACCELERATOR"] == "cpu"
        assert flag(plan.args, "--ds.zero_stage") == "0" and flag(plan.args, "--ds.param_dtype") == "bf16"
    assert flag(results["sft-lora-cpu-smoke"][0].args, "--ds.attn_implementation") == "sdpa"
    # all-linear is OpenRLHF's default string: the nargs="*" flag would make it a module name for peft.
    assert "--ds.lora.target_modules" not in results["sft-lora-cpu-smoke"][0].args

    # max_steps: the prepared file holds exactly max_steps x records per step.
    assert len(read_jsonl(results["sft-full-1gpu-eval"][1] / "data" / "train.jsonl")) == 3 * 8
    assert len(read_jsonl(results["grpo-lora-zero2-2gpu-kl"][1] / "data" / "train.jsonl")) == 3 * 2
    # DPO with a chat template needs message lists: strings were wrapped.
    row = read_jsonl(results["dpo-chat-template"][1] / "data" / "train.jsonl")[0]
    assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    # RL records carry their other columns as one JSON label for the reward.
    row = read_jsonl(results["reinforce-pp"][1] / "data" / "train.jsonl")[0]
    assert json.loads(row["ptsdk_columns"]) == {"ground_truth": "12"}
    # Each record one text, prompt and completion (3 steps x 8 records, in ptsdk's order for OpenRLHF's sampler).
    texts = {r["prompt"] + r["completion"] for r in read_jsonl(DATA / "sft_train.jsonl")}
    rows = read_jsonl(results["sft-loss-on-all"][1] / "data" / "train.jsonl")
    assert len(rows) == 3 * 8 and all(set(r) == {"text"} and r["text"] in texts for r in rows), rows[:3]


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def overriding(flag: str, value: object) -> dict[str, object]:
    """backend_options.openrlhf replacing a flag ptsdk sets from the job."""
    return {flag: value, "ptsdk_override": [flag]}


def test_bad_command_lines_and_data_are_caught(openrlhf_env, model, tmp_path) -> None:
    bad_pref = tmp_path / "bad_pref.jsonl"
    bad_pref.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": 3}\nnot json\n')
    no_kwargs = tmp_path / "strict_reward.py"
    no_kwargs.write_text("def score(prompts, completions):\n    return [0.0 for _ in completions]\n")
    grpo = {"method": rl("grpo", num_generations=4), "data": RL_DATA}
    jobs = {
        # OpenRLHF's own parser would take --train.micro for --train.micro_batch_size.
        "abbreviated": gpu_job(model, backend_options={"openrlhf": {"train.micro": 2}}),
        "unknown": gpu_job(model, backend_options={"openrlhf": {"train.no_such_flag": 1}}),
        # (ptsdk sets these flags from the job: ptsdk_override lets the passthrough replace them)
        "bad-choice": gpu_job(
            model, **grpo, backend_options={"openrlhf": overriding("algo.advantage.estimator", "ppo")}
        ),
        # the main block's own check after parsing
        "post-parse": gpu_job(
            model, **grpo, backend_options={"openrlhf": overriding("rollout.n_samples_per_prompt", 1)}
        ),
        # train()'s colocation assert: 2 GPUs but one engine of tensor parallel 1
        "train-assert": gpu_job(
            model, **grpo, distributed=TWO_GPUS, backend_options={"openrlhf": overriding("vllm.num_engines", 1)}
        ),
        "bad-data": gpu_job(model, method={"name": "dpo"}, data={"train": {"path": str(bad_pref)}}),
        "bad-reward": gpu_job(model, **{**grpo, "method": rl("grpo", rewards=[f"{no_kwargs}:score"])}),
    }
    results = {name: r for name, (_, _, r) in check_all(tmp_path, jobs).items()}
    errors = {name: "\n".join(r["errors"]) for name, r in results.items()}
    assert not any(r["ok"] for r in results.values()), errors
    assert "unrecognized arguments: --train.micro 2" in errors["abbreviated"]
    assert "unrecognized arguments: --train.no_such_flag 1" in errors["unknown"]
    assert "invalid choice: 'ppo'" in errors["bad-choice"]
    assert "group_norm requires n_samples_per_prompt > 1" in errors["post-parse"]
    assert "colocate" in errors["train-assert"] or "vllm_num_engines" in errors["train-assert"]
    assert "data.train line 2: chosen: expected a string, got int" in errors["bad-data"]
    assert "data.train line 3: not JSON" in errors["bad-data"]
    assert "must accept **kwargs" in errors["bad-reward"]


def test_reward_bridge_scores_in_openrlhf(openrlhf_env, model, tmp_path) -> None:
    """The run's own preparation step scores a sample; OpenRLHF's executor scores decoded queries."""
    plan, workdir = plan_in_dir(tmp_path, "grpo", gpu_job(model, method=rl("grpo", num_generations=4), data=RL_DATA))
    prepare = plan.prepare[0]
    proc = subprocess.run(
        [openrlhf_env.python if a == "{python}" else a for a in prepare.argv],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.split("prepared for OpenRLHF:", 1)[1])
    assert summary["reward_sample"]["rewards"] == [1.0]

    code = """
import asyncio, json, sys
from transformers import AutoTokenizer
from openrlhf.utils.agent import SingleTurnAgentExecutor
eos = AutoTokenizer.from_pretrained(sys.argv[1]).eos_token
executor = SingleTurnAgentExecutor(remote_rm_url="ptsdk_reward.py")
prompt, label = "What is 6 + 6?", json.dumps({"ground_truth": "12"})
out = [asyncio.run(executor._fetch_rewards_via_func([prompt + answer + eos], [prompt], [label]))[0]
       for answer in (" 12", " 13", " twelve")]
print(json.dumps({"scores": [[float(x) for x in o["rewards"]] for o in out], "logs": sorted(out[0]["extra_logs"])}))
"""
    proc = subprocess.run(
        [openrlhf_env.python, "-c", code, str(model)], cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer == {"scores": [[1.0], [0.0], [0.0]], "logs": ["reward/correct"]}


def test_kto_is_rejected_naming_backends_that_can(ptsdk, tmp_path) -> None:
    """No KTO CLI in OpenRLHF 0.11.2: refused before anything runs, with who can run it."""
    job = write_job(
        tmp_path,
        "kto",
        gpu_job("org/model", method={"name": "kto"}, data={"train": {"path": str(DATA / "kto_train.jsonl")}}),
    )
    r = ptsdk("validate", str(job), "--backend", "openrlhf")
    assert r.code == 2 and "Traceback" not in r.err
    line = next(x for x in r.err.splitlines() if x.strip().startswith("method.name:"))
    assert "openrlhf cannot run method 'kto'" in line and "trl" in line and "axolotl" in line


def test_cpu_jobs_beyond_the_smoke_mode_and_fp32_are_refused_with_fixes(ptsdk, tmp_path) -> None:
    cpu = {"device": "cpu"}
    refused = {
        "grpo": (
            gpu_job("org/model", method=rl("grpo", num_generations=4), data=RL_DATA, distributed=cpu),
            "distributed.device: OpenRLHF's CPU smoke mode runs sft and dpo only, not grpo",
        ),
        "two-processes": (
            gpu_job("org/model", distributed={**cpu, "gpus_per_node": 2}),
            "distributed.gpus_per_node: OpenRLHF's CPU smoke mode runs one process, not 2",
        ),
        "flash-attn": (
            gpu_job("org/model", model={"attn_implementation": "flash_attention_2"}, distributed=cpu),
            "model.attn_implementation: flash_attention_2 needs a GPU; use sdpa or eager with device: cpu",
        ),
    }
    for name, (data, line) in refused.items():
        r = ptsdk("validate", str(write_job(tmp_path, name, data)), "--backend", "openrlhf")
        assert r.code == 2 and "Traceback" not in r.err and line in r.err, (name, r.err)
    ok = ptsdk(
        "validate", str(write_job(tmp_path, "sft-cpu", gpu_job("org/model", distributed=cpu))), "--backend", "openrlhf"
    )
    assert ok.code == 0, ok.err
    job = write_job(tmp_path, "fp32", gpu_job("org/model", training={"precision": "fp32"}))
    r = ptsdk("validate", str(job), "--backend", "openrlhf")
    assert r.code == 2 and "Traceback" not in r.err
    assert "training.precision: OpenRLHF trains in bf16 or fp16 (--ds.param_dtype); set bf16" in r.err


def test_tensorboard_metrics_are_parsed(openrlhf_env, tmp_path) -> None:
    """OpenRLHF logs through torch's SummaryWriter; ptsdk reads those event files without TensorBoard."""
    code = """
import sys
from torch.utils.tensorboard import SummaryWriter
w = SummaryWriter(log_dir=sys.argv[1] + "/logs/tensorboard/sft_run")
for step in (1, 2, 3):
    for k, v in {"gpt_loss": 3.0 - step / 10, "loss_mean": 3.0 - step / 8, "lr": 1e-4 * step, "grad_norm": 0.5}.items():
        w.add_scalar(f"train/{k}", v, step)
w.add_scalar("eval/eval gpt_loss", 2.5, 3)
w.close()
"""
    subprocess.run([openrlhf_env.python, "-c", code, str(tmp_path)], check=True, capture_output=True, timeout=300)
    records = list(OpenRLHFBackend().parse_metrics(tmp_path))
    train = [r for r in records if r.kind == "train"]
    assert [r.step for r in train] == [1, 2, 3]
    assert train[0].loss == pytest.approx(3.0 - 1 / 8) and train[2].learning_rate == pytest.approx(3e-4)
    assert train[0].grad_norm == pytest.approx(0.5) and train[0].extra["gpt_loss"] == pytest.approx(2.9)
    assert [r.step for r in records if r.kind == "eval"] == [3]


def test_resume_continues_from_openrlhf_checkpoints(openrlhf_env, model, tmp_path) -> None:
    plan, workdir = plan_in_dir(tmp_path, "sft", gpu_job(model, output={"save_steps": 1}), resume=True)
    assert plan.args.count("--ckpt.load_enable") == 1 and flag(plan.args, "--ckpt.path") == "checkpoints"
    assert OpenRLHFBackend().native_check(plan, workdir) == []


def test_matrix_claims_no_kto_and_trains_only_what_the_cpu_smoke_mode_ran() -> None:
    caps = {c.key: c for c in OpenRLHFBackend.capabilities}
    assert ("method", "kto") not in caps
    assert all(c.verified is not Verified.declared for c in caps.values())
    trained_here = {key for key, c in caps.items() if c.verified is Verified.trained}
    assert trained_here == {
        ("method", "sft"),
        ("method", "dpo"),
        ("adapter", "lora"),
        ("adapter", "full"),
        ("device", "cpu"),
        ("feature", "adam_betas"),
        ("feature", "min_lr"),
        ("feature", "eval_split"),
        ("feature", "instruction_records"),
        ("feature", "message_mapping"),
        ("feature", "implicit_prompt"),
        ("feature", "tracking_tensorboard"),
    }
    for key in trained_here:  # evidence: a test of this file that trains, and the mode named
        test = caps[key].evidence.split("::")[-1]
        assert test.endswith("_trains_in_cpu_smoke_mode") and test in globals(), key
        assert "CPU smoke mode" in caps[key].note, key


# --- CPU smoke mode: real training with OpenRLHF's own CLIs (cpu_smoke.py) ----------------------


def smoke_log(run_dir: Path) -> str:
    """The run's log: OpenRLHF's own CLI started behind the shim, with no stand-in called."""
    log = (run_dir / "logs" / "backend.log").read_text()
    assert f"torch.distributed.run --nproc_per_node=1 --standalone {CPU_SMOKE} -m openrlhf.cli." in log
    assert "ptsdk CPU smoke mode: openrlhf.cli." in log and "flash_attn stand-in (CPU smoke mode)" not in log
    return log


def test_sft_lora_trains_in_cpu_smoke_mode(ptsdk, example_job, tmp_path, openrlhf_env) -> None:
    run_dir = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "openrlhf", example_job("openrlhf_cpu_sft_lora.yaml"), run_dir)
    train = trained(manifest, metrics, 6, framework=("openrlhf", "0.11.2"))
    smoke_log(run_dir)
    losses = [m["loss"] for m in train]
    # OpenRLHF's own SFT loss on the same eight sequences every step: it falls, step after step.
    assert losses[-1] < losses[0] - 0.3 and all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert all(m["learning_rate"] == pytest.approx(0.002) for m in train)
    assert all(m["extra"]["gpt_loss"] == pytest.approx(m["loss"]) for m in train)  # one micro-batch per step
    assert_loads(openrlhf_env, run_dir / "model", adapter=True)


def test_dpo_trains_in_cpu_smoke_mode(ptsdk, example_job, tmp_path, openrlhf_env) -> None:
    run_dir = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "openrlhf", example_job("openrlhf_cpu_dpo.yaml"), run_dir)
    train = trained(manifest, metrics, 8, framework=("openrlhf", "0.11.2"))
    smoke_log(run_dir)
    margins = [m["extra"]["chosen_reward"] - m["extra"]["reject_reward"] for m in train]
    accuracy = [m["extra"]["acc"] for m in train]
    # Step 1: the policy is the reference, so every implicit reward is 0 and the loss is log 2.
    assert train[0]["loss"] == pytest.approx(0.6931, abs=2e-3) and margins[0] == pytest.approx(0, abs=1e-3)
    # DPO's effect: the chosen answers pull ahead of the rejected ones on the trained pairs.
    assert margins[-1] > 0.5 and max(margins[-3:]) > max(margins[:3]) + 0.3, margins
    assert accuracy[0] == 0 and accuracy[-1] == 1.0, accuracy
    assert train[-1]["loss"] < 0.5, [m["loss"] for m in train]
    assert_loads(openrlhf_env, run_dir / "model", adapter=False)


def test_sft_upstream_settings_trains_in_cpu_smoke_mode(ptsdk, example_job, tmp_path, openrlhf_env) -> None:
    """Alpaca records, a held-out eval split, Adam betas/epsilon and a cosine floor in one real OpenRLHF run."""
    records = [
        {"instruction": r["prompt"], "input": "" if i % 2 else "numbers", "output": r["completion"].strip()}
        for i, r in enumerate(read_jsonl(DATA / "sft_train.jsonl")[:10])
    ]
    alpaca = tmp_path / "alpaca.jsonl"
    alpaca.write_text("".join(json.dumps(r) + "\n" for r in records))
    job = example_job(
        "openrlhf_cpu_sft_lora.yaml",
        as_name="openrlhf_settings",
        data={"train": {"path": str(alpaca)}, "format": "instruction", "eval_split": 0.2, "max_length": 256},
        training={
            "lr_scheduler": "cosine",
            "min_lr_ratio": 0.5,
            "adam_beta1": 0.8,
            "adam_beta2": 0.99,
            "adam_epsilon": 1e-6,
        },
        output={"eval_steps": 3},
    )
    run_dir = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "openrlhf", job, run_dir)
    train = trained(manifest, metrics, 6, framework=("openrlhf", "0.11.2"))
    log = smoke_log(run_dir)
    args = (run_dir / "command.sh").read_text()
    assert "--adam.betas 0.8 0.99" in args and "--adam.eps 1e-06" in args and "--min_lr_ratio 0.5" in args
    # eval_split 0.2 of 10 records: 2 held out (datasets' train_test_split indices), 8 trained, evaluated.
    held, kept = read_jsonl(run_dir / "data" / "eval.jsonl"), read_jsonl(run_dir / "data" / "train.jsonl")
    # The 8 kept records, laid out for every epoch the run reads (ptsdk's order for OpenRLHF's sampler).
    assert len(held) == 2 and len({json.dumps(r, sort_keys=True) for r in kept}) == 8
    assert {r["completion"] for r in held + kept} == {r["output"] for r in records}
    assert all(r["prompt"].startswith("Below is an instruction that describes a task") for r in kept)
    assert any("### Input:\nnumbers\n\n### Response:\n" in r["prompt"] for r in kept)
    assert [m["step"] for m in metrics if m["kind"] == "eval"], "no evaluation on the held-out records"
    # The cosine floor: the rate falls from the peak 0.002 towards half of it and never below.
    rates = [m["learning_rate"] for m in train]
    assert all(0.001 * (1 - 1e-6) <= r <= 0.002 * (1 + 1e-6) for r in rates), rates
    assert all(b < a for a, b in zip(rates, rates[1:], strict=False)) and rates[-1] < 0.0011, rates
    losses = [m["loss"] for m in train]
    assert losses[-1] < losses[0], losses
    assert "Traceback" not in log


# --- message mappings and a prompt inside chosen/rejected (data.message_keys, role_names, prompt_in_answers) --------

SHAREGPT_KEYS = {"role": "from", "content": "value"}
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant"}
SHAREGPT_NAMES = {"user": "human", "assistant": "gpt", "system": "system"}
#: A template that renders reasoning_content (as Qwen3's does), so a dropped thinking would show.
THINK_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{% if m.reasoning_content %}<think>{{ m.reasoning_content }}</think>"
    "{% endif %}{{ m.content }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SYSTEM = "Answer with a number."


def sharegpt(messages: list[dict[str, Any]], thinking: str | None = None) -> list[dict[str, Any]]:
    """Canonical messages as ShareGPT turns (from/value, human/gpt); reasoning_content under `thinking`."""
    out = []
    for m in messages:
        turn = {"from": SHAREGPT_NAMES[m["role"]], "value": m["content"]}
        if thinking and "reasoning_content" in m:
            turn[thinking] = m["reasoning_content"]
        out.append(turn)
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def conversation_pairs(n: int = 8) -> list[dict[str, Any]]:
    """The example's preference pairs as whole canonical conversations: system, user, then each answer."""
    return [
        {
            "prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
        for r in read_jsonl(DATA / "pref_train.jsonl")[:n]
    ]


def implicit_sharegpt(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pairs as ShareGPT records with no prompt column: chosen and rejected are whole conversations."""
    return [
        {"chosen": sharegpt(p["prompt"] + p["chosen"]), "rejected": sharegpt(p["prompt"] + p["rejected"])}
        for p in pairs
    ]


#: Runs in OpenRLHF's environment: each run directory's command line parsed by OpenRLHF's own __main__ block
#: (check_openrlhf.run_main_block), then its prepared data loaded and tokenized by OpenRLHF's own dataset class,
#: as train_sft / train_dpo / ppo_trainer build them.
DATASET_SCRIPT = """
import json, os, sys, types
sys.path.insert(0, sys.argv[2])
from check_openrlhf import run_main_block
from transformers import AutoTokenizer
from openrlhf.datasets import PromptDataset, RewardDataset, SFTDataset
from openrlhf.datasets.utils import blending_datasets

out = {}
for name, r in json.load(open(sys.argv[1])).items():
    os.chdir(r["dir"])
    args, _ = run_main_block(r["module"], r["args"])
    strategy = types.SimpleNamespace(args=args, print=lambda *a, **k: None, is_rank_0=lambda: True)
    rl = r["module"].endswith("train_ppo_ray")
    tok = AutoTokenizer.from_pretrained(args.actor.model_name_or_path if rl else args.model.model_name_or_path)
    path = args.data.prompt_dataset if rl else args.data.dataset
    data = blending_datasets(path, None, strategy, dataset_split="train")
    if r["module"].endswith("train_sft"):
        ds = SFTDataset(data, tok, args.data.max_len, strategy, pretrain_mode=args.model.pretrain_mode_enable,
                        input_template=args.data.input_template, multiturn=args.data.multiturn, num_processors=1)
        out[name] = {"prompts": list(ds.prompts), "responses": list(ds.responses), "ranges": list(ds.response_ranges),
                     "ids": [ds[i][0].tolist() for i in range(len(ds))],
                     "mask": [ds[i][2].tolist() for i in range(len(ds))]}
    elif rl:
        ds = PromptDataset(data, tok, strategy, input_template=args.data.input_template)
        out[name] = {"prompts": ds.prompts, "labels": ds.labels,
                     "expected": [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                                  for m in r["expect"]]}
    else:
        ds = RewardDataset(data, tok, args.data.max_len, strategy, input_template=args.data.input_template, is_dpo=True,
                           num_processors=1)
        out[name] = {"prompts": list(ds.prompts), "chosen": list(ds.chosens), "rejected": list(ds.rejects),
                     "ids": [[t.tolist() for t in ds[i][:4]] for i in range(len(ds))]}
print("DATASETS " + json.dumps(out))
"""


def test_mapped_records_tokenize_as_canonical_in_openrlhf_datasets(openrlhf_env, model, tmp_path) -> None:
    """ShareGPT records (from/value, human/gpt, a thinking key) and conversations holding their prompt, prepared by
    the run's own step, parse with OpenRLHF's parsers and tokenize in OpenRLHF's SFT, reward and prompt datasets to
    exactly what the same records written canonically (role/content, reasoning_content, a prompt column) give."""
    chats = [
        {"messages": [{"role": "system", "content": SYSTEM}, *r["messages"]]}
        for r in read_jsonl(DATA / "chat_train.jsonl")[:6]
    ]
    for i, chat in enumerate(chats):  # every assistant turn thinks first
        for m in chat["messages"]:
            if m["role"] == "assistant":
                m["reasoning_content"] = f"thought {i}: add them"
    pairs = conversation_pairs(6)
    prompts = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": r["prompt"]}]
        for r in read_jsonl(DATA / "rl_train.jsonl")[:4]
    ]
    rl_rows = [
        {"prompt": sharegpt(p), "ground_truth": r["ground_truth"]}
        for p, r in zip(prompts, read_jsonl(DATA / "rl_train.jsonl"), strict=False)
    ]
    mapped = {"message_keys": {**SHAREGPT_KEYS, "thinking": "reasoning"}, "role_names": SHAREGPT_ROLES}
    sft = {"model": {"chat_template": THINK_TEMPLATE}, "training": {"max_steps": None, "epochs": 1}}
    jobs = {
        "sft-sharegpt": gpu_job(
            model,
            **sft,
            data={
                "train": {
                    "path": str(
                        write_jsonl(
                            tmp_path / "sft_sharegpt.jsonl",
                            [{"conversations": sharegpt(c["messages"], "reasoning")} for c in chats],
                        )
                    )
                },
                "format": "messages",
                "columns": {"messages": "conversations"},
                "max_length": 256,
                **mapped,
            },
        ),
        "sft-canonical": gpu_job(
            model,
            **sft,
            data={
                "train": {"path": str(write_jsonl(tmp_path / "sft.jsonl", chats))},
                "format": "messages",
                "max_length": 256,
            },
        ),
        "dpo-sharegpt-implicit": gpu_job(
            model,
            method={"name": "dpo"},
            **sft,
            data={
                "train": {"path": str(write_jsonl(tmp_path / "pref_sharegpt.jsonl", implicit_sharegpt(pairs)))},
                "max_length": 256,
                "prompt_in_answers": True,
                "message_keys": SHAREGPT_KEYS,
                "role_names": SHAREGPT_ROLES,
            },
        ),
        "dpo-canonical": gpu_job(
            model,
            method={"name": "dpo"},
            **sft,
            data={"train": {"path": str(write_jsonl(tmp_path / "pref.jsonl", pairs))}, "max_length": 256},
        ),
        "grpo-sharegpt-prompts": gpu_job(
            model,
            method=rl("grpo", num_generations=4),
            data={
                "train": {"path": str(write_jsonl(tmp_path / "rl_sharegpt.jsonl", rl_rows))},
                "max_length": 64,
                **mapped,
            },
            training={"max_steps": None, "epochs": 1},
        ),
    }
    results = check_all(tmp_path, jobs)
    failed = {name: r["errors"] for name, (_, _, r) in results.items() if not r["ok"]}
    assert not failed, json.dumps(failed, indent=1)
    requests = {
        name: {"dir": str(workdir), "module": plan.entrypoint[-1], "args": plan.args, "expect": prompts}
        for name, (plan, workdir, _) in results.items()
    }
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    proc = subprocess.run(
        [openrlhf_env.python, "-c", DATASET_SCRIPT, str(tmp_path / "requests.json"), str(BACKEND_DIR)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.split("DATASETS ", 1)[1])

    # SFT: the same prompts, responses, loss ranges and token ids; the thinking reached the template.
    assert got["sft-sharegpt"] == got["sft-canonical"] and len(got["sft-canonical"]["ids"]) == 6
    assert all("<think>thought " in r for r in got["sft-sharegpt"]["responses"]), got["sft-sharegpt"]["responses"]
    # DPO: the shared leading turns (system + user) are the prompt, each answer the rest, as with a prompt column.
    assert got["dpo-sharegpt-implicit"] == got["dpo-canonical"] and len(got["dpo-canonical"]["ids"]) == 6
    first = f"<|system|>{SYSTEM}<|end|><|user|>What is 6 + 6?<|end|><|assistant|>"
    assert first in got["dpo-canonical"]["prompts"]  # (in ptsdk's order, not the file's)
    rows = read_jsonl(results["dpo-sharegpt-implicit"][1] / "data" / "train.jsonl")
    assert {k: pairs[0][k] for k in ("prompt", "chosen", "rejected")} in rows
    assert "--data.apply_chat_template" in results["dpo-sharegpt-implicit"][0].args
    # RL: OpenRLHF renders the mapped prompts with the tokenizer's template, as the canonical messages.
    assert got["grpo-sharegpt-prompts"]["prompts"] == got["grpo-sharegpt-prompts"]["expected"]
    assert "--data.apply_chat_template" in results["grpo-sharegpt-prompts"][0].args
    assert [json.loads(x)["ground_truth"] for x in got["grpo-sharegpt-prompts"]["labels"]] == [
        r["ground_truth"] for r in rl_rows
    ]


def test_dpo_sharegpt_implicit_prompt_trains_in_cpu_smoke_mode(ptsdk, example_job, tmp_path, openrlhf_env) -> None:
    """ShareGPT conversations (from/value, human/gpt) with no prompt column: OpenRLHF's own train_dpo trains on the
    prompt ptsdk split off (system + user turns) and the answers."""
    records = write_jsonl(tmp_path / "pref_sharegpt.jsonl", implicit_sharegpt(conversation_pairs(8)))
    job = example_job(
        "openrlhf_cpu_dpo.yaml",
        as_name="openrlhf_sharegpt_dpo",
        data={
            "train": {"path": str(records)},
            "max_length": 64,
            "message_keys": SHAREGPT_KEYS,
            "role_names": SHAREGPT_ROLES,
            "prompt_in_answers": True,
        },
    )
    run_dir = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "openrlhf", job, run_dir)
    train = trained(manifest, metrics, 8, framework=("openrlhf", "0.11.2"))
    log = smoke_log(run_dir)
    assert "--data.apply_chat_template" in (run_dir / "command.sh").read_text() and "Traceback" not in log
    prepared = read_jsonl(run_dir / "data" / "train.jsonl")
    assert len({json.dumps(r, sort_keys=True) for r in prepared}) == 8 and all(
        [m["role"] for m in r["prompt"]] == ["system", "user"] for r in prepared
    )
    assert all(r["chosen"][0]["role"] == r["rejected"][0]["role"] == "assistant" for r in prepared)
    margins = [m["extra"]["chosen_reward"] - m["extra"]["reject_reward"] for m in train]
    # Step 1: the policy is the reference (loss log 2); then the chosen answers pull ahead.
    assert train[0]["loss"] == pytest.approx(0.6931, abs=2e-3) and margins[0] == pytest.approx(0, abs=1e-3)
    assert margins[-1] > 0.3 and train[-1]["loss"] < train[0]["loss"], [m["loss"] for m in train]


#: Settings that decide the optimization: the same in both frameworks for the aligned job.
SAME = (
    "global_batch_sequences micro_batch gradient_accumulation world_size learning_rate lr_scheduler warmup "
    "max_length packing loss_mask chat_template_sha seed loss_normalization max_grad_norm weight_decay"
).split()


@pytest.mark.trl
def test_sft_lora_compares_with_trl(ptsdk, example_job, tmp_path, trl_env, openrlhf_env) -> None:
    job = example_job("openrlhf_cpu_sft_lora.yaml", output={"dir": str(tmp_path / "runs")})
    out = tmp_path / "report"
    r = ptsdk("compare", str(job), "--backends", "trl,openrlhf", "--out", str(out), "--quiet")
    assert r.code == 0, r.err
    report = json.loads((out / "report.json").read_text())
    assert [s["status"] for s in report["summary"]] == ["succeeded", "succeeded"]
    assert report["unexplained_differences"] == []
    rows = {row["key"]: row for row in report["parity"]}
    assert not [key for key in SAME if rows[key]["differs"]], {k: rows[k]["values"] for k in SAME}
    for key in ("precision", "optimizer", "truncation"):  # differs, and OpenRLHF says why
        assert rows[key]["differs"] and rows[key]["sources"]["openrlhf"], key
    # TRL starts from ptsdk's seeded adapter; OpenRLHF makes its own (named, not yet owned by ptsdk).
    assert rows["adapter_init"]["differs"] and "peft" in rows["adapter_init"]["sources"]["openrlhf"]

    # Both loss curves, step by step (OpenRLHF logs no token counts, so report.json aligns none).
    curves = {
        s["backend"]: [json.loads(line) for line in (Path(s["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
        for s in report["summary"]
    }
    losses = {b: [m["loss"] for m in ms if m["kind"] == "train"] for b, ms in curves.items()}
    assert len(losses["trl"]) == len(losses["openrlhf"]) == 6
    # Step 1: the same base model (a fresh LoRA adds 0) on the same sequences and loss mask, in bf16.
    assert losses["trl"][0] == pytest.approx(losses["openrlhf"][0], abs=0.02), losses
    for b, ls in losses.items():
        assert ls[-1] < ls[0] - 0.3, (b, ls)
    gaps = [abs(a - b) for a, b in zip(losses["trl"], losses["openrlhf"], strict=True)]
    # Measured: 0.0024 at step 1, at most 0.11 later (different LoRA draws; bf16 weights vs autocast).
    assert max(gaps) < 0.2, losses
    assert all(m["wall_time_s"] is not None for ms in curves.values() for m in ms if m["kind"] == "train")
    assert "loss_vs_time.png" in report["plots"]
    import matplotlib.image

    assert matplotlib.image.imread(out / "loss_vs_time.png").shape[0] > 100


class TestOpenRLHFContract(BackendContract):
    backend = OpenRLHFBackend
    jobs = sorted(str(p) for p in (EXAMPLES / "jobs").glob("*.yaml"))


@pytest.mark.parametrize(
    "overrides, line",
    [
        ({"training": {"packing": True}}, "training.packing: OpenRLHF 0.11.2 does not pack sequences into blocks"),
        ({"training": {"max_tokens_per_micro_batch": 512}}, "training.max_tokens_per_micro_batch: OpenRLHF 0.11.2"),
        ({"model": {"pad_token": "<pad>"}}, "model.pad_token: OpenRLHF 0.11.2 has no flag"),
        ({"output": {"saves_per_epoch": 2}}, "output.saves_per_epoch: OpenRLHF 0.11.2 counts its cadence"),
        (
            {"method": rl("grpo", num_generations=4), "data": RL_DATA, "rollout": {"server": "localhost:8000"}},
            "rollout.server: OpenRLHF 0.11.2 generates with the vLLM engines it starts",
        ),
        (
            {"method": rl("grpo", num_generations=4), "data": {**RL_DATA, "truncation": "drop"}},
            "data.truncation: OpenRLHF 0.11.2 keeps every prompt",
        ),
        (
            {"method": {**rl("grpo", num_generations=4), "max_prompt_length": None}, "data": RL_DATA},
            "method.max_prompt_length: OpenRLHF budgets every sequence",
        ),
        (
            {"data": {**PREF_DATA, "format": "instruction", "role_names": {"human": "user"}}},
            "data.message_keys: Alpaca instruction records hold no message lists",
        ),
        (
            {"method": {"name": "sft", "loss_on": "all"}, "data": {**PREF_DATA, "message_keys": {"role": "from"}}},
            "data.message_keys: loss_on all trains prompt + completion as one plain text",
        ),
    ],
)
def test_settings_openrlhf_has_no_flag_for_are_refused(overrides: dict[str, Any], line: str) -> None:
    job = load_job_dict(gpu_job("org/model", **overrides))
    problems = OpenRLHFBackend().static_problems(job)
    assert any(p.startswith(line) for p in problems), problems


def load_job_dict(data: dict[str, Any]):  # type: ignore[no-untyped-def]
    from ptsdk.spec import validate_job

    return validate_job(data)
