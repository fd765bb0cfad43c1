"""vERL for real: every claimed capability passes vERL's own validator or trains with vERL's own trainer.

The matrix's `evidence` for each vERL capability names one of these tests. vERL imports take
seconds, so every generated config is checked in ONE harness call (a module-scoped fixture) and
the tests below read its verdicts. RL cannot run here (vLLM/SGLang need GPUs): RL capabilities
are `validated`; SFT trains on CPU in CPU smoke mode (backends/verl/cpu_smoke.py).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from ptsdk.backends.verl import VerlBackend
from ptsdk.pipeline import load_checked
from ptsdk.rundir import write_plan
from ptsdk.spec import load_job

from .conftest import assert_loads, read_run, run_on, trained

pytestmark = pytest.mark.verl

REWARD = f"{EXAMPLES / 'rewards.py'}:correct"
GPUS = {"device": "gpu", "gpus_per_node": 8, "strategy": "fsdp"}
RL = {"num_generations": 4, "max_prompt_length": 32, "max_completion_length": 8, "rewards": [REWARD]}


@pytest.fixture(scope="session")
def verl_reward_model(verl_env, verl_model, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A sequence-classification reward model (one label) on the tiny Llama, with its tokenizer."""
    out = tmp_path_factory.mktemp("verl-rm") / "tiny-rm"
    code = (
        "import sys\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "m = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], num_labels=1)\n"
        "m.config.pad_token_id = tok.pad_token_id\n"
        "m.save_pretrained(sys.argv[2]); tok.save_pretrained(sys.argv[2])\n"
    )
    subprocess.run(
        [verl_env.python, "-c", code, str(verl_model), str(out)], check=True, capture_output=True, timeout=300
    )
    return out


#: The tiny model's chat template, rendering an assistant turn's reasoning_content before its content.
THINKING_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}<|system|>\n{{ message['content'] }}<|end|>\n"
    "{% elif message['role'] == 'user' %}<|user|>\n{{ message['content'] }}<|end|>\n"
    "{% elif message['role'] == 'assistant' %}<|assistant|>\n"
    "{% if message['reasoning_content'] %}<think>{{ message['reasoning_content'] }}</think>{% endif %}"
    "{{ message['content'] }}<|end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(scope="session")
