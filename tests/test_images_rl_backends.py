"""Images in RL prompts on vERL and OpenRLHF (issue #18), without the frameworks: what each translation writes, the
records their data steps make, what each refuses and the matrix's verdict. tests/backends/test_images_rl_native.py
runs the same plans through the frameworks' own parsers, datasets and processors."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, fake_model
from ptsdk import preflight as pf
from ptsdk.backends.openrlhf.backend import OpenRLHFBackend
from ptsdk.backends.verl.backend import VERL_PROCESSORS, VerlBackend
from ptsdk.matrix.check import feasibility
from ptsdk.plugins import runtime
from ptsdk.plugins.manager import get_backends
from ptsdk.spec import Job, load_job

QUESTION = "What color is it?"
REWARD = f"{EXAMPLES / 'rewards.py'}:colour"
GPU_GRPO = {"name": "grpo", "num_generations": 4, "max_prompt_length": 32, "max_completion_length": 4}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf, "hub_reachable", lambda: False)


def run_file(module: str) -> ModuleType:
    """A file the plan copies into the run directory, imported as it runs there: ptsdk_runtime beside it."""
    added = runtime.MODULE not in sys.modules
    sys.modules.setdefault(runtime.MODULE, runtime)
    try:
        return importlib.import_module(module)
    finally:
        if added:
            del sys.modules[runtime.MODULE]


@pytest.fixture(scope="module")
def verl_data() -> ModuleType:
    return run_file("ptsdk.backends.verl.verl_data")


@pytest.fixture(scope="module")
def prepare() -> ModuleType:
    return run_file("ptsdk.backends.openrlhf.prepare_openrlhf")


def vlm(folder: Path, processor: str = "LlavaProcessor") -> Path:
    """A model folder that passes preflight as a vision-language model whose processor is `processor`."""
    model = fake_model(folder)
    (model / "config.json").write_text(json.dumps({"model_type": "llava", "vision_config": {}}))
    (model / "processor_config.json").write_text(json.dumps({"processor_class": processor}))
    return model


def rl_job(tmp_path: Path, records: list[Any] | None = None, **sections: Any) -> Path:
    """A GRPO job on GPUs over the bundled picture prompts (copied beside it), bf16 (OpenRLHF's precisions)."""
    if not (tmp_path / "images").exists():
        shutil.copytree(EXAMPLES / "data" / "images", tmp_path / "images")
    lines = (EXAMPLES / "data" / "vlm_rl.jsonl").read_text().splitlines()
    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records) if records is not None else "\n".join(lines) + "\n"
    )
    spec: dict[str, Any] = {
        "method": {**GPU_GRPO, "rewards": [REWARD]},
        "model": {"name_or_path": str(vlm(tmp_path / "vlm"))},
        "data": {"train": {"path": "train.jsonl"}, "images": {}},
        "distributed": {"device": "gpu", "gpus_per_node": 1},
        "training": {"global_batch_size": 8, "micro_batch_size": 4, "max_steps": 2, "precision": "bf16"},
    }
    for key, value in sections.items():
        whole = key == "method" and value.get("name") == "sft"  # no RL fields
        spec[key] = value if whole else {**spec.get(key, {}), **value}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def reasons(job: Job, backend: str) -> list[str]:
    return feasibility(job, get_backends())[backend].reasons()


# --- OpenRLHF ------------------------------------------------------------------------------------------------


def test_openrlhf_translation_reads_images_with_its_own_flags(tmp_path: Path) -> None:
    job = load_job(rl_job(tmp_path, data={"images": {"max_per_record": 3}}))
    assert reasons(job, "openrlhf") == []
    plan = OpenRLHFBackend().translate(job)
    args = " ".join(plan.args)
    assert "--data.image_key images" in args and "--data.max_images_per_prompt 3" in args
    assert "--data.apply_chat_template" in args and "--data.input_key prompt" in args
    assert "--ds.packing_samples" not in args and "critic" not in args
    spec = json.loads(next(f.content for f in plan.files if f.path == "openrlhf_data.json"))
    assert spec["images"] == {"column": "images", "root": None, "key": "images"} and spec["chat"] is True
    notes = {n.field: n.message for n in plan.notes}
    assert "openrlhf/utils/utils.py:40-66" in notes["data.images"]
    assert "openrlhf/utils/agent.py:227-233" in notes["method.max_prompt_length"]


