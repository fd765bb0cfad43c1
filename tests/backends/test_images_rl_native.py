"""Images in RL prompts, checked by vERL's and OpenRLHF's own code on ptsdk's plans (issue #18).

The tiny LLaVA (examples/make_tiny_vlm.py: 28x28 pictures, 4 image tokens each) and the bundled picture prompts.
OpenRLHF: train_ppo_ray's parser and its checks after parsing, the preparation step, and the prepared prompts through
OpenRLHF's own PromptDataset, the processor its get_tokenizer loads and process_prompt_with_images, as its agent
tokenizes them before vLLM generates. vERL: its Hydra config with data.image_key, its hf_processor on the model
and its RLHFDataset on the converted parquet. Neither starts Ray or a training run (RL needs GPUs for vLLM).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from ptsdk.backends.openrlhf.backend import OpenRLHFBackend
from ptsdk.backends.verl.backend import VerlBackend
from ptsdk.errors import UnsupportedError
from ptsdk.pipeline import load_checked
from ptsdk.rundir import write_plan
from ptsdk.spec import load_job

QUESTION = "What color is it?"
REWARD = f"{EXAMPLES / 'rewards.py'}:colour"
#: The tiny LLaVA's prompt for one picture and the question, as its chat template renders it.
RENDERED = "<|user|>\n<image>What color is it?<|end|>\n<|assistant|>\n"
IMAGE_TOKENS = 4  # (28 / 14)^2 patches per picture


#: A tiny Mllama's processor and config (no weights: nothing here loads them), built in vERL's environment: Mllama's
#: is a processor vERL's hf_processor loads whose image processor needs no torchvision (Qwen2-VL's video processor,
#: which AutoProcessor builds with it, does).
TINY_MLLAMA = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from make_tiny_model import SPECIAL, build_tokenizer
from transformers import MllamaConfig, MllamaProcessor
from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil
out = Path(sys.argv[1])
tok = build_tokenizer()
tok.add_special_tokens({"additional_special_tokens": [*SPECIAL[4:], "<|image|>"]})
tok.chat_template = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}<|image|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
image_processor = MllamaImageProcessorPil(size={"height": 28, "width": 28}, max_image_tiles=4)
MllamaProcessor(image_processor=image_processor, tokenizer=tok, chat_template=tok.chat_template).save_pretrained(out)
MllamaConfig(
    text_config={"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                 "num_attention_heads": 2, "num_key_value_heads": 1, "cross_attention_layers": [1]},
    vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_global_layers": 1,
                   "attention_heads": 2, "image_size": 28, "patch_size": 14, "vision_output_dim": 64,
                   "intermediate_layers_indices": [0]},
    image_token_index=tok.convert_tokens_to_ids("<|image|>"),
).save_pretrained(out)
(out / "model.safetensors").write_bytes(b"")  # for ptsdk's preflight; the check loads no weights
"""


@pytest.fixture(scope="module")
def tiny_mllama(verl_env, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("mllama") / "tiny-mllama"
    subprocess.run(
        [verl_env.python, "-c", TINY_MLLAMA, str(out), str(EXAMPLES)], check=True, capture_output=True, timeout=300
    )
    return out


def pictures(folder: Path) -> Path:
    shutil.copytree(EXAMPLES / "data" / "images", folder / "images", dirs_exist_ok=True)
    return folder / "images"


#: Records in every form the spec allows: string contents (the picture before the text), {type: image} parts filled
#: from the images column (two pictures, one between two texts), and parts that name their file (no column).
MIXED = [
    {"prompt": [{"role": "user", "content": QUESTION}], "images": ["images/00_red.png"], "ground_truth": "red"},
    {
        "prompt": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Left: "},
                    {"type": "image"},
                    {"type": "text", "text": " right: "},
                    {"type": "image"},
                ],
            }
        ],
        "images": ["images/01_green.png", "images/02_blue.png"],
        "ground_truth": "green",
    },
    {
        "prompt": [
            {
                "role": "user",
                "content": [{"type": "image", "path": "images/02_blue.png"}, {"type": "text", "text": QUESTION}],
            }
        ],
        "ground_truth": "blue",
    },
]


