"""Backend tests run the real framework in its environment; they never mock it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from ptsdk.rundir import RunDir

REQUIRED = {b.strip() for b in os.environ.get("PTSDK_REQUIRE_BACKENDS", "").split(",") if b.strip()}


def backend_env(name: str):  # type: ignore[no-untyped-def]
    from ptsdk.plugins.manager import get_backend

    env = get_backend(name)().env
    if env.python is None:
        if name in REQUIRED:
            pytest.fail(
                f"PTSDK_REQUIRE_BACKENDS names {name}, but its environment is missing (ptsdk env create {name})"
            )
        pytest.skip(f"{name} environment not available (ptsdk env create {name})")
    return env


@pytest.fixture(scope="session")
def trl_env():  # type: ignore[no-untyped-def]
    return backend_env("trl")


@pytest.fixture(scope="session")
def axolotl_env():  # type: ignore[no-untyped-def]
    return backend_env("axolotl")


@pytest.fixture(scope="session")
def verl_env():  # type: ignore[no-untyped-def]
    return backend_env("verl")


@pytest.fixture(scope="session")
def openrlhf_env():  # type: ignore[no-untyped-def]
    return backend_env("openrlhf")


def build_tiny_model(python: str, folder: Path) -> Path:
    """The example's tiny Llama (and its -lora-init adapter), built with that interpreter's own transformers."""
    out = folder / "tiny-model"
    subprocess.run(
        [python, str(EXAMPLES / "make_tiny_model.py"), str(out)], check=True, capture_output=True, timeout=300
    )
    return out


@pytest.fixture(scope="session")
def verl_model(verl_env, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return build_tiny_model(verl_env.python, tmp_path_factory.mktemp("verl-model"))


@pytest.fixture(scope="session")
def tiny_model(trl_env, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return build_tiny_model(trl_env.python, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def tiny_vlm(trl_env, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The image examples' tiny LLaVA and its processor (examples/make_tiny_vlm.py), built in the TRL env."""
    out = tmp_path_factory.mktemp("vlm") / "tiny-vlm"
    subprocess.run(
        [trl_env.python, str(EXAMPLES / "make_tiny_vlm.py"), str(out)], check=True, capture_output=True, timeout=300
    )
    return out


@pytest.fixture
def example_job(tmp_path: Path, tiny_model: Path):  # type: ignore[no-untyped-def]
    """An example job pointed at the test's tiny model, with overrides merged in."""

    def make(name: str, as_name: str | None = None, **overrides: dict) -> Path:
        data = yaml.safe_load((EXAMPLES / "jobs" / name).read_text())
        data["model"]["name_or_path"] = str(tiny_model)
        for path in ("train", "eval"):
            if path in data["data"]:
                data["data"][path]["path"] = str((EXAMPLES / "jobs" / data["data"][path]["path"]).resolve())
        if data.get("adapter", {}).get("init_path"):
            data["adapter"]["init_path"] = str(tiny_model.with_name(tiny_model.name + "-lora-init"))
        if "rewards" in data["method"]:
            data["method"]["rewards"] = [
                str((EXAMPLES / "jobs" / r.split(":")[0]).resolve()) + ":" + r.split(":")[1]
                for r in data["method"]["rewards"]
            ]
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict) and not {"name", "type"} & set(value):
                data[key].update(value)
            else:
                data[key] = value
        path = tmp_path / f"{as_name or Path(name).stem}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return make


def read_run(run_dir: Path) -> tuple[dict, list[dict]]:
    manifest = json.loads((run_dir / RunDir.MANIFEST).read_text())
    metrics = [json.loads(line) for line in (run_dir / RunDir.METRICS).read_text().splitlines()]
    return manifest, metrics


def run_on(ptsdk, backend: str, job: Path, run_dir: Path) -> tuple[dict, list[dict]]:  # type: ignore[no-untyped-def]
    """`ptsdk run` for real; on failure the assertion shows the framework's log tail."""
    r = ptsdk("run", str(job), "--backend", backend, "--run-dir", str(run_dir), "--quiet")
    log = (run_dir / RunDir.LOG).read_text() if (run_dir / RunDir.LOG).exists() else ""
    assert r.code == 0, r.err + log[-3000:]
    return read_run(run_dir)


