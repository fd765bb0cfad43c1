"""backend_options: merged into the native config, never silently replacing what ptsdk sets (issue #12).

No framework is imported: each backend's translate() and the kit's merge run here as they run for the CLI.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from conftest import local_job, minimal_job
from ptsdk.errors import UnsupportedError
from ptsdk.plugins.backend import Note, Plan
from ptsdk.plugins.kit import (
    PassthroughError,
    apply_flag_passthrough,
    apply_override_passthrough,
    apply_passthrough,
    parse_flags,
    passthrough_problems,
)
from ptsdk.plugins.manager import get_backend
from ptsdk.spec import Job

GRPO = {
    "name": "grpo",
    "num_generations": 4,
    "max_completion_length": 8,
    "kl_coef": 0.04,
    "reward_model": "org/reward-model",
}
METRICS_PLUGIN = "ptsdk_axolotl_metrics.JsonlMetricsPlugin"
GPU_BF16 = {"distributed": {"device": "gpu"}, "training": {"global_batch_size": 8, "micro_batch_size": 4}}


def job_with(backend: str, options: dict[str, Any], **sections: Any) -> Job:
    method = sections.pop("method", GRPO)
    return Job.model_validate(
        minimal_job(method=method, **{**GPU_BF16, **sections}, backend_options={backend: options})
    )


def translate(backend: str, options: dict[str, Any], **sections: Any) -> Plan:
    return get_backend(backend)().translate(job_with(backend, options, **sections))


def refused(backend: str, options: dict[str, Any], **sections: Any) -> list[str]:
    with pytest.raises(PassthroughError) as info:
        translate(backend, options, **sections)
    assert isinstance(info.value, UnsupportedError)  # exit 2, `field: problem` lines
    return info.value.lines


def native(plan: Plan) -> dict[str, Any]:
    config = next(f for f in plan.files if f.path == plan.native_config)
    assert config.content is not None
    loaded = yaml.safe_load(config.content)
    assert isinstance(loaded, dict)
    return loaded


def passthrough_notes(plan: Plan) -> dict[str, str]:
    return {n.field: n.message for n in plan.notes if n.kind == "passthrough"}


# --- dict-shaped configs: TRL and Axolotl --------------------------------------------------------


def test_a_nested_mapping_merges_and_keeps_ptsdks_keys() -> None:
    """The issue's case: a `trl:` section through Axolotl used to wipe ptsdk's whole GRPO section."""
    plan = translate("axolotl", {"trl": {"use_vllm": False, "vllm_server_timeout": 300}})
    trl = native(plan)["trl"]
    assert trl["vllm_server_timeout"] == 300
    assert trl["num_generations"] == 4 and trl["beta"] == 0.04 and trl["loss_type"] == "grpo"
    assert trl["reward_funcs"] == ["org/reward-model"]
    notes = passthrough_notes(plan)
    assert notes["backend_options.axolotl.trl.vllm_server_timeout"] == "set to 300 (ptsdk sets no value)"
    assert notes["backend_options.axolotl.trl.use_vllm"] == "false: ptsdk's own value, unchanged"


def test_a_list_must_keep_ptsdks_entries() -> None:
    """Lists replace (most native lists are values, not registries), so one for a key ptsdk sets must
    keep ptsdk's entries: Axolotl's plugins keep ptsdk's metrics plugin, GRPO keeps the job's rewards."""
    (line,) = refused("axolotl", {"plugins": ["my_plugins.Timer"]})
    assert line == (
        f"backend_options.axolotl.plugins: ptsdk sets this from the job ([{METRICS_PLUGIN}]) and a list replaces "
        f"it: keep ptsdk's entries ([{METRICS_PLUGIN}, my_plugins.Timer]), or name it in "
        "backend_options.axolotl.ptsdk_override: [plugins] to replace ptsdk's value"
    )
    plan = translate(
        "axolotl",
        {"plugins": ["my_plugins.Timer", METRICS_PLUGIN], "trl": {"reward_funcs": ["org/reward-model", "m.f"]}},
    )
    config = native(plan)
    assert config["plugins"] == ["my_plugins.Timer", METRICS_PLUGIN]
    assert config["trl"]["reward_funcs"] == ["org/reward-model", "m.f"]
    assert passthrough_notes(plan)["backend_options.axolotl.plugins"] == (
        f"set to [my_plugins.Timer, {METRICS_PLUGIN}], keeping ptsdk's entries [{METRICS_PLUGIN}]"
    )


def test_overwriting_a_value_ptsdk_sets_is_refused_naming_the_field() -> None:
    lines = refused("axolotl", {"rl_beta": 0.3}, method={"name": "dpo", "beta": 0.1})
    assert lines == [
        "backend_options.axolotl.rl_beta: ptsdk sets this from the job (0.1, from method.beta); set it there, "
        "or name it in backend_options.axolotl.ptsdk_override: [rl_beta] to replace ptsdk's value"
    ]
    (line,) = refused("axolotl", {"trl": {"beta": 0.1}})
    assert line.startswith("backend_options.axolotl.trl.beta: ptsdk sets this from the job (0.04, from method.kl_coef)")
    (line,) = refused("trl", {"learning_rate": 0.5})
    assert "(2e-05, from training.learning_rate); set it there" in line


def test_ptsdk_override_replaces_ptsdks_value_with_a_note() -> None:
    plan = translate(
        "axolotl",
        {"trl": {"beta": 0.1}, "plugins": ["my_plugins.Timer"], "ptsdk_override": ["trl.beta", "plugins"]},
    )
    config = native(plan)
    assert config["trl"]["beta"] == 0.1 and config["trl"]["num_generations"] == 4
    assert config["plugins"] == ["my_plugins.Timer"]
    notes = passthrough_notes(plan)
    assert notes["backend_options.axolotl.trl.beta"] == "set to 0.1, replacing ptsdk's 0.04 (ptsdk_override)"
    assert "ptsdk_override" not in config
    # A name covers everything under it.
    plan = translate("trl", {"learning_rate": 0.5, "ptsdk_override": ["learning_rate"]})
    assert native(plan)["learning_rate"] == 0.5 and plan.effective["learning_rate"] == 0.5


def test_a_key_the_job_owns_is_refused_even_where_ptsdk_sets_nothing() -> None:
    """DeepSpeed through Axolotl's passthrough used to validate as 'ddp'."""
    lines = refused("axolotl", {"deepspeed": "ds_config.json", "fsdp_config": {"offload_params": True}})
    assert lines == [
        "backend_options.axolotl.deepspeed: the job's distributed.strategy owns this; set it there, or name it in "
        "backend_options.axolotl.ptsdk_override: [deepspeed] to set it anyway",
        "backend_options.axolotl.fsdp_config.offload_params: the job's distributed.strategy owns this; set it "
        "there, or name it in backend_options.axolotl.ptsdk_override: [fsdp_config.offload_params] to set it anyway",
    ]
    bf16, fp16 = refused("trl", {"bf16": False, "fp16": True})
    assert bf16.startswith("backend_options.trl.bf16: the job's training.precision owns this (ptsdk sets true)")
    assert fp16.startswith("backend_options.trl.fp16: the job's training.precision owns this (ptsdk sets false)")
    plan = translate("axolotl", {"deepspeed": "ds_config.json", "ptsdk_override": ["deepspeed"]})
    assert native(plan)["deepspeed"] == "ds_config.json"
    assert passthrough_notes(plan)["backend_options.axolotl.deepspeed"] == (
        "set to ds_config.json (ptsdk sets no value); the job's distributed.strategy does not say so (ptsdk_override)"
    )