def verl_thinking_model(verl_model, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The tiny model with a chat template that renders reasoning_content (as Qwen3's and DeepSeek-R1's do)."""
    out = tmp_path_factory.mktemp("verl-thinking") / "tiny-thinking"
    shutil.copytree(verl_model, out)
    (out / "chat_template.jinja").write_text(THINKING_TEMPLATE)
    return out


def sharegpt(source: Path, out: Path, thinking: bool = False, limit: int | None = None) -> Path:
    """examples' chat records as ShareGPT conversations ({from, value}, human/gpt), optionally with each answer's
    reasoning under a `reasoning` key."""
    names = {"user": "human", "assistant": "gpt", "system": "system"}
    lines = []
    for line in source.read_text().splitlines()[:limit]:
        turns = []
        for m in json.loads(line)["messages"]:
            turn = {"from": names[m["role"]], "value": m["content"]}
            if thinking and m["role"] == "assistant":
                turn["reasoning"] = f"add them: {m['content']}"
            turns.append(turn)
        lines.append(json.dumps({"conversations": turns}))
    out.write_text("\n".join(lines) + "\n")
    return out


SHAREGPT = {
    "format": "messages",
    "columns": {"messages": "conversations"},
    "message_keys": {"role": "from", "content": "value"},
    "role_names": {"human": "user", "gpt": "assistant"},
}


def alpaca_records(out: Path) -> Path:
    """examples' SFT records as Alpaca records, every other one with an input."""
    lines = []
    for i, line in enumerate((EXAMPLES / "data" / "sft_train.jsonl").read_text().splitlines()):
        r = json.loads(line)
        if i % 2:
            lines.append(json.dumps({"instruction": r["prompt"], "output": r["completion"]}))
        else:
            lines.append(
                json.dumps({"instruction": "Answer the question.", "input": r["prompt"], "output": r["completion"]})
            )
    out.write_text("\n".join(lines) + "\n")
    return out


def job_file(folder: Path, name: str, model: Path, **sections: Any) -> Path:
    """A job on the tiny model: SFT on the arithmetic data unless `method`/`data` say otherwise."""
    data: dict[str, Any] = {
        "method": {"name": "sft", "loss_on": "completion"},
        "model": {"name_or_path": str(model), "dtype": "float32"},
        "data": {"train": {"path": str(EXAMPLES / "data" / "sft_train.jsonl")}, "max_length": 64},
        "training": {
            "global_batch_size": 16,
            "micro_batch_size": 2,
            "learning_rate": 0.001,
            "max_steps": 3,
            "precision": "bf16",
            "lr_scheduler": "constant",
        },
        "distributed": GPUS,
    }
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in ("training", "data") else value
    if data["method"]["name"] != "sft" and "train" not in sections.get("data", {}):
        data["data"]["train"] = {"path": str(EXAMPLES / "data" / "rl_train.jsonl")}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rl(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, **RL, **fields}


# Every method, loss variant, adapter and topology the matrix claims for vERL, as one job each.
CONFIGS: dict[str, dict[str, Any]] = {
    "sft_full": {},
    "sft_lora": {"adapter": {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0}},
    "sft_chat_eval": {
        "data": {
            "train": {"path": str(EXAMPLES / "data" / "chat_train.jsonl")},
            "format": "messages",
            "eval": {"path": str(EXAMPLES / "data" / "chat_train.jsonl")},
            "max_length": 64,
        }
    },
    "sft_multi_node": {
        "distributed": {**GPUS, "nodes": 2, "master_addr": "10.0.0.1"},
        "training": {"global_batch_size": 32},
    },
    **{
        f"grpo_{loss}": {"method": rl("grpo", loss_type=loss, kl_coef=0.01)}
        for loss in ("grpo", "dr_grpo", "dapo", "cispo", "sapo")
    },
    "grpo_lora_sglang_tp2": {
        "method": rl("grpo"),
        "adapter": {"type": "lora", "r": 8, "alpha": 16},
        "rollout": {"engine": "sglang", "tensor_parallel_size": 2, "gpu_memory_utilization": 0.4},
    },
    "grpo_vllm_tp2": {"method": rl("grpo"), "rollout": {"engine": "vllm", "tensor_parallel_size": 2}},
    "ppo_critic": {"method": rl("ppo", num_generations=1, critic_learning_rate=1e-5, lam=0.9)},
    "rloo": {"method": rl("rloo")},
    "reinforce_pp": {"method": rl("reinforce_pp", num_generations=1)},
    # KL in the loss or in the reward with each estimator (rloo, reinforce_pp and ppo_critic: reward/k1 defaults).
    **{
        f"grpo_kl_{where}_{k}": {"method": rl("grpo", kl_coef=0.02, kl_placement=where, kl_estimator=k)}
        for where, k in (("loss", "k1"), ("loss", "k2"), ("reward", "k2"), ("reward", "k3"))
    },
    # 8 prompts per rollout = 2 optimizer steps of 4 prompts (16 completions), 2 epochs: 4 steps per rollout.
    "grpo_rollout_batches": {
        "method": rl("grpo", rollout_batch_size=8, epochs_per_rollout=2),
        "training": {"max_steps": 8},
        "output": {"save_steps": 4},
    },
    "ppo_token_batches_padding_free_optim": {
        "method": rl("ppo", num_generations=1),
        "training": {
            "max_tokens_per_micro_batch": 64,
            "padding_free": True,
            "adam_beta2": 0.95,
            "adam_epsilon": 1e-6,
            "lr_scheduler": "cosine",
            "min_lr_ratio": 0.1,
        },
        "data": {"truncation": "drop", "eval_split": 0.25},
    },
    "sft_token_batches_padding_free_optim": {
        "training": {
            "max_tokens_per_micro_batch": 128,
            "padding_free": True,
            "adam_beta1": 0.8,
            "adam_beta2": 0.95,
            "lr_scheduler": "cosine",
            "min_lr_ratio": 0.2,
        },
        "data": {"eval_split": 0.25},
    },
    "grpo_ray_cluster_multi_node": {
        "method": rl("grpo"),
        "distributed": {**GPUS, "nodes": 2, "master_addr": "10.0.0.1", "ray_address": "10.0.0.1:6379"},
        "training": {"global_batch_size": 32},
    },
}


# Reward-model jobs (method.reward_model is the fixture's sequence-classification model), in the same batch.
RM_CONFIGS: dict[str, dict[str, Any]] = {
    "grpo_reward_model": {"method": rl("grpo", rewards=[])},
    "ppo_reward_model_sglang_tp2": {
        "method": rl("ppo", num_generations=1, rewards=[]),
        "rollout": {"engine": "sglang", "tensor_parallel_size": 2},
    },
}


def check_all(jobs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Translate every job and run vERL's validator on all of them in one harness process."""
    backend, requests, plans = VerlBackend(), [], {}
    for name, path in jobs.items():
        # bad_records is refused by ptsdk's data preflight first; loaded past it, vERL's own bridge must refuse it too.
        job = load_job(path) if name == "bad_records" else load_checked(path, "verl")[0]
        plans[name] = plan = backend.translate(job)
        workdir = Path(tempfile.mkdtemp(prefix=f"verl-{name}-", dir=path.parent))
        write_plan(plan, workdir)
        requests.append(backend.check_request(plan, workdir))
    results = backend.run_check(requests)
    return {name: {**result, "plan": plans[name]} for name, result in zip(jobs, results, strict=True)}


@pytest.fixture(scope="module")
def verdicts(verl_model, verl_reward_model, verl_thinking_model, tmp_path_factory) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("verl-jobs")
    jobs = {name: job_file(folder, name, verl_model, **sections) for name, sections in CONFIGS.items()}
    # Data in other shapes (ShareGPT messages, with reasoning; Alpaca records; ShareGPT RL prompts).
    chat = EXAMPLES / "data" / "chat_train.jsonl"
    jobs["sft_sharegpt"] = job_file(
        folder,
        "sft_sharegpt",
        verl_model,
        data={"train": {"path": str(sharegpt(chat, folder / "sharegpt.jsonl"))}, **SHAREGPT},
    )
    jobs["sft_sharegpt_thinking"] = job_file(
        folder,
        "sft_sharegpt_thinking",
        verl_thinking_model,
        data={
            "train": {"path": str(sharegpt(chat, folder / "sharegpt_thinking.jsonl", thinking=True))},
            **SHAREGPT,
            "message_keys": {**SHAREGPT["message_keys"], "thinking": "reasoning"},
        },
    )
    # The tiny tokenizer learned the arithmetic data only: Alpaca's English prompt takes about 220 tokens.
    jobs["sft_alpaca"] = job_file(
        folder,
        "sft_alpaca",
        verl_model,
        data={
            "train": {"path": str(alpaca_records(folder / "alpaca.jsonl"))},
            "format": "instruction",
            "max_length": 384,
        },
    )
    rl_prompts = folder / "rl_sharegpt.jsonl"
    rl_prompts.write_text(
        "".join(
            json.dumps({**r, "prompt": [{"from": "human", "value": r["prompt"]}]}) + "\n"
            for r in map(json.loads, (EXAMPLES / "data" / "rl_train.jsonl").read_text().splitlines())
        )
    )
    jobs["grpo_sharegpt_prompts"] = job_file(
        folder,
        "grpo_sharegpt_prompts",
        verl_model,
        method=rl("grpo"),
        data={
            "train": {"path": str(rl_prompts)},
            "message_keys": {"role": "from", "content": "value"},
            "role_names": {"human": "user"},
        },
    )
    for name, sections in RM_CONFIGS.items():
        method = {**sections["method"], "reward_model": str(verl_reward_model)}
        jobs[name] = job_file(folder, name, verl_model, **{**sections, "method": method})
    # What vERL (or ptsdk's check of what vERL lets through) must refuse, in the same process.
    bad = folder / "bad.jsonl"
    bad.write_text('{"prompt": "What is 1 + 1?", "completion": " 2"}\n\n{"prompt": "What is 2 + 2?"}\n[1, 2]\n')
    jobs["bad_unknown_key"] = job_file(
        folder, "bad_unknown_key", verl_model, backend_options={"verl": {"trainer.no_such_key": 1}}
    )
    jobs["bad_estimator"] = job_file(
        folder,
        "bad_estimator",
        verl_model,
        method=rl("grpo"),
        backend_options={
            "verl": {"algorithm.adv_estimator": "grpo_typo", "ptsdk_override": ["algorithm.adv_estimator"]}
        },
    )
    jobs["bad_rollout_name"] = job_file(
        folder,
        "bad_rollout_name",
        verl_model,
        method=rl("grpo"),
        backend_options={
            "verl": {"actor_rollout_ref.rollout.name": "hf", "ptsdk_override": ["actor_rollout_ref.rollout.name"]}
        },
    )
    jobs["bad_records"] = job_file(folder, "bad_records", verl_model, data={"train": {"path": str(bad)}})
    # A causal LM is no reward model: vERL's reward loop needs a classification head.
    jobs["bad_reward_model"] = job_file(
        folder, "bad_reward_model", verl_model, method=rl("grpo", rewards=[], reward_model=str(verl_model))
    )
    return check_all(jobs)


def test_every_generated_config_composes_and_validates_in_verl(verdicts) -> None:
    """Each method / loss / adapter / topology: Hydra compose against vERL's config, validate_config,
    the dataclass conversions, ptsdk's registry checks, the data through vERL's dataset class."""
    for name in [*CONFIGS, *RM_CONFIGS]:
        v = verdicts[name]
        assert v["ok"], f"{name}: {v['errors']}"
        assert v["versions"]["verl"] == "0.9.1"
        assert v["dataset_rows"] == v["rows"]["train"] > 0, name  # vERL's own dataset class read every converted row
    args = {name: verdicts[name]["plan"].args for name in CONFIGS}
    assert "actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-sum-norm" in args["grpo_dr_grpo"]
    assert "algorithm.norm_adv_by_std_in_grpo=false" in args["grpo_dr_grpo"]
    assert "actor_rollout_ref.actor.policy_loss.loss_mode=cispo" in args["grpo_cispo"]
    assert "algorithm.adv_estimator=gae" in args["ppo_critic"] and "critic.optim.lr=1e-05" in args["ppo_critic"]
    assert "algorithm.lam=0.9" in args["ppo_critic"]
    assert "algorithm.adv_estimator=reinforce_plus_plus" in args["reinforce_pp"]
    assert "actor_rollout_ref.rollout.name=sglang" in args["grpo_lora_sglang_tp2"]
    assert "actor_rollout_ref.rollout.tensor_model_parallel_size=2" in args["grpo_lora_sglang_tp2"]
    assert "+ray_kwargs.ray_init.address=10.0.0.1:6379" in args["grpo_ray_cluster_multi_node"]
    assert "trainer.nnodes=2" in args["grpo_ray_cluster_multi_node"]
    # SFT multi-node: torchrun's own parser accepted the rendezvous arguments (checked by the harness).
    launcher = verdicts["sft_multi_node"]["plan"].launcher
    assert (
        launcher.kind == "torchrun"
        and "--nnodes=2" in launcher.args()
        and "--rdzv_endpoint=10.0.0.1:29500" in launcher.args()
    )


def test_batch_units_are_converted_exactly(verdicts) -> None:
    """16 completions per step in groups of 4 on 8 GPUs, 2 per micro batch: 4 prompts, 2 responses/GPU."""
    plan = verdicts["grpo_grpo"]["plan"]
    assert {
        "data.train_batch_size=4",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "trainer.n_gpus_per_node=8",
    } <= set(plan.args)
    derived = [str(n) for n in plan.notes if n.kind == "derived"]
    assert any("4 prompts = 16 completions / method.num_generations=4" in n for n in derived)
    assert any("16 / (2 x 8 GPUs) = 1" in n for n in derived)
    sft = verdicts["sft_full"]["plan"]
    assert {"data.train_batch_size=16", "data.micro_batch_size_per_gpu=2", "data.use_dynamic_bsz=false"} <= set(
        sft.args
    )
    assert sft.effective["global_batch_sequences"] == 16 and sft.effective["gradient_accumulation"] == 1


def test_kl_placements_and_estimators_run_in_verls_kl_code(verdicts) -> None:
    """method.kl_placement / kl_estimator: composed and validated, then each penalty vERL turns on computed by its
    own core_algos.kl_penalty on log-ratios 0.5 and 30: k1 = 0.5, 30; k2 = 0.125, 450; k3 = e^-0.5 - 0.5 ... and
    clipped to 10 (vERL's low_var_kl). The loss placement leaves the reward alone and the reverse."""
    k3 = math.exp(-0.5) + 0.5 - 1
    expected = {
        "grpo_grpo": ("loss", "low_var_kl", 0.01, [k3, 10.0]),  # GRPO's default: k3 in the loss
        "grpo_kl_loss_k1": ("loss", "kl", 0.02, [0.5, 30.0]),
        "grpo_kl_loss_k2": ("loss", "mse", 0.02, [0.125, 450.0]),
        "grpo_kl_reward_k2": ("reward", "mse", 0.02, [0.125, 450.0]),
        "grpo_kl_reward_k3": ("reward", "low_var_kl", 0.02, [k3, 10.0]),
        "rloo": ("reward", "kl", 0.05, [0.5, 30.0]),  # RLOO, PPO, REINFORCE++ default: k1 in the reward
        "reinforce_pp": ("reward", "kl", 0.01, [0.5, 30.0]),
        "ppo_critic": ("reward", "kl", 0.05, [0.5, 30.0]),
    }
    for name, (where, kl_name, coef, values) in expected.items():
        v = verdicts[name]
        assert v["ok"], f"{name}: {v['errors']}"
        assert set(v["kl"]) == {where}, (name, v["kl"])
        assert v["kl"][where]["name"] == kl_name and v["kl"][where]["coef"] == pytest.approx(coef), name
        assert v["kl"][where]["values"] == pytest.approx(values, rel=1e-5), name
        args = set(v["plan"].args)
        if where == "reward":
            assert {
                "algorithm.use_kl_in_reward=true",
                f"algorithm.kl_penalty={kl_name}",
                "algorithm.kl_ctrl.type=fixed",
                "actor_rollout_ref.actor.use_kl_loss=false",
            } <= args, name
        else:
            assert {"algorithm.use_kl_in_reward=false", "actor_rollout_ref.actor.use_kl_loss=true"} <= args, name
    assert verdicts["grpo_lora_sglang_tp2"]["kl"] == {}  # kl_coef 0: no reference model, no penalty


def test_rollout_batches_and_ppo_epochs_validate_in_verl(verdicts) -> None:
    """rollout_batch_size 8 prompts with 4 per optimizer step, epochs_per_rollout 2: vERL's train_batch_size 8,
    ppo_mini_batch_size 4, ppo_epochs 2 (validate_config checks the split); its step (a rollout) is 4 of ptsdk's."""
    v = verdicts["grpo_rollout_batches"]
    assert v["ok"], v["errors"]
    assert {
        "data.train_batch_size=8",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.actor.ppo_epochs=2",
        "trainer.total_training_steps=2",
        "trainer.save_freq=1",
    } <= set(v["plan"].args)
    assert "actor_rollout_ref.actor.ppo_epochs=1" in verdicts["grpo_grpo"]["plan"].args


def test_padding_free_and_token_batching_compose_in_verl(verdicts) -> None:
    """padding_free -> use_remove_padding on the actor, critic and SFT model; max_tokens_per_micro_batch -> vERL's
    dynamic batch size with the token budget (the critic's too); RL truncation drop -> filter_overlong_prompts."""
    ppo = set(verdicts["ppo_token_batches_padding_free_optim"]["plan"].args)
    assert verdicts["ppo_token_batches_padding_free_optim"]["ok"]
    assert {
        "actor_rollout_ref.model.use_remove_padding=true",
        "critic.model.use_remove_padding=true",
        "actor_rollout_ref.actor.use_dynamic_bsz=true",
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=64",
        "critic.ppo_max_token_len_per_gpu=64",
        "data.filter_overlong_prompts=true",
    } <= ppo
    sft = verdicts["sft_token_batches_padding_free_optim"]
    assert sft["ok"], sft["errors"]
    assert {"model.use_remove_padding=true", "data.use_dynamic_bsz=true", "data.max_token_len_per_gpu=128"} <= set(
        sft["plan"].args
    )
    # At their defaults nothing changes: no remove-padding key, fixed micro-batches.
    default = verdicts["grpo_grpo"]["plan"].args
    assert not any("use_remove_padding" in a or "filter_overlong" in a for a in default)
    assert "actor_rollout_ref.actor.use_dynamic_bsz=false" in default


def test_optimizer_settings_reach_verls_adamw_and_schedule(verdicts) -> None:
    """adam_beta1/2, adam_epsilon and min_lr_ratio as vERL's build_optimizer and cosine schedule build them
    (actor and critic); the defaults give torch's AdamW (0.9, 0.999), 1e-8 and a schedule to 0."""
    for name, section, betas, eps, floor in (
        ("ppo_token_batches_padding_free_optim", "optimizer", [0.9, 0.95], 1e-6, 0.1),
        ("ppo_token_batches_padding_free_optim", "critic_optimizer", [0.9, 0.95], 1e-6, None),
        ("sft_token_batches_padding_free_optim", "optimizer", [0.8, 0.95], 1e-8, 0.2),
        ("sft_full", "optimizer", [0.9, 0.999], 1e-8, None),
    ):
        probe = verdicts[name][section]
        assert probe["class"] == "AdamW" and probe["betas"] == pytest.approx(betas), name
        assert probe["eps"] == pytest.approx(eps), name
        if floor is not None:
            assert probe["lr_ratios"][-1] == pytest.approx(floor) and probe["lr_ratios"][0] == 1.0, name
    assert not any("betas" in a or "override_optimizer_config" in a for a in verdicts["sft_full"]["plan"].args)


def test_eval_split_holds_out_a_seeded_share(verdicts) -> None:
    """data.eval_split 0.25 of the 256 training records: 64 written to the eval parquet (vERL's val_files),
    192 kept for training and read by vERL's own dataset class."""
    for name in ("ppo_token_batches_padding_free_optim", "sft_token_batches_padding_free_optim"):
        v = verdicts[name]
        assert v["rows"] == {"train": 192, "eval": 64}, (name, v["rows"])
        assert v["dataset_rows"] == 192 and "data.val_files=data/eval.parquet" in v["plan"].args


def test_message_mappings_reach_verls_dataset_as_canonical_messages(verdicts) -> None:
    """ShareGPT records (from/value, human/gpt) tokenize in vERL's own SFT dataset to exactly the tokens and loss
    mask of the same conversations written as role/content; a `thinking` key reaches the chat template as
    reasoning_content (trained on, inside the assistant turn); ShareGPT RL prompts reach vERL's RLHFDataset as
    role/content messages, and the reward function still scores through them."""
    for name in ("sft_sharegpt", "sft_sharegpt_thinking", "grpo_sharegpt_prompts"):
        assert verdicts[name]["ok"], (name, verdicts[name]["errors"])
        assert verdicts[name]["dataset_rows"] == verdicts[name]["rows"]["train"] == 256, name
    assert verdicts["sft_sharegpt"]["first_row"] == verdicts["sft_chat_eval"]["first_row"]
    first = json.loads((EXAMPLES / "data" / "chat_train.jsonl").read_text().splitlines()[0])["messages"]
    thinking = verdicts["sft_sharegpt_thinking"]["first_row"]
    answer = first[1]["content"]
    assert thinking["text"].startswith(f"<|user|>\n{first[0]['content']}<|end|>\n<|assistant|>\n"), thinking["text"]
    assert thinking["trained_text"] == f"<think>add them: {answer}</think>{answer}<|end|>\n", thinking["trained_text"]
    rl_first = json.loads((EXAMPLES / "data" / "rl_train.jsonl").read_text().splitlines()[0])
    assert verdicts["grpo_sharegpt_prompts"]["first_prompt"] == [{"role": "user", "content": rl_first["prompt"]}]
    assert verdicts["grpo_sharegpt_prompts"]["sample_scores"] == {"ground_truth": 1.0, "empty": 0.0}
    notes = [n.message for n in verdicts["sft_sharegpt_thinking"]["plan"].notes if n.field == "data.message_keys"]
    assert any("reasoning_content" in n for n in notes), notes


def test_alpaca_records_are_tokenized_by_verl_as_axolotls_prompt_text(verdicts) -> None:
    """data.format instruction: vERL's own SFT dataset renders the first Alpaca record as Axolotl's AlpacaPrompter
    text (instruct style, with input) followed by the output and EOS, and trains on the output and EOS only."""
    v = verdicts["sft_alpaca"]
    assert v["ok"], v["errors"]
    record = json.loads((EXAMPLES / "data" / "sft_train.jsonl").read_text().splitlines()[0])
    # What axolotl 0.19's AlpacaPrompter().build_prompt("Answer the question.", record["prompt"]) yields.
    prompt = (
        "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
        "response that appropriately completes the request.\n\n### Instruction:\nAnswer the question.\n\n"
        f"### Input:\n{record['prompt']}\n\n### Response:\n"
    )
    assert v["first_row"]["text"] == prompt + record["completion"] + "<|end|>"
    assert v["first_row"]["trained_text"] == record["completion"] + "<|end|>"
    assert any(a.startswith("+data.apply_chat_template_kwargs.chat_template=") for a in v["plan"].args)


def test_reward_bridge_scores_through_verls_loader(verdicts) -> None:
    """examples/rewards.py:correct, loaded by vERL's get_custom_reward_fn through verl_reward.py: the
    ground truth scores 1, an empty answer 0 (the same function a TRL job uses)."""
    for name in ("grpo_grpo", "ppo_critic", "rloo", "reinforce_pp"):
        assert verdicts[name]["sample_scores"] == {"ground_truth": 1.0, "empty": 0.0}, name


def test_reward_model_is_served_by_verls_reward_loop(verdicts, verl_reward_model) -> None:
    """method.reward_model -> reward.reward_model (enabled, on the rollout engine, tensor parallel as the
    rollout): composed and converted to vERL's RewardConfig, the model loaded by vERL's HFModelConfig as its
    reward loop loads it, and no custom reward function (which would replace the model's score)."""
    for name, engine, tp in (("grpo_reward_model", "vllm", 1), ("ppo_reward_model_sglang_tp2", "sglang", 2)):
        v = verdicts[name]
        assert v["ok"], f"{name}: {v['errors']}"
        assert {
            "reward.reward_model.enable=true",
            f"reward.reward_model.model_path={verl_reward_model}",
            f"reward.reward_model.rollout.name={engine}",
            f"reward.reward_model.rollout.tensor_model_parallel_size={tp}",
        } <= set(v["plan"].args), name
        assert not any(a.startswith("reward.custom_reward_function") for a in v["plan"].args), name
        assert v["reward_model"]["architecture"] == "LlamaForSequenceClassification"
        assert v["reward_model"]["num_labels"] == 1 and v["reward_model"]["prompt_chars"] > 0
        assert "sample_scores" not in v  # nothing scored by a function
    errors = verdicts["bad_reward_model"]["errors"]
    assert any("is a ['LlamaForCausalLM'], not a sequence-classification model" in e for e in errors), errors


def test_native_check_rejects_what_verl_rejects(verdicts) -> None:
    assert any("no_such_key" in e for e in verdicts["bad_unknown_key"]["errors"])  # Hydra: not in struct
    assert any("algorithm.adv_estimator: 'grpo_typo'" in e for e in verdicts["bad_estimator"]["errors"])
    assert any("actor_rollout_ref.rollout.name: 'hf'" in e for e in verdicts["bad_rollout_name"]["errors"])
    errors = verdicts["bad_records"]["errors"]
    assert any(e.startswith("data.train.path: line 3: missing field 'completion'") for e in errors), errors
    assert any(e.startswith("data.train.path: line 4: a record is a JSON object") for e in errors), errors


def test_bad_records_stop_the_run_before_launch(ptsdk, verl_model, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "What is 1 + 1?", "completion": " 2"}\n{"prompt": 3, "completion": " 2"}\n')
    job = job_file(
        tmp_path,
        "bad",
        verl_model,
        data={"train": {"path": str(bad)}},
        distributed={"device": "cpu"},
        training={"precision": "fp32", "global_batch_size": 2, "micro_batch_size": 2},
    )
    r = ptsdk("run", str(job), "--backend", "verl", "--run-dir", str(tmp_path / "run"))
    # ptsdk's preflight (before any vERL code: the bridge's own check is in test_native_check_rejects_...)
    assert r.code == 2 and "data.train.path: line 2: prompt must be a string or a list of" in r.err
    assert "Traceback" not in r.err and not (tmp_path / "run").exists()


def test_jobs_vERL_cannot_run_are_refused_with_the_field(ptsdk, verl_model, tmp_path) -> None:
    cases = {
        "rl_cpu": (
            {"method": rl("grpo"), "distributed": {"device": "cpu"}, "training": {"precision": "fp32"}},
            "distributed.device: vERL generates RL rollouts with vLLM or SGLang",
        ),
        "linear": (
            {"training": {"lr_scheduler": "linear"}},
            "training.lr_scheduler: vERL schedules constant or cosine",
        ),
        "epochs": ({"training": {"max_steps": None, "epochs": 1.5}}, "training.epochs: vERL trains whole epochs"),
        "loss_all": ({"method": {"name": "sft", "loss_on": "all"}}, "method.loss_on: vERL's SFT dataset"),
        "tp3": (
            {"method": rl("grpo"), "rollout": {"tensor_parallel_size": 3}},
            "rollout.tensor_parallel_size: 3 does not divide",
        ),
        "rewards_and_model": (
            {"method": rl("grpo", reward_model=str(verl_model))},
            "method.reward_model: vERL scores with reward functions or a reward model, not their sum",
        ),
        "unlimited_prompt": (
            {"method": rl("grpo", max_prompt_length=None)},
            "method.max_prompt_length: verl cannot run no prompt limit; backends that can: ",
        ),
        "tp_with_fsdp": (
            {"distributed": {**GPUS, "tensor_parallel_size": 2}},
            "verl cannot run ",
        ),
        "megatron": (
            {"distributed": {**GPUS, "strategy": "megatron", "tensor_parallel_size": 2}},
            "distributed.strategy: verl cannot run ",
        ),
        "rollout_server": (
            {"method": rl("grpo"), "rollout": {"server": "localhost:8000"}},
            "rollout.server: verl cannot run ",
        ),
        "steps_not_whole_rollouts": (
            {"method": rl("grpo", rollout_batch_size=8)},
            "training.max_steps: vERL counts steps in rollouts of 2 optimizer steps",
        ),
        "token_budget_below_a_sequence": (
            {"training": {"max_tokens_per_micro_batch": 32}},
            "training.max_tokens_per_micro_batch: 32 tokens cannot hold one sequence of 64 tokens",
        ),
        "per_epoch_rl": (
            {"method": rl("grpo"), "output": {"saves_per_epoch": 1}},
            "output.saves_per_epoch: vERL's PPO trainer counts save_freq / test_freq in rollouts",
        ),
        "per_epoch_twice": (
            {"output": {"evals_per_epoch": 2}, "data": {"eval_split": 0.25}},
            "output.evals_per_epoch: vERL's SFT trainer's one per-epoch cadence is after_each_epoch",
        ),
        "dpo": (
            {"method": {"name": "dpo"}, "data": {"train": {"path": str(EXAMPLES / "data" / "pref_train.jsonl")}}},
            "method.name: verl cannot run method 'dpo'; backends that can: ",
        ),
    }
    for name, (sections, message) in cases.items():
        r = ptsdk("validate", str(job_file(tmp_path, name, verl_model, **sections)), "--backend", "verl")
        assert r.code == 2 and message in r.err, (name, r.err)
        assert "Traceback" not in r.err
    # What the matrix refuses first (no such capability) the backend also says why, for API callers.
    why = {
        "unlimited_prompt": "method.max_prompt_length: vERL sizes and left-pads every prompt",
        "megatron": "distributed.strategy: ptsdk runs vERL's FSDP workers; vERL's Megatron workers",
        "rollout_server": "rollout.server: vERL starts its own vLLM/SGLang engines",
        "tp_with_fsdp": "distributed.tensor_parallel_size: vERL's FSDP engine shards parameters but has no tensor",
    }
    for name, message in why.items():
        problems = VerlBackend().static_problems(load_job(tmp_path / f"{name}.yaml"))
        assert any(p.startswith(message) for p in problems), (name, problems)


def test_sft_lora_trains_in_cpu_smoke_mode(ptsdk, verl_env, verl_model, tmp_path) -> None:
    """vERL's own SFT trainer (FSDP2 engine, sdpa) on CPU: 5 steps, falling loss, metrics from vERL's
    file logger, the trained model exported to model/ and loadable."""
    job = job_file(
        tmp_path,
        "sft_lora_cpu",
        verl_model,
        adapter={"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        distributed={"device": "cpu"},
        training={
            "precision": "fp32",
            "global_batch_size": 8,
            "micro_batch_size": 4,
            "learning_rate": 0.002,
            "max_steps": 5,
        },
        data={"eval": {"path": str(EXAMPLES / "data" / "sft_eval.jsonl")}},
    )
    run_dir = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "verl", job, run_dir)
    train = trained(manifest, metrics, 5, framework=("verl", "0.9.1"))
    assert train[-1]["loss"] < train[0]["loss"]
    assert [m["tokens_seen"] for m in train] == sorted(m["tokens_seen"] for m in train) and train[0]["tokens_seen"] > 0
    assert any(m["kind"] == "eval" and math.isfinite(m["loss"]) for m in metrics)
    argv = next(c["argv"] for c in manifest["commands"] if "cpu_smoke.py" in c["argv"])  # the launch
    assert argv[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=1"] and "cpu_smoke.py" in argv
    assert json.loads((run_dir / "verl_data.json").read_text())["kind"] == "sft"
    assert_loads(verl_env, run_dir / "model", adapter=False)  # vERL saves the merged model


def test_sft_token_batches_optimizer_and_eval_split_train_in_cpu_smoke_mode(
    ptsdk, verl_env, verl_model, tmp_path
) -> None:
    """vERL's own SFT trainer on CPU with token-budget micro-batches, AdamW betas/eps off torch's defaults, a cosine
    schedule with a floor, and an eval split held out of the training file: 4 steps, falling loss, the floor
    reached by vERL's scheduler, eval losses on the held-out records."""
    job = job_file(
        tmp_path,
        "sft_tokens_cpu",
        verl_model,
        distributed={"device": "cpu"},
        training={
            "precision": "fp32",
            "global_batch_size": 8,
            "micro_batch_size": 2,
            "max_tokens_per_micro_batch": 128,
            "learning_rate": 0.002,
            "adam_beta1": 0.8,
            "adam_beta2": 0.95,
            "adam_epsilon": 1e-6,
            "lr_scheduler": "cosine",
            "min_lr_ratio": 0.25,
            "max_steps": 4,
        },
        data={"eval_split": 0.125},
        output={"eval_steps": 2},
    )
    run_dir = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "verl", job, run_dir)
    train = trained(manifest, metrics, 4, framework=("verl", "0.9.1"))
    assert train[-1]["loss"] < train[0]["loss"]
    lrs = [m["learning_rate"] for m in train]
    # vERL logs the rate after its scheduler's step: down the cosine to the floor, 0.25 x 0.002, after step 4 of 4.
    assert lrs[-1] == pytest.approx(0.25 * 0.002) and lrs == sorted(lrs, reverse=True) and lrs[0] < 0.002, lrs
    assert sum(m["kind"] == "eval" and math.isfinite(m["loss"]) for m in metrics) >= 2
    args = next(c["argv"] for c in manifest["commands"] if "cpu_smoke.py" in c["argv"])  # the launch
    assert "data.use_dynamic_bsz=true" in args and "data.max_token_len_per_gpu=128" in args
    assert "optim.betas=[0.8,0.95]" in args and "optim.min_lr_ratio=0.25" in args
    import pyarrow.parquet as pq

    assert pq.read_metadata(run_dir / "data" / "eval.parquet").num_rows == 32
    assert pq.read_metadata(run_dir / "data" / "train.parquet").num_rows == 224


def test_sharegpt_messages_and_per_epoch_cadence_train_in_cpu_smoke_mode(
    ptsdk, verl_env, verl_thinking_model, tmp_path
) -> None:
    """vERL's own SFT trainer on CPU on ShareGPT conversations (from/value, human/gpt, reasoning under `reasoning`)
    read through the job's mappings, 2 epochs of 4 steps with evals_per_epoch 1 and saves_per_epoch 1: vERL's
    after_each_epoch evaluates and checkpoints at steps 4 and 8 only, and the loss falls. (40 records, 8 held out:
    vERL evaluates in batches of the training batch and drops a partial one.)"""
    data = sharegpt(EXAMPLES / "data" / "chat_train.jsonl", tmp_path / "sharegpt.jsonl", thinking=True, limit=40)
    job = job_file(
        tmp_path,
        "sharegpt_cpu",
        verl_thinking_model,
        distributed={"device": "cpu"},
        data={
            "train": {"path": str(data)},
            **SHAREGPT,
            "message_keys": {**SHAREGPT["message_keys"], "thinking": "reasoning"},
            "eval_split": 0.2,
        },
        training={
            "precision": "fp32",
            "global_batch_size": 8,
            "micro_batch_size": 8,
            "learning_rate": 0.002,
            "max_steps": None,
            "epochs": 2,
        },
        output={"evals_per_epoch": 1, "saves_per_epoch": 1, "save_total_limit": 3},
    )
    run_dir = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "verl", job, run_dir)
    train = trained(manifest, metrics, 8, framework=("verl", "0.9.1"))
    assert train[-1]["loss"] < train[0]["loss"]
    assert [m["step"] for m in metrics if m["kind"] == "eval"] == [4, 8]
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("global_step_*")) == ["global_step_4", "global_step_8"]
    args = next(c["argv"] for c in manifest["commands"] if "cpu_smoke.py" in c["argv"])  # the launch
    assert "trainer.save_freq=after_each_epoch" in args and "trainer.test_freq=after_each_epoch" in args
    import pyarrow.parquet as pq

    row = pq.read_table(run_dir / "data" / "train.parquet").to_pylist()[0]["messages"]
    assert {m["role"] for m in row} == {"user", "assistant"}
    assert [m["reasoning_content"] is not None for m in row] == [m["role"] == "assistant" for m in row]


