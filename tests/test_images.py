"""Images in the records (issue #18): the spec, preflight's image checks and who may run an image job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, fake_model
from ptsdk import preflight as pf
from ptsdk.backends.trl.backend import TRLBackend
from ptsdk.errors import SpecError
from ptsdk.matrix.check import KNOWN_KEYS, requirements_of
from ptsdk.spec import Job, load_job, validate_job

QUESTION = "What color is it?"
PARTS = [{"type": "image"}, {"type": "text", "text": QUESTION}]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf, "hub_reachable", lambda: False)


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    """The bundled images, copied beside the test's data files."""
    shutil.copytree(EXAMPLES / "data" / "images", tmp_path / "images")
    return tmp_path / "images"


def vlm(folder: Path, *, processor: bool = True, vision: bool = True) -> Path:
    model = fake_model(folder)
    (model / "config.json").write_text(json.dumps({"model_type": "llava", **({"vision_config": {}} if vision else {})}))
    if processor:
        (model / "processor_config.json").write_text("{}")
    return model


def chat(image: str = "images/00_red.png", content: Any = QUESTION, **extra: Any) -> dict[str, Any]:
    record = {"messages": [{"role": "user", "content": content}, {"role": "assistant", "content": "red"}]}
    return {**record, "images": [image], **extra}


def job_file(tmp_path: Path, records: list[Any], *, images: Any = None, model: Path | None = None, **data: Any) -> Path:
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    spec: dict[str, Any] = {
        "method": {"name": "sft"},
        "model": {"name_or_path": str(model or vlm(tmp_path / "vlm"))},
        "data": {"train": {"path": "train.jsonl"}, "format": "messages", **data},
        "distributed": {"device": "cpu"},
    }
    if images is not None:
        spec["data"]["images"] = images
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def problems(path: Path) -> list[str]:
    return pf.preflight_problems(load_job(path))


def one(path: Path) -> str:
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


# --- the spec ----------------------------------------------------------------------------------------------


def spec_errors(**images: Any) -> str:
    job = {"method": {"name": "sft"}, "model": {"name_or_path": "org/m"}, "data": {"train": {"path": "org/d"}}}
    job["data"]["images"] = images
    with pytest.raises(SpecError) as info:
        validate_job(job)
    return info.value.render()


def test_images_spec_defaults_and_strictness() -> None:
    job = validate_job(
        {
            "method": {"name": "sft"},
            "model": {"name_or_path": "org/m"},
            "data": {"train": {"path": "org/d"}, "images": {}},
        }
    )
    assert job.data.images is not None and (job.data.images.column, job.data.images.root) == ("images", None)
    assert "data.images.colour" in spec_errors(colour="x")
    assert "data.images.max_per_record" in spec_errors(max_per_record=65)
    assert "data.images.max_per_record" in spec_errors(max_per_record=0)
    assert "data.images.column" in spec_errors(column="")
    assert "data.images.column" in spec_errors(column="messages")


def test_instruction_records_cannot_hold_images() -> None:
    with pytest.raises(SpecError) as info:
        validate_job(
            {
                "method": {"name": "sft"},
                "model": {"name_or_path": "org/m"},
                "data": {"train": {"path": "org/d"}, "format": "instruction", "images": {}},
            }
        )
    assert "data.images: Alpaca instruction records" in info.value.render()


def test_images_root_resolves_against_the_job_file_and_must_exist(tmp_path: Path, pictures: Path) -> None:
    path = job_file(tmp_path, [chat(image="00_red.png")], images={"root": "images"})
    job = load_job(path)
    assert job.data.images is not None and job.data.images.root == str(pictures)
    assert pf.preflight_problems(job) == []
    path = job_file(tmp_path, [chat()], images={"root": "no-such-folder"})
    with pytest.raises(SpecError) as info:
        load_job(path)
    assert "data.images.root: no such folder" in info.value.render()