def test_openrlhf_prompts_become_parts_and_files_absolute(prepare: ModuleType, tmp_path: Path) -> None:
    spec = {"family": "rl", "format": "prompt", "chat": True, "columns": {}}
    spec["images"] = {"column": "pictures", "root": None, "key": "images"}
    strings = {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        "pictures": ["a.png", "/abs/b.png"],
        "ground_truth": "red",
    }
    out = prepare.convert(spec, strings, str(tmp_path))
    assert out["prompt"] == [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": QUESTION}]},
    ]
    assert out["images"] == [str(tmp_path / "a.png"), "/abs/b.png"]
    assert json.loads(out["ptsdk_columns"]) == {"ground_truth": "red", "images": out["images"]}
    # Parts keep their order; a part that names its file puts the file in the list.
    parts = {
        "prompt": [{"role": "user", "content": [{"type": "text", "text": "Q "}, {"type": "image", "path": "c.png"}]}]
    }
    out = prepare.convert(spec, parts, str(tmp_path))
    assert out["prompt"][0]["content"] == [{"type": "text", "text": "Q "}, {"type": "image"}]
    assert out["images"] == [str(tmp_path / "c.png")]
    bad = [
        ({"prompt": QUESTION, "pictures": ["a.png"]}, "prompt: a job with images needs a non-empty list of messages"),
        ({"prompt": [{"role": "user", "content": [{"type": "image"}]}], "pictures": []}, "1 image parts but 0"),
        ({"prompt": [{"role": "user", "content": QUESTION}]}, "pictures: the record has no images"),
        ({"prompt": [{"role": "user", "content": [{"type": "video"}]}]}, "prompt.0.content.0: expected"),
    ]
    for record, expect in bad:
        with pytest.raises(prepare.BadRecord, match=expect.replace("(", r"\(")):
            prepare.convert(spec, record, str(tmp_path))


def test_openrlhf_refuses_what_its_vision_path_refuses(tmp_path: Path) -> None:
    job = load_job(rl_job(tmp_path, training={"padding_free": True}))
    assert any(
        r.startswith("training.padding_free: OpenRLHF 0.11.2 refuses --ds.packing_samples with images")
        and "train_ppo_ray.py:667-671" in r
        for r in reasons(job, "openrlhf")
    )
    job = load_job(rl_job(tmp_path, training={"max_tokens_per_micro_batch": 64}))
    assert any(r.startswith("training.max_tokens_per_micro_batch: ") for r in reasons(job, "openrlhf"))
    # PPO needs a critic, which OpenRLHF refuses with images (train_ppo_ray.py:662-666): not declared.
    ppo = load_job(rl_job(tmp_path, method={"name": "ppo", "num_generations": 1}, training={"global_batch_size": 4}))
    assert "data.images: openrlhf cannot run images in ppo records; backends that can: verl" in reasons(ppo, "openrlhf")
    # train_sft / train_dpo read no images.
    assert ("feature", "images:sft") not in {c.key for c in OpenRLHFBackend.capabilities}
    assert ("feature", "images:dpo") not in {c.key for c in OpenRLHFBackend.capabilities}


# --- vERL ----------------------------------------------------------------------------------------------------


def test_verl_translation_writes_placeholders_and_an_images_column(tmp_path: Path) -> None:
    job = load_job(rl_job(tmp_path, model={"name_or_path": str(vlm(tmp_path / "qwen", "Qwen2_5_VLProcessor"))}))
    assert reasons(job, "verl") == []
    plan = VerlBackend().translate(job)
    assert "data.image_key=images" in plan.args
    spec = json.loads(next(f.content for f in plan.files if f.path == "verl_data.json"))
    assert spec["images"] == {"column": "images", "root": None, "key": "images"}
    note = next(n.message for n in plan.notes if n.field == "data.images")
    assert "qwen-vl-utils" in note and "<image>" in note


def test_verl_rows_carry_one_placeholder_per_image(verl_data: ModuleType, tmp_path: Path) -> None:
    images = {"column": "pictures", "root": None, "key": "images"}
    record = {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        "pictures": ["a.png", "b.png"],
        "ground_truth": "red",
    }
    row = verl_data.image_rl_row(record, 0, images, str(tmp_path), "rule", None)
    assert row["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "<image><image>" + QUESTION},
    ]
    assert row["images"] == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert row["reward_model"] == {"style": "rule", "ground_truth": "red"} and row["data_source"] == "ptsdk"
    ptsdk = json.loads(row["extra_info"]["ptsdk"])
    assert ptsdk["prompt"] == record["prompt"] and ptsdk["columns"] == {"ground_truth": "red", "images": row["images"]}
    parts = [{"type": "text", "text": "Left "}, {"type": "image", "path": "c.png"}, {"type": "text", "text": " right"}]
    prompt, files = verl_data.image_prompt([{"role": "user", "content": parts}], None, "pictures", str(tmp_path))
    assert prompt == [{"role": "user", "content": "Left <image> right"}] and files == [str(tmp_path / "c.png")]
    for value, files, expect in (
        ([{"role": "user", "content": "a <image> tag"}], ["a.png"], "holds the text <image>"),
        ([{"role": "user", "content": [{"type": "image"}]}], ["a.png", "b.png"], "1 image parts but 2 image files"),
        ([{"role": "assistant", "content": "x"}], ["a.png"], "no user turn"),
        ("What?", ["a.png"], "prompt must be a non-empty list"),
    ):
        with pytest.raises(ValueError, match=expect):
            verl_data.image_prompt(value, files, "pictures", str(tmp_path))