def trained(
    manifest: dict, metrics: list[dict], steps: int, *, framework: tuple[str, str], loss: bool = True
) -> list[dict]:
    """The run succeeded with the pinned framework, logged every step, and the losses are finite."""
    import math

    assert manifest["status"] == "succeeded" and manifest["exit_code"] == 0
    assert manifest["environment"]["versions"][framework[0]] == framework[1]
    train = [m for m in metrics if m["kind"] == "train"]
    assert [m["step"] for m in train] == list(range(1, steps + 1))
    if loss:
        assert all(m["loss"] is not None and math.isfinite(m["loss"]) for m in train)
    return train


#: A quantized base on a CPU (bitsandbytes 0.50's CPU kernels): (model.quantization, adapter.type, the layer class).
QUANTIZED_ON_CPU = pytest.mark.parametrize(
    ("quantization", "adapter", "layer"), [("4bit", "qlora", "Linear4bit"), ("8bit", "lora", "Linear8bitLt")]
)


def quantized_sft_job(example_job, quantization: str, adapter: str) -> Path:  # type: ignore[no-untyped-def]
    """The SFT example on a `quantization` base with an `adapter`, 4 steps, the dtype left to the checkpoint (auto)."""
    return example_job(
        "sft_lora.yaml",
        adapter={"type": adapter, "r": 8, "alpha": 16, "dropout": 0.0},
        model={"quantization": quantization, "dtype": "auto"},
        training={"max_steps": 4, "warmup_ratio": 0.0},
    )


def assert_trained_quantized(run_dir: Path, train: list[dict], layer: str) -> None:
    """The loss fell, and the model trained held the tiny model's 14 linear layers as bitsandbytes `layer`s
    (logs/model.json, ptsdk_runtime.note_model) under a small adapter, which was saved."""
    assert train[-1]["loss"] < train[0]["loss"], [m["loss"] for m in train]
    model = json.loads((run_dir / "logs" / "model.json").read_text())
    assert model["bitsandbytes_layers"] == {layer: 14} and 0 < model["trainable_parameters"] < 20_000, model
    assert (run_dir / "model" / "adapter_model.safetensors").exists()