# --- preflight: records that pass ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vlm_sft.yaml", "vlm_dpo.yaml"])
def test_bundled_image_examples_pass(name: str, tmp_path: Path) -> None:
    data = yaml.safe_load((EXAMPLES / "jobs" / name).read_text())
    data["model"]["name_or_path"] = str(vlm(tmp_path / "vlm"))
    data["data"]["train"]["path"] = str((EXAMPLES / "jobs" / data["data"]["train"]["path"]).resolve())
    (tmp_path / name).write_text(yaml.safe_dump(data))
    report = pf.preflight(load_job(tmp_path / name))
    assert report.problems == [] and report.notes == []


def test_string_contents_and_image_parts_pass(tmp_path: Path, pictures: Path) -> None:
    """The images column with string contents or {type: image} placeholders, or parts that name their files."""
    records = [
        chat(),
        chat(content=PARTS),
        chat(content=[*PARTS, {"type": "image"}], images=["images/00_red.png", "images/01_green.png"]),
    ]
    path_parts = [{"type": "image", "path": "images/02_blue.png"}, {"type": "text", "text": QUESTION}]
    records.append({"messages": [{"role": "user", "content": path_parts}, {"role": "assistant", "content": "blue"}]})
    assert problems(job_file(tmp_path, records, images={})) == []


# --- preflight: what it refuses ------------------------------------------------------------------------------


def test_an_images_column_is_not_silently_ignored(tmp_path: Path, pictures: Path) -> None:
    """Without data.images every framework would drop the column and train on the text alone."""
    line = one(job_file(tmp_path, [chat()] * 3, model=fake_model(tmp_path / "text-model")))
    assert line.startswith("data.train.path: lines 1, 2, 3: records have an 'images' column")
    assert "set data.images: {column: images}" in line


def test_image_parts_in_a_text_only_job(tmp_path: Path, pictures: Path) -> None:
    record = {"messages": [{"role": "user", "content": PARTS}, {"role": "assistant", "content": "red"}]}
    line = one(job_file(tmp_path, [record], model=fake_model(tmp_path / "text-model")))
    assert "messages[0].content must be a string, got a list; a job with image parts sets data.images" in line


@pytest.mark.parametrize(
    ("record", "expect"),
    [
        (chat(image="images/missing.png"), "image images/missing.png ("),
        (chat(images=[]), "images (data.images.column) is an empty list"),
        (
            chat(images="images/00_red.png"),
            "images (data.images.column) must be a list of image file paths, got a string",
        ),
        (chat(images=[1]), "must be a list of image file paths (non-empty strings)"),
        (chat(images=["images/00_red.png"] * 9), "the record holds 9 images, more than data.images.max_per_record=8"),
        (
            chat(content=[*PARTS, {"type": "image"}]),
            "the messages hold 2 image parts but images (data.images.column) lists 1 image",
        ),
        (
            chat(content=[{"type": "image", "path": "images/00_red.png"}]),
            "image parts name their files ({type: image, path: ...}) but images (data.images.column) lists files too",
        ),
        (
            chat(content=[{"type": "image", "url": "http://x/a.png"}]),
            "messages[0].content[0] is an image part with url; an image part is {type: image, path: FILE}",
        ),
        (
            chat(content=[{"type": "image", "path": "images/nope.png"}], images=None),
            "image images/nope.png (",
        ),
        (chat(content=[{"type": "video"}]), "messages[0].content[0] must be {type: text, text: ...} or {type: image}"),
        (chat(content=[]), "messages[0].content is an empty list of parts"),
    ],
    ids=[
        "missing",
        "empty",
        "string",
        "number",
        "too-many",
        "count",
        "path-and-column",
        "url",
        "path-missing",
        "video",
        "no-parts",
    ],
)
def test_bad_image_records_are_named(tmp_path: Path, pictures: Path, record: dict, expect: str) -> None:
    line = one(job_file(tmp_path, [record], images={}))
    assert line.startswith("data.train.path: line 1: ") and expect in line, line


def test_missing_images_column(tmp_path: Path) -> None:
    line = one(job_file(tmp_path, [{"messages": chat()["messages"], "pics": ["a.png"]}], images={}))
    assert "records have no 'images' column (data.images.column) and no image parts with a path" in line