def test_verl_refuses_a_processor_it_does_not_load_and_images_in_sft(tmp_path: Path) -> None:
    job = load_job(rl_job(tmp_path))  # the tiny LLaVA's processor
    found = reasons(job, "verl")
    assert len(found) == 1, found
    assert found[0].startswith("model.name_or_path: vERL 0.9.1 loads only Qwen2VLProcessor")
    assert "has a LlavaProcessor" in found[0] and "takes images in grpo records: openrlhf, trl" in found[0]
    assert "Qwen2VLProcessor" in VERL_PROCESSORS and "LlavaProcessor" not in VERL_PROCESSORS
    # A hub id cannot be read before launch: the native check runs vERL's hf_processor on it.
    job = load_job(rl_job(tmp_path, model={"name_or_path": "Qwen/Qwen2.5-VL-3B-Instruct"}))
    assert reasons(job, "verl") == []
    sft = load_job(
        rl_job(
            tmp_path,
            [{"messages": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "red"}]}],
            method={"name": "sft"},
            data={"format": "messages"},
        )
    )
    assert "data.images: verl cannot run images in sft records; backends that can: axolotl, trl" in reasons(sft, "verl")


# --- the matrix ----------------------------------------------------------------------------------------------


def bundled_vlm_grpo(tmp_path: Path) -> Path:
    """examples/jobs/vlm_grpo.yaml as it is, its relative paths made absolute and its model a LLaVA-like folder
    (the example's tiny VLM is built by examples/make_tiny_vlm.py, not checked in)."""
    data = yaml.safe_load((EXAMPLES / "jobs" / "vlm_grpo.yaml").read_text())
    assert (
        data["method"]["rewards"] == ["../rewards.py:colour"]
        and data["data"]["train"]["path"] == "../data/vlm_rl.jsonl"
    )
    data["method"]["rewards"] = [REWARD]
    data["data"]["train"]["path"] = str(EXAMPLES / "data" / "vlm_rl.jsonl")
    data["model"]["name_or_path"] = str(vlm(tmp_path / "tiny-vlm"))
    path = tmp_path / "vlm_grpo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_matrix_verdict_for_the_bundled_images_grpo_job(tmp_path: Path) -> None:
    """examples/jobs/vlm_grpo.yaml (GRPO on CPU, fp32): TRL's alone; vERL and OpenRLHF need GPUs for RL."""
    job = load_job(bundled_vlm_grpo(tmp_path))
    verdict = feasibility(job, get_backends())
    assert verdict["trl"].ok and verdict["trl"].accepted_by == ["trl"]
    assert any(
        r.startswith("distributed.device: vERL generates RL rollouts with vLLM") for r in verdict["verl"].reasons()
    )
    assert any(r.startswith("distributed.device: OpenRLHF's CPU smoke mode") for r in verdict["openrlhf"].reasons())
    line = next(r for r in verdict["axolotl"].reasons() if r.startswith("data.images: "))
    assert line.startswith("data.images: axolotl cannot run images in grpo records; backends that can: ")
    assert {"openrlhf", "trl", "verl"} <= set(line.rsplit(": ", 1)[1].split(", ")), line


def test_matrix_verdict_for_the_images_grpo_job_on_gpus(tmp_path: Path) -> None:
    """The same job on a GPU in bf16: OpenRLHF and TRL take it; vERL refuses the tiny LLaVA's processor."""
    job = load_job(rl_job(tmp_path))
    verdict = feasibility(job, get_backends())
    assert verdict["openrlhf"].ok and verdict["openrlhf"].accepted_by == ["openrlhf", "trl"]
    assert verdict["verl"].problems and verdict["verl"].problems[0].startswith("model.name_or_path: vERL 0.9.1")