def job_file(folder: Path, name: str, model: Path, records: list[dict] | None = None, **sections: Any) -> Path:
    """An RL job with images on one GPU over the bundled picture prompts (or `records`), bf16."""
    pictures(folder)
    data = folder / f"{name}.jsonl"
    if records is None:
        shutil.copy(EXAMPLES / "data" / "vlm_rl.jsonl", data)
    else:
        data.write_text("".join(json.dumps(r) + "\n" for r in records))
    job: dict[str, Any] = {
        "method": {
            "name": "grpo",
            "num_generations": 4,
            "max_prompt_length": 32,
            "max_completion_length": 4,
            "rewards": [REWARD],
        },
        "model": {"name_or_path": str(model)},
        "adapter": {"type": "full"},
        "data": {"train": {"path": str(data)}, "images": {}},
        "distributed": {"device": "gpu", "gpus_per_node": 1},
        "training": {"global_batch_size": 8, "micro_batch_size": 4, "max_steps": 2, "precision": "bf16"},
    }
    for key, value in sections.items():
        job[key] = {**job.get(key, {}), **value}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def check(backend: Any, jobs: dict[str, Path], *, checked: bool = True) -> dict[str, dict[str, Any]]:
    """Each job translated (after ptsdk's checks unless `checked` is false) and checked by the framework, all in
    one harness call: name -> the framework's result with the plan."""
    requests, plans = [], {}
    for name, path in jobs.items():
        job = load_checked(path, backend.name)[0] if checked else load_job(path)
        plans[name] = plan = backend.translate(job)
        workdir = Path(tempfile.mkdtemp(prefix=f"{backend.name}-{name}-", dir=path.parent))
        write_plan(plan, workdir)
        requests.append(backend.check_request(plan, workdir))
    return {n: {**r, "plan": plans[n]} for n, r in zip(jobs, backend.run_check(requests), strict=True)}