def test_unreadable_images_are_named_before_launch(tmp_path: Path, pictures: Path) -> None:
    (pictures / "text.png").write_text("not a picture")
    png = (pictures / "00_red.png").read_bytes()
    (pictures / "cut.png").write_bytes(png[: len(png) // 2])
    (pictures / "folder.png").mkdir()
    records = [chat(image=f"images/{name}") for name in ("text.png", "cut.png", "folder.png", "00_red.png")]
    found = problems(job_file(tmp_path, records, images={}))
    assert len(found) == 3, found
    assert "line 1: image images/text.png" in found[0] and "not an image file PIL can read" in found[0]
    assert "line 2: image images/cut.png" in found[1] and "cannot be read" in found[1]
    assert "line 3: image images/folder.png" in found[2] and "no such file" in found[2]


def test_each_image_is_opened_once_and_within_the_time_budget(
    tmp_path: Path, pictures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [chat(image=f"images/{p.name}") for p in sorted(pictures.iterdir())] * 50
    path = job_file(tmp_path, records, images={})
    opened: list[str] = []
    real = pf._image_problem

    def counting(ref: str, where: Path) -> str | None:
        opened.append(ref)
        return real(ref, where)

    monkeypatch.setattr(pf, "_image_problem", counting)
    assert problems(path) == []
    assert sorted(opened) == sorted(f"images/{p.name}" for p in pictures.iterdir())
    opened.clear()
    report = pf.preflight(load_job(path), budget_s=0)
    assert report.problems == [] and len(opened) <= 1
    assert any("stopped there (time limit)" in note for note in report.notes), report.notes


def test_rl_prompts_with_images_must_be_messages(tmp_path: Path, pictures: Path) -> None:
    (tmp_path / "train.jsonl").write_text(json.dumps({"prompt": QUESTION, "images": ["images/00_red.png"]}) + "\n")
    (tmp_path / "r.py").write_text("def r(completions, **kwargs):\n    return [0.0] * len(completions)\n")
    spec = {
        "method": {"name": "grpo", "num_generations": 2, "rewards": ["r.py:r"]},
        "model": {"name_or_path": str(vlm(tmp_path / "vlm"))},
        "data": {"train": {"path": "train.jsonl"}, "images": {}},
        "training": {"global_batch_size": 2, "micro_batch_size": 2},
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    assert "prompt must be a list of {role, content} messages in a job with images" in one(tmp_path / "job.yaml")


def test_a_parquet_images_column(tmp_path: Path, pictures: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [chat(), chat(image="images/nope.png")]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    path = job_file(tmp_path, [], images={})
    data = yaml.safe_load(path.read_text())
    data["data"]["train"]["path"] = "train.parquet"
    path.write_text(yaml.safe_dump(data))
    line = one(path)
    assert line.startswith("data.train.path: row 2: image images/nope.png"), line


@pytest.mark.parametrize(
    ("model", "expect"),
    [
        ({"processor": False}, "holds no image processor (processor_config.json or preprocessor_config.json)"),
        ({"vision": False}, "config.json describes a text model (llava, no vision_config)"),
    ],
)
def test_the_model_must_see_images(tmp_path: Path, pictures: Path, model: dict, expect: str) -> None:
    line = one(job_file(tmp_path, [chat()], images={}, model=vlm(tmp_path / "m", **model)))
    assert line.startswith("model.name_or_path: ") and expect in line


# --- who may run it ----------------------------------------------------------------------------------------


def test_images_are_a_capability_per_method(tmp_path: Path, pictures: Path) -> None:
    job: Job = load_job(job_file(tmp_path, [chat()], images={}))
    assert ("feature", "images:sft") in {r.key for r in requirements_of(job)}
    assert {("feature", f"images:{m}") for m in ("sft", "dpo", "grpo", "ppo")} <= KNOWN_KEYS


def preference_job(tmp_path: Path) -> Path:
    turn = [{"role": "user", "content": QUESTION}]
    record = {"prompt": turn, "chosen": [{"role": "assistant", "content": "red"}], "images": ["images/00_red.png"]}
    record["rejected"] = [{"role": "assistant", "content": "blue"}]
    path = job_file(tmp_path, [record], images={}, format="preference")
    spec = yaml.safe_load(path.read_text())
    spec["method"] = {"name": "dpo"}
    path.write_text(yaml.safe_dump(spec))
    return path


def test_validate_refuses_an_image_job_where_the_backend_cannot_run_it(ptsdk, tmp_path: Path, pictures: Path) -> None:
    """Axolotl trains images with SFT only: its RL builder takes no processor."""
    path = preference_job(tmp_path)
    r = ptsdk("validate", str(path), "--backend", "axolotl")
    assert r.code == 2 and "Traceback" not in r.err
    assert "data.images: axolotl cannot run images in dpo records; backends that can: trl" in r.err
    assert ptsdk("validate", str(path), "--backend", "trl").code == 0


def test_validate_names_a_missing_image_without_a_traceback(ptsdk, tmp_path: Path, pictures: Path) -> None:
    r = ptsdk("validate", str(job_file(tmp_path, [chat(image="images/gone.png")], images={})), "--backend", "trl")
    assert r.code == 2 and "Traceback" not in r.err
    assert "data.train.path: line 1: image images/gone.png" in r.err and "no such file" in r.err


def test_trl_translation_and_refusals(tmp_path: Path, pictures: Path) -> None:
    job = load_job(job_file(tmp_path, [chat()], images={}))
    cfg = yaml.safe_load(next(f.content for f in TRLBackend().translate(job).files if f.path == "trl_config.yaml"))
    assert cfg["images"] is True and "rename_columns" not in cfg and "images_root" not in cfg

    renamed = [{"messages": chat()["messages"], "pictures": ["00_red.png"]}]
    job = load_job(job_file(tmp_path, renamed, images={"column": "pictures", "root": "images"}))
    assert pf.preflight_problems(job) == []
    cfg = yaml.safe_load(next(f.content for f in TRLBackend().translate(job).files if f.path == "trl_config.yaml"))
    assert cfg["rename_columns"] == ["pictures=images"] and cfg["images_root"] == str(pictures)

    job = load_job(job_file(tmp_path, [chat()], images={}))
    job.training.packing = True
    assert any(
        "training.packing: TRL 1.16.0 does not pack image records" in p for p in TRLBackend().static_problems(job)
    )


def test_axolotl_translation_and_refusals(tmp_path: Path, pictures: Path) -> None:
    """An image SFT job on Axolotl: the processor settings, the converted records as its datasets and the
    conversion as a prepare command; chat records only, no packing."""
    from ptsdk.backends.axolotl.backend import AxolotlBackend

    shared = {"message_keys": {"role": "from", "content": "value"}, "role_names": {"human": "user", "gpt": "assistant"}}
    record = {
        "messages": [{"from": "human", "value": QUESTION}, {"from": "gpt", "value": "red"}],
        "images": ["images/00_red.png"],
    }
    job = load_job(job_file(tmp_path, [record], images={}, **shared))
    assert pf.preflight_problems(job) == [] and AxolotlBackend().static_problems(job) == []
    plan = AxolotlBackend().translate(job)
    cfg = yaml.safe_load(plan.file("axolotl_config.yaml").content or "")
    assert cfg["processor_type"] == "AutoProcessor" and cfg["skip_prepare_dataset"] is True
    assert cfg["remove_unused_columns"] is False and cfg["sample_packing"] is False
    (entry,) = cfg["datasets"]
    assert entry["path"] == "data/train.jsonl" and entry["field_messages"] == "messages"
    assert "message_property_mappings" not in entry and "roles" not in entry  # the converted records are canonical
    spec = json.loads(plan.file("axolotl_images.json").content or "")
    assert spec["splits"]["train"] == {
        "path": str(tmp_path / "train.jsonl"),
        "max_samples": None,
        "out": "data/train.jsonl",
    }
    assert spec["message_keys"] == shared["message_keys"] and spec["role_names"] == shared["role_names"]
    assert [c.argv[1:] for c in plan.prepare] == [["axolotl_images.py", "axolotl_images.json"]]
    job.data.train.max_samples = 1  # the conversion keeps that many records: nothing is dropped
    plan = AxolotlBackend().translate(job)
    assert json.loads(plan.file("axolotl_images.json").content or "")["splits"]["train"]["max_samples"] == 1
    assert not [n for n in plan.notes if n.field == "data.train.max_samples"]

    job.training.packing = True
    assert any(
        p.startswith("training.packing: Axolotl 0.19 does not pack image records")
        for p in AxolotlBackend().static_problems(job)
    )
    pairs = [{"prompt": QUESTION, "completion": "red", "images": ["images/00_red.png"]}]
    job = load_job(job_file(tmp_path, pairs, images={}, format="prompt_completion"))
    assert any(
        p.startswith("data.format: Axolotl 0.19 reads images from chat records only")
        for p in AxolotlBackend().static_problems(job)
    )


def test_axolotl_image_records_are_converted_where_the_spec_places_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """axolotl_images.py (run in the run directory, beside ptsdk_runtime.py): a string content gets the record's
    images before its text, placeholders are filled in order, path parts are made absolute; a record whose
    placeholders outnumber its files, a line that is not JSON and a record without messages are named by line and
    nothing is written."""
    import importlib.util
    import sys

    from ptsdk.plugins import runtime

    monkeypatch.setitem(sys.modules, "ptsdk_runtime", runtime)
    script = Path(__file__).parents[1] / "backends" / "axolotl" / "axolotl_images.py"
    loader = importlib.util.spec_from_file_location("axolotl_images", script)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    user = lambda content: [{"role": "user", "content": content}, {"role": "assistant", "content": "red"}]  # noqa: E731
    records = [
        {"messages": user("two?"), "images": ["a.png", "b.png"]},
        {
            "messages": user([{"type": "text", "text": "x"}, {"type": "image"}, {"type": "image"}]),
            "images": ["a.png", "/abs/b.png"],
        },
        {"messages": user([{"type": "image", "path": "sub/c.png"}, {"type": "text", "text": "y"}])},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    spec = {
        "messages": "messages",
        "images": "images",
        "folder": None,
        "splits": {"train": {"path": str(tmp_path / "in.jsonl"), "out": "data/train.jsonl"}},
    }
    assert module.convert(spec) == []
    rows = [
        json.loads(line)["messages"][0]["content"]
        for line in (tmp_path / "data" / "train.jsonl").read_text().splitlines()
    ]
    image = lambda name: {"type": "image", "path": name if name.startswith("/") else str(tmp_path / name)}  # noqa: E731
    assert rows[0] == [image("a.png"), image("b.png"), {"type": "text", "text": "two?"}]
    assert rows[1] == [{"type": "text", "text": "x"}, image("a.png"), image("/abs/b.png")]
    assert rows[2] == [image("sub/c.png"), {"type": "text", "text": "y"}]

    bad = [{"messages": user([{"type": "image"}, {"type": "image"}]), "images": ["a.png"]}, "not json", {"text": "x"}]
    (tmp_path / "bad.jsonl").write_text("".join((b if isinstance(b, str) else json.dumps(b)) + "\n" for b in bad))
    spec["splits"] = {"train": {"path": str(tmp_path / "bad.jsonl"), "out": "data/bad.jsonl"}}
    found = module.convert(spec)
    assert found[0] == "data.train.path: line 1: more {type: image} parts than files in the images column"
    assert (
        found[1].startswith("data.train.path: line 2: not JSON")
        and found[2] == "data.train.path: line 3: no messages list"
    )
    assert not (tmp_path / "data" / "bad.jsonl").exists() and not (tmp_path / "data" / "bad.jsonl.partial").exists()