def test_alpaca_records_train_in_cpu_smoke_mode(ptsdk, verl_env, verl_model, tmp_path) -> None:
    """vERL's own SFT trainer on CPU on Alpaca records (data.format instruction): 3 steps, falling loss, the rows
    fingerprinted as vERL's dataset tokenizes them (the Alpaca text itself: test_alpaca_records_are_tokenized_...)."""
    job = job_file(
        tmp_path,
        "alpaca_cpu",
        verl_model,
        distributed={"device": "cpu"},
        data={
            "train": {"path": str(alpaca_records(tmp_path / "alpaca.jsonl"))},
            "format": "instruction",
            "max_length": 384,
        },
        training={"precision": "fp32", "global_batch_size": 8, "micro_batch_size": 4, "learning_rate": 0.002},
    )
    run_dir = tmp_path / "run"
    manifest, metrics = run_on(ptsdk, "verl", job, run_dir)
    train = trained(manifest, metrics, 3, framework=("verl", "0.9.1"))
    assert train[-1]["loss"] < train[0]["loss"]
    assert (run_dir / "logs" / "tokenized_data.json").exists()


def _logged_steps(path: Path) -> dict[int, float]:
    """vERL's file-logger lines read so far: step -> train loss (a line being written is skipped)."""
    out = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "train/loss" in raw.get("data", {}):
            out[int(raw["step"])] = float(raw["data"]["train/loss"])
    return out