def test_the_same_value_as_ptsdks_is_accepted() -> None:
    plan = translate("trl", {"bf16": True, "num_generations": 4, "beta": 0.04, "logging_first_step": True})
    config = native(plan)
    assert config["bf16"] is True and config["num_generations"] == 4 and config["logging_first_step"] is True
    assert passthrough_notes(plan)["backend_options.trl.beta"] == "0.04: ptsdk's own value, unchanged"


def test_every_problem_is_reported_at_once() -> None:
    lines = refused(
        "axolotl",
        {"trl": {"num_generations": 8, "loss_type": "dapo"}, "output_dir": "elsewhere", "ptsdk_override": ["tlr"]},
    )
    assert [line.split(":", 1)[0] for line in lines] == [
        "backend_options.axolotl.trl.num_generations",
        "backend_options.axolotl.trl.loss_type",
        "backend_options.axolotl.output_dir",
        "backend_options.axolotl.ptsdk_override",
    ]
    assert "(4, from method.num_generations)" in lines[0] and "(grpo, from method.loss_type)" in lines[1]
    assert "the job's output.dir owns this (ptsdk sets model)" in lines[2]
    assert lines[3] == (
        "backend_options.axolotl.ptsdk_override: tlr names no key set in backend_options.axolotl; "
        "remove it or check its spelling"
    )
    (line,) = refused("trl", {"ptsdk_override": "learning_rate"})
    assert line.startswith("backend_options.trl.ptsdk_override: a list of the native keys (dotted)")