@pytest.mark.openrlhf
def test_openrlhf_images_pass_its_parser_dataset_and_processor(openrlhf_env, tiny_vlm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "jobs"
    folder.mkdir()
    jobs = {
        "grpo": job_file(folder, "grpo", tiny_vlm),
        "rloo_mixed": job_file(folder, "rloo_mixed", tiny_vlm, MIXED, method={"name": "rloo"}),
        "reinforce_pp_mixed": job_file(folder, "reinforce_pp_mixed", tiny_vlm, MIXED, method={"name": "reinforce_pp"}),
        # 21 tokens with the picture's 4: OpenRLHF refuses to cut a VLM prompt (agent.py:227-233).
        "short_prompt": job_file(folder, "short_prompt", tiny_vlm, method={"max_prompt_length": 16}),
    }
    verdicts = check(OpenRLHFBackend(), jobs)
    # PPO's critic with images: ptsdk's matrix refuses it, and so do OpenRLHF's own checks after parsing.
    ppo = job_file(
        folder, "ppo", tiny_vlm, method={"name": "ppo", "num_generations": 1}, training={"global_batch_size": 4}
    )
    verdicts.update(check(OpenRLHFBackend(), {"ppo": ppo}, checked=False))

    for name in ("grpo", "rloo_mixed", "reinforce_pp_mixed"):
        v = verdicts[name]
        assert v["ok"], f"{name}: {v['errors']}"
        assert v["parsed"] and v["train_asserts"] > 0
        assert {"--data.image_key", "--data.max_images_per_prompt"} <= set(v["plan"].args), name
        assert any("prompts tokenized with their images by OpenRLHF's processor" in n for n in v["notes"]), name
    first = verdicts["grpo"]["images"]["first_prompt"]
    assert first["prompt"] == RENDERED and first["images"] == [str(folder / "images" / "00_red.png")]
    assert first["image_tokens"] == IMAGE_TOKENS and first["mm_inputs"] == {"pixel_values": [1, 3, 28, 28]}
    assert verdicts["grpo"]["images"]["longest_prompt"] <= verdicts["grpo"]["images"]["budget"] == 32
    assert verdicts["grpo"]["prepared"]["reward_sample"]["rewards"] == [1.0]  # the colour reward on "red"
    # Every prepared record went through the processor: the two-picture record has 8 image tokens in its longest.
    mixed = verdicts["rloo_mixed"]["images"]
    assert mixed["rows"] == 4 and mixed["longest_prompt"] > first["tokens"]

    errors = verdicts["short_prompt"]["errors"]
    assert errors and all(e.startswith("method.max_prompt_length: prepared record ") for e in errors), errors
    assert f"prompt is {first['tokens']} tokens with its images" in errors[0]
    assert "OpenRLHF refuses to cut a VLM prompt (openrlhf/utils/agent.py:227-233)" in errors[0]
    assert any("VLM training does not support critic model" in e for e in verdicts["ppo"]["errors"])


@pytest.mark.verl
def test_verl_builds_image_rows_and_names_what_it_lacks(verl_env, tiny_vlm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """vERL's own code on the converted rows: Hydra takes data.image_key, RLHFDataset expands every <image> into an
    image part with the row's file, in order, and the reward scores the first row. What vERL cannot do here is
    named: its hf_processor does not load the tiny LLaVA's LlavaProcessor (ptsdk refuses that model before launch,
    so the job is loaded past that check), and its image reader qwen_vl_utils (with torchvision) is not in ptsdk's
    vERL environment."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    jobs = {
        "grpo": job_file(folder, "grpo", tiny_vlm),
        "ppo_mixed": job_file(
            folder,
            "ppo_mixed",
            tiny_vlm,
            MIXED,
            method={"name": "ppo", "num_generations": 1},
            training={"global_batch_size": 4},
        ),
    }
    with pytest.raises(UnsupportedError) as refused:
        load_checked(jobs["grpo"], "verl")
    assert any("vERL 0.9.1 loads only" in line and "a LlavaProcessor" in line for line in refused.value.lines)
    verdicts = check(VerlBackend(), jobs, checked=False)
    images = folder / "images"
    for name, v in verdicts.items():
        assert "data.image_key=images" in v["plan"].args, name
        assert v["images"]["verl_processor"] is None and v["images"]["processor"] == "LlavaProcessor"
        expected = [e for e in v["errors"] if not e.startswith(("model.name_or_path: ", "data.images: "))]
        assert expected == [], f"{name}: {v['errors']}"  # the config, the data and the reward pass
        assert any(
            e.startswith("model.name_or_path: vERL's hf_processor does not load LlavaProcessor") for e in v["errors"]
        )
        missing = v["images"]["missing_packages"]
        assert set(missing) <= {"qwen_vl_utils", "torchvision"}
        assert any("lacks qwen_vl_utils" in e for e in v["errors"]) == ("qwen_vl_utils" in missing), v["errors"]
    grpo = verdicts["grpo"]
    assert grpo["dataset_rows"] == grpo["rows"]["train"] == 16
    assert grpo["first_prompt"] == [{"role": "user", "content": "<image>" + QUESTION}]
    assert grpo["first_raw_prompt"] == [
        {
            "role": "user",
            "content": [{"type": "image", "image": str(images / "00_red.png")}, {"type": "text", "text": QUESTION}],
        }
    ]
    assert grpo["sample_scores"]["ground_truth"] == 1.0
    # PPO's rows (vERL has a critic with images): the first row is the string-content record; every row was built.
    ppo = verdicts["ppo_mixed"]
    assert ppo["dataset_rows"] == 3 and ppo["first_raw_prompt"][0]["content"][0]["image"] == str(images / "00_red.png")


@pytest.mark.verl
def test_verl_takes_a_processor_it_loads_but_not_without_its_image_reader(verl_env, tiny_mllama, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A model whose processor vERL loads (a tiny Mllama): ptsdk's checks pass, vERL's hf_processor returns it, its
    RLHFDataset builds every row with it and build_multimodal_processor_inputs tokenizes the first prompt with its
    picture; what is left is the image reader vERL's rollouts need (qwen_vl_utils, torchvision), which ptsdk's vERL
    environment lacks: the check fails naming it, so the capability stays declared."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    path = job_file(folder, "grpo_mllama", tiny_mllama, MIXED)
    v = check(VerlBackend(), {"grpo_mllama": path})["grpo_mllama"]  # past ptsdk's matrix and static checks
    assert v["images"]["verl_processor"] == "MllamaProcessor" and v["images"]["loaded_by_verl"]
    assert v["dataset_rows"] == 3 and v["sample_scores"]["ground_truth"] == 1.0
    first = v["first_prompt_inputs"]
    assert first["text"] == "<|user|>\n<|image|>What color is it?<|end|>\n<|assistant|>\n"
    assert first["tokens"] > 0 and first["mm_inputs"]["pixel_values"][:3] == [1, 1, 4]
    missing = v["images"]["missing_packages"]
    if missing:
        assert len(v["errors"]) == 1 and v["errors"][0].startswith(
            "data.images: vERL reads every image with qwen_vl_utils"
        )
        assert not v["ok"]
    else:
        assert v["ok"], v["errors"]