def test_resume_continues_from_verls_own_checkpoint(ptsdk, verl_env, verl_model, tmp_path) -> None:
    """`ptsdk run` interrupted (SIGINT, as Ctrl-C) after vERL saved a checkpoint, then `ptsdk run --resume`:
    vERL's trainer.resume_mode=auto restores the model, optimizer and dataloader and goes on at the next step."""
    job = job_file(
        tmp_path,
        "sft_resume",
        verl_model,
        distributed={"device": "cpu"},
        training={
            "precision": "fp32",
            "global_batch_size": 8,
            "micro_batch_size": 8,
            "learning_rate": 0.002,
            "max_steps": 6,
        },
        output={"save_steps": 2},
    )
    run_dir = tmp_path / "run"
    first_log, tracker = (
        run_dir / "logs" / "verl_metrics.jsonl",
        run_dir / "checkpoints" / "latest_checkpointed_iteration.txt",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptsdk", "run", str(job), "--backend", "verl", "--run-dir", str(run_dir), "--quiet"],
        start_new_session=True,  # its own process group: ptsdk, torchrun and the trainer get the SIGINT
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        # Step 3 logged: vERL has saved step 2 (save_steps 2) and is past it.
        while 3 not in _logged_steps(first_log):
            assert proc.poll() is None, "the run ended before step 3: " + proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no step 3 within 300 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    first = _logged_steps(first_log)
    saved = int(tracker.read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and proc.returncode != 0
    assert 2 <= saved < 6 and max(first) < 6, (saved, first)  # stopped after a checkpoint, before the end

    r = ptsdk("run", "--resume", str(run_dir), "--quiet")
    assert r.code == 0, r.err + (run_dir / "logs" / "backend.log").read_text()[-3000:]
    resumed = _logged_steps(run_dir / "logs" / "verl_metrics.resume1.jsonl")  # the resumed run's own log
    assert sorted(resumed) == list(range(saved + 1, 7)), resumed  # vERL went on after its checkpoint, not from 0
    # The restored weights: the next step's loss is the interrupted run's (same weights, same batch) when it got
    # there, and in any case well below the untrained model's first loss.
    if saved + 1 in first:
        assert resumed[saved + 1] == pytest.approx(first[saved + 1], abs=1e-5)
    assert resumed[saved + 1] < first[1] - 0.2, (first, resumed)
    manifest, metrics = read_run(run_dir)
    assert manifest["status"] == "succeeded" and manifest["resumed"] is True
    assert [m["step"] for m in metrics if m["kind"] == "train"] == list(range(1, 7))
    assert "trainer.resume_mode=auto" in manifest["commands"][0]["argv"]  # no prepare step: the data is kept
    assert list((run_dir / "model").glob("*.safetensors"))