def test_a_value_replacing_a_mapping_ptsdk_sets_is_refused() -> None:
    (line,) = refused("axolotl", {"trl": None})
    assert line.startswith("backend_options.axolotl.trl: ptsdk sets trl.use_vllm, trl.num_generations, ")
    assert "give a mapping to merge with ptsdk's keys" in line
    plan = translate("axolotl", {"trl": {}})  # an empty mapping merges nothing
    assert native(plan)["trl"]["num_generations"] == 4


def test_a_flat_mapping_of_native_keys_works_as_before() -> None:
    """Third-party backends pass flat mappings (dotted Hydra keys) to apply_passthrough."""
    job = job_with("hydrafake", {"optim.lr": 0.1, "trainer.x": 1, "ptsdk_override": ["optim.lr"]})
    config: dict[str, Any] = {"model.path": "org/model", "optim.lr": 2e-5}
    notes: list[Note] = []
    apply_passthrough(job, "hydrafake", config, notes)
    assert config == {"model.path": "org/model", "optim.lr": 0.1, "trainer.x": 1}
    assert [n.field for n in notes] == ["backend_options.hydrafake.optim.lr", "backend_options.hydrafake.trainer.x"]


# --- vERL: Hydra overrides -------------------------------------------------------------------------


def args_of(plan: Plan, key: str) -> list[str]:
    return [a for a in plan.args if a.lstrip("+").split("=", 1)[0] == key]


def test_verl_override_refused_then_allowed() -> None:
    lines = refused("verl", {"actor_rollout_ref.actor.clip_ratio": 0.3, "algorithm.adv_estimator": "rloo"})
    assert lines == [
        "backend_options.verl.actor_rollout_ref.actor.clip_ratio: ptsdk sets this from the job "
        "(0.2, from method.clip_epsilon); set it there, or name it in backend_options.verl.ptsdk_override: "
        "[actor_rollout_ref.actor.clip_ratio] to replace ptsdk's value",
        "backend_options.verl.algorithm.adv_estimator: the job's method.name owns this (ptsdk sets grpo); set it "
        "there, or name it in backend_options.verl.ptsdk_override: [algorithm.adv_estimator] to replace ptsdk's "
        "value",
    ]
    plan = translate(
        "verl",
        {"actor_rollout_ref.actor.clip_ratio": 0.3, "ptsdk_override": ["actor_rollout_ref.actor.clip_ratio"]},
    )
    assert args_of(plan, "actor_rollout_ref.actor.clip_ratio") == ["actor_rollout_ref.actor.clip_ratio=0.3"]
    assert passthrough_notes(plan)["backend_options.verl.actor_rollout_ref.actor.clip_ratio"] == (
        "set to 0.3, replacing ptsdk's 0.2 (ptsdk_override)"
    )