def assert_loads(env, model_dir: Path, *, adapter: bool) -> None:  # type: ignore[no-untyped-def]
    """The saved model or adapter loads again in the framework's environment and runs a forward pass."""
    code = (
        "import sys, torch\n"
        "from transformers import AutoTokenizer\n"
        + (
            "from peft import AutoPeftModelForCausalLM as M\n"
            if adapter
            else "from transformers import AutoModelForCausalLM as M\n"
        )
        + "m = M.from_pretrained(sys.argv[1]); t = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "out = m(**t('What is 1 + 2?', return_tensors='pt'))\n"
        "assert torch.isfinite(out.logits).all(); print('LOADED', type(m).__name__)\n"
    )
    proc = subprocess.run([env.python, "-c", code, str(model_dir)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "LOADED" in proc.stdout, proc.stderr[-2000:]
    assert (model_dir / ("adapter_model.safetensors" if adapter else "model.safetensors")).exists()


def assert_vlm_learned(env, model_dir: Path, base_dir: Path, image: Path, *, adapter: bool = False) -> None:  # type: ignore[no-untyped-def]
    """The saved vision-language model (or LoRA adapter on base_dir) loads again with its processor and reads an
    image; its vision tower moved from the starting weights, so the images reached the loss (a text-only run
    leaves it untouched)."""
    code = (
        "import sys, torch\n"
        "from PIL import Image\n"
        "from transformers import AutoModelForImageTextToText as M, AutoProcessor\n"
        "p = AutoProcessor.from_pretrained(sys.argv[1]); base = M.from_pretrained(sys.argv[2])\n"
        "start = {n: w.clone() for n, w in base.model.vision_tower.named_parameters()}\n"
        + (
            "from peft import PeftModel\nm = PeftModel.from_pretrained(base, sys.argv[1]).merge_and_unload()\n"
            if adapter
            else "m = M.from_pretrained(sys.argv[1])\n"
        )
        + "turn = {'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'Hi'}]}\n"
        "text = p.apply_chat_template([turn], add_generation_prompt=True)\n"
        "out = m(**p(images=[Image.open(sys.argv[3])], text=text, return_tensors='pt'))\n"
        "assert torch.isfinite(out.logits).all()\n"
        "moved = [n for n, w in m.model.vision_tower.named_parameters() if not torch.equal(w, start[n])]\n"
        "assert moved, 'the vision tower did not change'\n"
        "print('LOADED', type(m).__name__, type(p).__name__, len(moved))\n"
    )
    proc = subprocess.run(
        [env.python, "-c", code, str(model_dir), str(base_dir), str(image)], capture_output=True, text=True, timeout=300
    )
    loaded = "LOADED LlavaForConditionalGeneration LlavaProcessor"
    assert proc.returncode == 0 and loaded in proc.stdout, proc.stderr[-2000:]
    assert (model_dir / "processor_config.json").exists()
    assert (model_dir / ("adapter_model.safetensors" if adapter else "model.safetensors")).exists()


def dataset_with_configs(folder: Path, configs: dict[str, list[dict]]) -> Path:
    """A local dataset folder with several configurations, as a hub dataset declares them in its README (what
    `datasets.load_dataset(folder, name)` reads offline): configs[name] are the records of that configuration's
    train split, in NAME/train.jsonl. No configuration is the default: a loader must be told which."""
    for name, rows in configs.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    entries = "".join(
        f"- config_name: {n}\n  data_files:\n  - split: train\n    path: {n}/train.jsonl\n" for n in configs
    )
    (folder / "README.md").write_text(f"---\nconfigs:\n{entries}---\n")
    return folder


def natively_rejected(backend: Any, jobs: dict[str, dict], folder: Path, **run_check: Any) -> dict[str, Any]:
    """Each job (name -> job mapping) written to FOLDER/NAME.yaml, loaded and checked as `ptsdk run` would,
    translated, and checked by the framework in one harness batch: name -> the framework's errors for every job
    it rejected (empty: all accepted)."""
    import tempfile

    from ptsdk.pipeline import load_checked
    from ptsdk.rundir import write_plan

    requests = []
    for name, job in jobs.items():
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(job, sort_keys=False))
        checked, _ = load_checked(path, backend.name)
        plan = backend.translate(checked)
        workdir = Path(tempfile.mkdtemp(prefix=f"{backend.name}-{name}-", dir=folder))
        write_plan(plan, workdir)
        requests.append(backend.check_request(plan, workdir))
    results = backend.run_check(requests, **run_check)
    return {name: r.get("errors") for name, r in zip(jobs, results, strict=True) if not r["ok"]}


def assert_warm_start_matches_cold(backend: str, job: Path, tmp_path: Path) -> None:
    """The `ptsdk` command (a process of its own, as users run it) with and without its warm start (ptsdk.warm):
    the warm run's first command was handed to an interpreter started before the run, and it trained the same
    weights with the same losses."""
    import os
    import sys

    runs = {}
    for name, switch in (("cold", "0"), ("warm", "1")):  # the cold run leaves the record the warm one starts from
        proc = subprocess.run(
            [sys.executable, "-m", "ptsdk", "run", str(job), "-b", backend, "--run-dir", str(tmp_path / name), "-q"],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PTSDK_WARM_START": switch},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = json.loads((tmp_path / name / "manifest.json").read_text())
    assert "warm_start" not in runs["cold"]["attempts"][-1]
    warm = runs["warm"]["attempts"][-1]["warm_start"]
    assert warm["lead_s"] > 0 and 0 < warm["imports_s"] < 120, warm  # it did import torch, before or after
    losses = {n: [m["loss"] for m in map(json.loads, (tmp_path / n / "metrics.jsonl").open())] for n in runs}
    assert len(losses["warm"]) >= 2 and losses["warm"] == losses["cold"]
    weights = [(tmp_path / n / "model" / "adapter_model.safetensors").read_bytes() for n in runs]
    assert weights[0] == weights[1]