def test_verl_nested_options_flatten_and_merge_into_ptsdks_mappings() -> None:
    a = "actor_rollout_ref.actor"
    plan = translate(
        "verl",
        {
            "trainer": {"val_before_train": False, "log_val_generations": 2},
            "+ray_kwargs": {"ray_init": {"num_cpus": 8}},
            f"+{a}.fsdp_config.mixed_precision": {"cast_forward_inputs": True},
            "ptsdk_override": [f"{a}.fsdp_config.mixed_precision.cast_forward_inputs"],
        },
    )
    assert args_of(plan, "trainer.log_val_generations") == ["trainer.log_val_generations=2"]
    assert args_of(plan, "trainer.val_before_train") == ["trainer.val_before_train=false"]  # ptsdk's own, once
    assert "+ray_kwargs.ray_init.num_cpus=8" in plan.args
    (mixed,) = args_of(plan, f"{a}.fsdp_config.mixed_precision")
    assert mixed.startswith(f"+{a}.fsdp_config.mixed_precision={{param_dtype:bf16,")
    assert mixed.endswith(",cast_forward_inputs:true}")  # inside ptsdk's mapping, ptsdk's "+" kept
    # A key inside ptsdk's mapping is checked like any other.
    (line,) = refused("verl", {f"{a}.fsdp_config.mixed_precision.param_dtype": "fp32"})
    assert line.startswith(f"backend_options.verl.{a}.fsdp_config.mixed_precision.param_dtype: the job's training")


# --- OpenRLHF: flags -------------------------------------------------------------------------------


OPENRLHF = {"training": {"global_batch_size": 8, "micro_batch_size": 4, "precision": "bf16"}}


def test_openrlhf_flag_refused_then_allowed() -> None:
    lines = refused(
        "openrlhf", {"rollout.n_samples_per_prompt": 2, "vllm.enable_sleep": False, "ds.zero_stage": 3}, **OPENRLHF
    )
    assert lines == [
        "backend_options.openrlhf.rollout.n_samples_per_prompt: ptsdk sets this from the job (4, from "
        "method.num_generations); set it there, or name it in backend_options.openrlhf.ptsdk_override: "
        "[rollout.n_samples_per_prompt] to replace ptsdk's value",
        "backend_options.openrlhf.vllm.enable_sleep: ptsdk sets this from the job (true); change the job, or name "
        "it in backend_options.openrlhf.ptsdk_override: [vllm.enable_sleep] to replace ptsdk's value",
        "backend_options.openrlhf.ds.zero_stage: the job's distributed.strategy owns this (ptsdk sets 0); set it "
        "there, or name it in backend_options.openrlhf.ptsdk_override: [ds.zero_stage] to replace ptsdk's value",
    ]
    plan = translate(
        "openrlhf",
        {
            "rollout.n_samples_per_prompt": 2,
            "--vllm.enable_sleep": False,
            "actor.eps_clip": 0.2,  # ptsdk's own value
            "vllm.enable_prefix_caching": True,
            "adam": {"eps": 1e-6},
            "ptsdk_override": ["rollout.n_samples_per_prompt", "--vllm.enable_sleep"],
        },
        **OPENRLHF,
    )
    flags = parse_flags(plan.args)
    assert flags["--rollout.n_samples_per_prompt"] == ["2"]
    assert "--vllm.enable_sleep" not in flags and "--ds.enable_sleep" in flags
    assert flags["--vllm.enable_prefix_caching"] is None and flags["--adam.eps"] == ["1e-06"]
    assert plan.args.count("--actor.eps_clip") == 1
    notes = passthrough_notes(plan)
    assert (
        notes["backend_options.openrlhf.--vllm.enable_sleep"] == "set to false, replacing ptsdk's true (ptsdk_override)"
    )
    assert notes["backend_options.openrlhf.rollout.n_samples_per_prompt"] == (
        "set to 2, replacing ptsdk's 4 (ptsdk_override)"
    )


def test_flag_lists_keep_ptsdks_values() -> None:
    job = job_with("clifake", {"adam.betas": [0.9, 0.95], "lora.targets": ["q_proj", "v_proj", "o_proj"]})
    flags = parse_flags(["--adam.betas", "0.9", "0.999", "--lora.targets", "q_proj", "v_proj", "--bare"])
    assert flags == {"--adam.betas": ["0.9", "0.999"], "--lora.targets": ["q_proj", "v_proj"], "--bare": None}
    with pytest.raises(PassthroughError) as info:
        apply_flag_passthrough(job, "clifake", flags, [])
    (line,) = info.value.lines
    assert line.startswith("backend_options.clifake.adam.betas: ptsdk sets this from the job ([0.9, 0.999])")


def test_hydra_overrides_without_nesting_are_merged_directly() -> None:
    job = job_with("hydrafake", {"data": {"seed": 3}, "+new.key": "x"})
    overrides: dict[str, Any] = {"data.seed": 3, "data.train_files": "t.parquet"}
    notes: list[Note] = []
    apply_override_passthrough(job, "hydrafake", overrides, notes)
    assert overrides == {"data.seed": 3, "data.train_files": "t.parquet", "+new.key": "x"}


# --- before launch: the CLI and static_problems ----------------------------------------------------


def test_translate_refuses_with_every_line(ptsdk, write_job, tmp_path) -> None:
    options = {"plugins": ["my_plugins.Timer"], "deepspeed": "ds.json", "learning_rate": 0.1}
    path = write_job(local_job(tmp_path, backend_options={"axolotl": options}))
    r = ptsdk("translate", str(path), "-b", "axolotl", "--no-native-check")
    assert r.code == 2 and "Traceback" not in r.err
    # Refused by the feasibility check (static_problems), before translating: validate and matrix say the same.
    assert r.err.startswith(f"error: {path}: backend axolotl cannot run this job")
    assert ptsdk("validate", str(path), "-b", "axolotl").err == r.err
    assert "  backend_options.axolotl.plugins: ptsdk sets this from the job" in r.err
    assert "  backend_options.axolotl.deepspeed: the job's distributed.strategy owns this;" in r.err
    assert "  backend_options.axolotl.learning_rate: ptsdk sets this from the job (2e-05, from training." in r.err
    options["ptsdk_override"] = ["plugins", "deepspeed", "learning_rate"]
    path = write_job(local_job(tmp_path, backend_options={"axolotl": options}))
    r = ptsdk("translate", str(path), "-b", "axolotl", "--no-native-check")
    assert r.code == 0, r.err
    assert "[passthrough] backend_options.axolotl.learning_rate: set to 0.1, replacing ptsdk's 2e-05" in r.out


def test_passthrough_problems_for_static_problems() -> None:
    axolotl = get_backend("axolotl")()
    assert passthrough_problems(axolotl, job_with("axolotl", {"trl": {"use_vllm": False}})) == []
    (line,) = passthrough_problems(axolotl, job_with("axolotl", {"deepspeed": "ds.json"}))
    assert line.startswith("backend_options.axolotl.deepspeed: the job's distributed.strategy owns this")
    # Options for another backend, and refusals that are not the passthrough's, are not its business.
    assert passthrough_problems(axolotl, job_with("trl", {"deepspeed": "ds.json"})) == []
    openrlhf = get_backend("openrlhf")()
    fp32 = job_with("openrlhf", {"ds.zero_stage": 3}, training={"precision": "fp32"})
    assert passthrough_problems(openrlhf, fp32) == []
    (line,) = passthrough_problems(openrlhf, job_with("openrlhf", {"ds.zero_stage": 3}, **OPENRLHF))
    assert line.startswith("backend_options.openrlhf.ds.zero_stage:")


def test_dotted_keys_reach_nested_sections_and_hydra_deletions_replace() -> None:
    """In a config mapping, `trl.top_p` goes inside ptsdk's `trl:` section (a flat dotted key stays flat);
    in Hydra overrides, `~key` (allowed by ptsdk_override) replaces ptsdk's override of that key."""
    plan = translate("axolotl", {"trl.top_p": 0.9})
    assert native(plan)["trl"]["top_p"] == 0.9 and "trl.top_p" not in native(plan)
    (line,) = refused("axolotl", {"trl.beta": 0.5})
    assert line.startswith("backend_options.axolotl.trl.beta: ptsdk sets this from the job (0.04")
    job = job_with("verl", {"~trainer.val_before_train": None, "ptsdk_override": ["trainer.val_before_train"]})
    overrides: dict[str, Any] = {"trainer.val_before_train": False, "+x.mp": {"a": 1, "b": 2}, "y": 1}
    apply_override_passthrough(job, "verl", overrides, [])
    assert overrides == {"+x.mp": {"a": 1, "b": 2}, "y": 1, "~trainer.val_before_train": None}
    job = job_with("verl", {"~x.mp.a": None, "ptsdk_override": ["x.mp"]})
    apply_override_passthrough(job, "verl", overrides, [])
    assert overrides["+x.mp"] == {"b": 2}
