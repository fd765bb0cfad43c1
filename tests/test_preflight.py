"""Preflight: bad data and models are named before anything launches (issue #13)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ptsdk import preflight as pf
from ptsdk.spec import Job, load_job

ROOT = Path(__file__).resolve().parents[1]


def _examples_copy() -> Path:
    """The bundled jobs and data beside a stand-in tiny model and adapter: the real ones are built by the
    backend tests (with torch), and a clean checkout has neither."""
    from conftest import fake_model

    real = ROOT / "examples"
    root = Path(tempfile.mkdtemp(prefix="ptsdk-preflight-")) / "examples"
    shutil.copytree(real / "jobs", root / "jobs")
    shutil.copytree(real / "data", root / "data")
    shutil.copy(real / "rewards.py", root / "rewards.py")
    model = fake_model(root / "tiny-model")
    (model / "tokenizer_config.json").write_text("{}")
    (model / "generation_config.json").write_text("{}")
    vlm = fake_model(root / "tiny-vlm")  # the image examples' model: a vision config and a processor
    (vlm / "config.json").write_text(json.dumps({"model_type": "llava", "vision_config": {}}))
    (vlm / "processor_config.json").write_text("{}")
    adapter = root / "tiny-model-lora-init"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "../tiny-model"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    return root


EXAMPLES = _examples_copy()
TINY = EXAMPLES / "tiny-model"
FIXTURES = Path(__file__).resolve().parent / "data" / "preflight"
METHODS = {
    "sft": {"name": "sft"},
    "dpo": {"name": "dpo"},
    "kto": {"name": "kto"},
    "grpo": {"name": "grpo", "num_generations": 2, "rewards": ["rewards.py:r"]},
}


@pytest.fixture(autouse=True)
def _no_network_surprises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test starts with an empty Hugging Face cache, no offline variables and an unreachable hub."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache" / "hub"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache" / "datasets"))
    monkeypatch.setattr(pf, "hub_reachable", lambda: False)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def make_job(
    tmp_path: Path,
    train: str | Path,
    *,
    method: str = "sft",
    model: str | Path = TINY,
    eval: str | Path | None = None,
    check: bool = True,
    **data: Any,
) -> Job:
    """A job file beside the data (relative paths resolve there), loaded the way the CLI loads it."""
    (tmp_path / "rewards.py").write_text("def r(prompts, completions, **kwargs):\n    return [0.0] * len(prompts)\n")
    spec: dict[str, Any] = {
        "method": METHODS[method],
        "model": {"name_or_path": str(model)},
        "data": {"train": {"path": str(train)}, **data},
        "training": {"global_batch_size": 2, "micro_batch_size": 2, "max_steps": 1},
        "distributed": {"device": "cpu"},
    }
    if eval is not None:
        spec["data"]["eval"] = {"path": str(eval)}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_job(path, check_files=check)


def problems(job: Job, **kwargs: Any) -> list[str]:
    return pf.preflight_problems(job, **kwargs)


def one(job: Job, **kwargs: Any) -> str:
    found = problems(job, **kwargs)
    assert len(found) == 1, found
    return found[0]


SFT = [{"prompt": f"What is {i} + 1?", "completion": f" {i + 1}"} for i in range(20)]


# --- passing cases: the bundled examples ---------------------------------------------------------------


@pytest.mark.parametrize("job_file", sorted((EXAMPLES / "jobs").glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_examples_preflight_clean(job_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf, "hub_reachable", lambda: True)  # ppo.yaml names a hub model
    report = pf.preflight(load_job(job_file))
    assert report.problems == []
    assert report.notes == []


def test_bundled_hub_model_named_when_offline() -> None:
    line = one(load_job(EXAMPLES / "jobs" / "ppo.yaml"))
    assert line.startswith("model.name_or_path: 'Qwen/Qwen2.5-0.5B-Instruct' is not a local folder")
    assert "not in the Hugging Face cache" in line and "cannot be reached" in line
    assert "give a local folder" in line


def test_conversational_records_pass(tmp_path: Path) -> None:
    user = [{"role": "user", "content": "What is 1 + 1?"}]
    pref = [
        {
            "prompt": user,
            "chosen": [{"role": "assistant", "content": "2"}],
            "rejected": [{"role": "assistant", "content": "3"}],
        }
    ] * 4
    assert problems(make_job(tmp_path, write_jsonl(tmp_path / "p.jsonl", pref), method="dpo")) == []
    sft = [{"prompt": user, "completion": [{"role": "assistant", "content": "2"}]}] * 4
    assert problems(make_job(tmp_path, write_jsonl(tmp_path / "s.jsonl", sft))) == []


def test_sharegpt_messages_pass_with_message_keys_and_role_names(tmp_path: Path) -> None:
    convo = [{"conversations": [{"from": "human", "value": "1 + 1?"}, {"from": "gpt", "value": "2"}]}] * 4
    path = write_jsonl(tmp_path / "c.jsonl", convo)
    (line,) = problems(make_job(tmp_path, path, format="messages", columns={"messages": "conversations"}))
    assert "set data.message_keys: {role: from, content: value}" in line
    keys = {"role": "from", "content": "value"}
    (line,) = problems(
        make_job(tmp_path, path, format="messages", columns={"messages": "conversations"}, message_keys=keys)
    )
    assert "got 'human'; map it with data.role_names: {human: user}" in line
    roles = {"human": "user", "gpt": "assistant"}
    job = make_job(
        tmp_path, path, format="messages", columns={"messages": "conversations"}, message_keys=keys, role_names=roles
    )
    assert problems(job) == []


def test_prompt_embedded_in_chosen_and_rejected(tmp_path: Path) -> None:
    user = {"role": "user", "content": "1 + 1?"}
    pref = [
        {
            "chosen": [user, {"role": "assistant", "content": "2"}],
            "rejected": [user, {"role": "assistant", "content": "3"}],
        }
    ] * 4
    path = write_jsonl(tmp_path / "p.jsonl", pref)
    assert "no field 'prompt'" in one(make_job(tmp_path, path, method="dpo"))
    assert problems(make_job(tmp_path, path, method="dpo", prompt_in_answers=True)) == []
    # UltraFeedback-style: a text prompt column beside the conversations, unused with prompt_in_answers
    stray = write_jsonl(tmp_path / "u.jsonl", [{**r, "prompt": "1 + 1?"} for r in pref])
    assert problems(make_job(tmp_path, stray, method="dpo", prompt_in_answers=True)) == []


def test_columns_mapping_makes_renamed_columns_pass(tmp_path: Path) -> None:
    job = make_job(
        tmp_path, EXAMPLES / "data" / "qa_train.jsonl", columns={"prompt": "question", "completion": "answer"}
    )
    assert problems(job) == []


def test_max_samples_larger_than_the_file_is_fine(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", SFT[:3])
    spec = {"path": str(path), "max_samples": 1000}
    job = make_job(tmp_path, path)
    job.data.train = type(job.data.train).model_validate(spec)
    assert problems(job) == []


def test_rl_prompts_with_extra_columns_pass(tmp_path: Path) -> None:
    records = [{"prompt": "What is 1 + 1?", "ground_truth": 2, "difficulty": "easy"}] * 3
    assert problems(make_job(tmp_path, write_jsonl(tmp_path / "rl.jsonl", records), method="grpo")) == []


# --- empty and unreadable files ------------------------------------------------------------------------


def test_empty_data_file(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_bytes(b"")
    line = one(make_job(tmp_path, "train.jsonl"))
    assert line.startswith("data.train.path: ") and "is empty (0 bytes)" in line


def test_blank_lines_only(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("\n  \n\n")
    assert "holds only blank lines" in one(make_job(tmp_path, "train.jsonl"))


def test_data_path_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").mkdir()
    make_job(tmp_path, "train.jsonl", check=False)
    job = load_job(tmp_path / "job.yaml", check_files=False)  # load_job's own check says "no such file"
    assert "is a folder; point it at one .jsonl, .json or .parquet file" in one(job)


def test_data_folder_without_suffix_is_not_taken_for_a_hub_id(tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    job = make_job(tmp_path, "shards")
    assert "data.train.path: shards is a folder" in one(job, base=tmp_path)


def test_unreadable_data_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", SFT)
    job = make_job(tmp_path, path)
    real_open = Path.open

    def deny(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)  # chmod 000 does not stop root
    assert "cannot be read (permission denied)" in one(job)


def test_not_utf8(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", SFT[:3])
    with path.open("ab") as f:
        f.write('{"prompt": "caf\xe9", "completion": " x"}\n'.encode("latin-1"))
    line = one(make_job(tmp_path, path))
    assert "line 4: not UTF-8 text (byte 0xe9)" in line and "UTF-8 encoding" in line


def test_utf16(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(json.dumps(SFT[0]) + "\n", encoding="utf-16")
    assert "is UTF-16 text; save it with UTF-8 encoding" in one(make_job(tmp_path, "train.jsonl"))


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(SFT[0]).encode() + b"\n")
    assert problems(make_job(tmp_path, path)) == []


# --- not JSON Lines at all -----------------------------------------------------------------------------


def test_csv_content_in_a_jsonl_file(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("prompt,completion\nWhat is 1 + 1?,2\nWhat is 2 + 2?,4\n")
    line = one(make_job(tmp_path, "train.jsonl"))
    assert "holds CSV text (line 1: 'prompt,completion'), not JSON" in line
    assert "pd.read_csv('train.jsonl'" in line and "lines=True" in line


def test_pretty_printed_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(json.dumps(SFT[0], indent=2) + "\n" + json.dumps(SFT[1], indent=2) + "\n")
    line = one(make_job(tmp_path, "train.jsonl"))
    assert "holds JSON spread over several lines" in line and "json.dumps(record)" in line


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("train.csv", "is a .csv file; ptsdk reads .jsonl, .json or .parquet files"),
        ("train.txt", "is a .txt file"),
        ("data/train.tsv", "is a .tsv file"),
        ("train.jsonl.gz", "is a .jsonl.gz file"),
        ("train.ndjson", "rename it to train.jsonl"),
    ],
)
def test_unknown_extension_is_not_taken_for_a_hub_id(tmp_path: Path, name: str, expect: str) -> None:
    line = one(make_job(tmp_path, name))  # nothing on disk: still named as a file ptsdk does not read
    assert line.startswith(f"data.train.path: {name} ") and expect in line
    assert "hub" not in line.split(";")[0]


def test_existing_csv_file_gets_a_conversion_command(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("prompt,completion\na,b\n")
    line = one(make_job(tmp_path, "train.csv"), base=tmp_path)
    assert "pd.read_csv('train.csv', sep=',').to_json('train.jsonl'" in line


def test_existing_file_without_suffix(tmp_path: Path) -> None:
    (tmp_path / "train").write_text("a\n")
    assert "a file without .jsonl, .json or .parquet ending" in one(make_job(tmp_path, "train"), base=tmp_path)


def test_upper_case_suffix(tmp_path: Path) -> None:
    assert "in lower case" in one(make_job(tmp_path, "train.JSONL"))


# --- malformed lines -----------------------------------------------------------------------------------


def test_one_malformed_json_line(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in SFT]
    lines[16] = '{"prompt": "What is 1 + 1?" "completion": " 2"}'
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    assert one(make_job(tmp_path, "train.jsonl")) == (
        "data.train.path: line 17: not valid JSON (Expecting ',' delimiter); "
        "each line of a .jsonl file is one whole JSON object"
    )


def test_many_malformed_lines_first_few_then_a_count(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in SFT]
    for i in (3, 5, 7, 9, 11):
        lines[i] = lines[i][:-1]  # cut the closing brace
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    line = one(make_job(tmp_path, "train.jsonl"))
    assert line.startswith("data.train.path: lines 4, 6, 8 and 2 more: not valid JSON (")
    assert "the object continues on the next line" in line


def test_record_that_is_not_an_object(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [*SFT[:2], ["What is 1 + 1?", " 2"], *SFT[2:4], None])
    assert problems(make_job(tmp_path, path)) == [
        "data.train.path: line 3: a record is a JSON object ({...}); this one is a list",
        "data.train.path: line 6: a record is a JSON object ({...}); this one is null",
    ]


def test_too_many_kinds_of_problems_are_summed_up(tmp_path: Path) -> None:
    bad = [
        {"prompt": 1, "completion": " x"},
        {"prompt": "q", "completion": None},
        {"prompt": "q", "completion": ""},
        {"prompt": "q", "completion": True},
        {"prompt": "q", "completion": {"a": 1}},
        {"prompt": "q", "completion": []},
        {"prompt": "q", "completion": [1]},
    ]
    found = problems(make_job(tmp_path, write_jsonl(tmp_path / "t.jsonl", bad)))
    assert len(found) == 6
    assert found[-1] == (
        "data.train.path: 2 more kinds of problems in 2 more lines; fix the ones above and check again"
    )


# --- the record format ---------------------------------------------------------------------------------


def test_wrong_column_names_suggest_data_columns(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, EXAMPLES / "data" / "qa_train.jsonl"))
    assert line.startswith("data.train.path: lines 1, 2, 3 and 61 more: records have no field 'prompt' or 'completion'")
    assert "these have question, answer" in line
    assert "data.columns: {prompt: question, completion: answer}" in line
    assert "or set data.format (messages or instruction)" in line


def test_columns_mapping_to_a_missing_column(tmp_path: Path) -> None:
    job = make_job(tmp_path, EXAMPLES / "data" / "qa_train.jsonl", columns={"prompt": "query", "completion": "answer"})
    line = one(job)
    assert (
        "data.columns.prompt names column 'query', which the records do not have (they have question, answer)" in line
    )


def test_unknown_columns_without_a_guess(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"a": "x", "b": "y"}])
    assert "data.columns: {prompt: <column>, completion: <column>}" in one(make_job(tmp_path, path))


def test_preference_data_in_an_sft_job(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, EXAMPLES / "data" / "pref_train.jsonl"))
    assert "records have prompt/chosen/rejected: this looks like pairwise preference" in line
    assert (
        "method sft reads prompt_completion (prompt/completion) or messages (messages) or "
        "instruction (instruction/output)" in line
    )
    assert "use method dpo, ipo, orpo, simpo or cpo" in line


def test_sft_data_in_a_dpo_job(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", method="dpo"))
    assert "records have prompt/completion: this looks like SFT (prompt/completion) data" in line
    assert "method dpo reads preference (prompt/chosen/rejected) records" in line


def test_chat_data_in_a_dpo_job(tmp_path: Path) -> None:
    assert "this looks like chat (messages) data" in one(
        make_job(tmp_path, EXAMPLES / "data" / "chat_train.jsonl", method="dpo")
    )


def test_kto_and_dpo_data_swapped(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, EXAMPLES / "data" / "kto_train.jsonl", method="dpo"))
    assert "this looks like unpaired preference, KTO-style" in line and "use method kto" in line
    line = one(make_job(tmp_path, EXAMPLES / "data" / "pref_train.jsonl", method="kto"))
    assert "this looks like pairwise preference" in line and "method kto reads unpaired_preference" in line


def test_chat_records_with_the_default_sft_format_say_set_data_format(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, EXAMPLES / "data" / "chat_train.jsonl"))
    assert "records have messages, not prompt/completion: set data.format: messages" in line
    line = one(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", format="messages"))
    assert "set data.format: prompt_completion" in line


def test_records_wrapped_in_one_object(tmp_path: Path) -> None:
    (tmp_path / "train.json").write_text(json.dumps({"data": SFT}))
    assert "holds one object whose 'data' is a list of records" in one(make_job(tmp_path, "train.json"))


# --- value types ---------------------------------------------------------------------------------------


def test_chosen_is_a_number(tmp_path: Path) -> None:
    records = [{"prompt": "q", "chosen": " a", "rejected": " b"}] * 4 + [{"prompt": "q", "chosen": 3, "rejected": " b"}]
    line = one(make_job(tmp_path, write_jsonl(tmp_path / "p.jsonl", records), method="dpo"))
    assert line == (
        "data.train.path: line 5: chosen must be a string or a list of {role, content} messages, got a number"
    )


def test_messages_is_a_string(tmp_path: Path) -> None:
    records = [{"messages": "user: hi / assistant: hello"}]
    line = one(make_job(tmp_path, write_jsonl(tmp_path / "c.jsonl", records), format="messages"))
    assert line == "data.train.path: line 1: messages must be a list of {role, content} objects, got a string"


@pytest.mark.parametrize(
    ("messages", "expect"),
    [
        ([], "messages is an empty list of messages"),
        (["hi"], "messages[0] must be a {role, content} object, got a string"),
        (
            [{"from": "human", "value": "hi"}],
            "messages[0].role must be one of system, user, assistant, tool; got no role (keys: from, value); "
            "ShareGPT-style messages: set data.message_keys: {role: from, content: value}",
        ),
        (
            [{"role": "human", "content": "hi"}],
            "messages[0].role must be one of system, user, assistant, tool; got 'human'; "
            "map it with data.role_names: {human: user} (or assistant, system, tool)",
        ),
        ([{"role": "user", "content": None}], "messages[0].content must be a string, got null"),
        ([{"role": "user", "content": "hi"}], "messages has no assistant turn: nothing to train on"),
    ],
)
def test_bad_messages(tmp_path: Path, messages: list[Any], expect: str) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"messages": messages}])
    assert one(make_job(tmp_path, path, format="messages")) == f"data.train.path: line 1: {expect}"


def test_label_must_be_a_boolean(tmp_path: Path) -> None:
    records = [{"prompt": "q", "completion": " a", "label": True}, {"prompt": "q", "completion": " a", "label": 1}]
    line = one(make_job(tmp_path, write_jsonl(tmp_path / "k.jsonl", records), method="kto"))
    assert line == "data.train.path: line 2: label must be true or false, got a number"


def test_empty_completion(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "q", "completion": "  "}])
    assert (
        one(make_job(tmp_path, path)) == "data.train.path: line 1: completion is an empty string: nothing to train on"
    )


def test_string_and_message_list_mixed_in_a_record(tmp_path: Path) -> None:
    records = [{"prompt": "q", "completion": [{"role": "assistant", "content": "a"}]}]
    line = one(make_job(tmp_path, write_jsonl(tmp_path / "t.jsonl", records)))
    assert "prompt is a string but completion is a message list" in line


def test_string_and_message_list_mixed_across_records(tmp_path: Path) -> None:
    chat = {"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}
    records = [SFT[0], SFT[1], chat]
    found = problems(make_job(tmp_path, write_jsonl(tmp_path / "t.jsonl", records)))
    assert "data.train.path: line 3: prompt is a list of messages here but a string at line 1" in found[0]


def test_rl_prompt_types(tmp_path: Path) -> None:
    records = [{"prompt": "q", "ground_truth": [1, 2]}, {"prompt": 7}]
    line = one(make_job(tmp_path, write_jsonl(tmp_path / "rl.jsonl", records), method="grpo"))
    assert (
        line == "data.train.path: line 2: prompt must be a string or a list of {role, content} messages, got a number"
    )


def test_eval_data_is_checked_too(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", SFT)
    (tmp_path / "eval.jsonl").write_text("")
    job = make_job(tmp_path, train, eval="eval.jsonl")
    assert one(job).startswith("data.eval.path: ")


# --- .json files ---------------------------------------------------------------------------------------


def test_json_array_and_json_lines_in_a_json_file_pass(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(SFT, indent=2))
    assert problems(make_job(tmp_path, "a.json")) == []
    write_jsonl(tmp_path / "b.json", SFT)
    assert problems(make_job(tmp_path, "b.json")) == []


def test_json_array_checks_records_by_number(tmp_path: Path) -> None:
    records = [*SFT[:3], {"prompt": "q", "completion": 5}]
    (tmp_path / "a.json").write_text(json.dumps(records, indent=1))
    line = one(make_job(tmp_path, "a.json"))
    assert line.startswith("data.train.path: record 4: completion must be a string")


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("[]", "holds an empty JSON array"),
        (
            '[{"prompt": "q", "completion": "a"},\n  {"prompt": "q" "completion": "a"}]',
            "record 2 (line 2): not valid JSON",
        ),
        ('[{"prompt": "q", "completion": "a"}', "the JSON array is not closed"),
        ('[{"prompt": "q", "completion": "a"}] x', "text after the closing ']'"),
    ],
)
def test_bad_json_arrays(tmp_path: Path, text: str, expect: str) -> None:
    (tmp_path / "a.json").write_text(text)
    assert expect in one(make_job(tmp_path, "a.json"))


def test_json_array_in_a_jsonl_file(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(json.dumps(SFT))
    assert "holds a JSON array; a .jsonl file holds one JSON object per line" in one(make_job(tmp_path, "t.jsonl"))


def test_json_array_read_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf, "CHUNK_BYTES", 7)  # every value straddles chunk boundaries
    records = [{"prompt": "q" * 30, "completion": str(12345 + i)} for i in range(10)] + [
        {"prompt": "q", "completion": 3}
    ]
    (tmp_path / "a.json").write_text(json.dumps(records))
    assert one(make_job(tmp_path, "a.json")).startswith("data.train.path: record 11: completion must be")


# --- .parquet files ------------------------------------------------------------------------------------


def parquet(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copy(FIXTURES / name, tmp_path / name))


def test_parquet_fixtures_pass(tmp_path: Path) -> None:
    assert problems(make_job(tmp_path, parquet(tmp_path, "sft.parquet"))) == []
    assert problems(make_job(tmp_path, parquet(tmp_path, "pref.parquet"), method="dpo")) == []
    assert problems(make_job(tmp_path, parquet(tmp_path, "kto.parquet"), method="kto")) == []
    assert problems(make_job(tmp_path, parquet(tmp_path, "chat.parquet"), format="messages")) == []


def test_preference_parquet_in_an_sft_job(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, parquet(tmp_path, "pref.parquet")))
    assert line.startswith("data.train.path: columns: records have prompt/chosen/rejected: this looks like pairwise")


def test_parquet_with_wrong_column_types(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, parquet(tmp_path, "sft_int_completion.parquet")))
    assert "column 'completion' (completion) holds int values" in line
    line = one(make_job(tmp_path, parquet(tmp_path, "kto_int_label.parquet"), method="kto"))
    assert "column 'label' (label) holds int values; label must be bool" in line


def test_empty_parquet(tmp_path: Path) -> None:
    assert "holds no rows" in one(make_job(tmp_path, parquet(tmp_path, "empty.parquet")))


def test_not_a_parquet_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "t.parquet", SFT)
    line = one(make_job(tmp_path, "t.parquet"))
    assert "is not a Parquet file (no PAR1 marker at both ends); it holds JSON" in line


def test_truncated_parquet(tmp_path: Path) -> None:
    data = (FIXTURES / "sft.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[: len(data) // 2])
    assert "is cut short or damaged (no PAR1 marker at the end)" in one(make_job(tmp_path, "t.parquet"))
    (tmp_path / "u.parquet").write_bytes(data[:4] + b"\x00" * 40 + data[-8:])
    assert "damaged" in one(make_job(tmp_path, "u.parquet"))


def test_parquet_damaged_pages(tmp_path: Path) -> None:
    data = (FIXTURES / "sft.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[:8] + b"\xff" * 20 + data[28:])  # the footer is intact
    line = one(make_job(tmp_path, "t.parquet"))
    assert line.startswith(f"data.train.path: reading the rows of {tmp_path / 't.parquet'} failed (")
    assert line.endswith("; write the file again")


def write_parquet(path: Path, columns: dict[str, Any]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_rows_are_checked(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "t.parquet", {"prompt": ["q", "q", "q"], "completion": ["a", None, "  "]})
    assert problems(make_job(tmp_path, path)) == [
        "data.train.path: row 2: completion must be a string or a list of {role, content} messages, got null",
        "data.train.path: row 3: completion is an empty string: nothing to train on",
    ]


def test_parquet_chat_rows(tmp_path: Path) -> None:
    report = pf.preflight(make_job(tmp_path, parquet(tmp_path, "chat.parquet"), format="messages"))
    assert report.problems == [] and report.notes == []
    chat = [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        [{"role": "user", "content": "hi"}],
    ]
    path = write_parquet(tmp_path / "c.parquet", {"messages": chat})
    assert one(make_job(tmp_path, path, format="messages")) == (
        "data.train.path: row 2: messages has no assistant turn: nothing to train on"
    )


def test_parquet_reads_only_the_checked_columns(tmp_path: Path) -> None:
    import pyarrow as pa

    prompts = pa.array(["q1", "q2", "q1"]).dictionary_encode()  # as pandas writes a categorical column
    extra = pa.array([{"k": 1}, {"k": 2}, {"k": 3}])
    path = write_parquet(tmp_path / "t.parquet", {"question": prompts, "answer": ["a", "b", "c"], "meta": extra})
    assert problems(make_job(tmp_path, path, columns={"prompt": "question", "completion": "answer"})) == []


def test_parquet_list_column_that_is_not_messages(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "t.parquet", {"prompt": ["q"], "completion": [["a", "b"]]})
    assert "column 'completion' (completion) is a list but not of {role, content} messages" in one(
        make_job(tmp_path, path)
    )


# --- bounded time on large files -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["big.jsonl", "big.json"])
def test_large_file_is_checked_in_bounded_time(tmp_path: Path, name: str) -> None:
    record = json.dumps({"prompt": "What is 1 + 1? " * 4, "completion": " 2"})
    path = tmp_path / name
    with path.open("w") as f:  # ~16 MB; the last record is broken
        if name.endswith(".jsonl"):
            f.write((record + "\n") * 200_000 + "{not json}\n")
        else:
            f.write("[" + (record + ",\n") * 200_000 + "{not json}]")
    assert path.stat().st_size > 15 * 2**20
    job = make_job(tmp_path, path)
    started = time.monotonic()
    report = pf.preflight(job, budget_s=0.2)
    assert time.monotonic() - started < 2.0
    assert report.problems == []  # the broken record was not reached
    (note,) = report.notes
    assert note.startswith("data.train.path: checked the first ") and " MiB) in " in note
    assert note.endswith("and stopped there (time limit)")
    if name.endswith(".jsonl"):
        assert pf.preflight(job, budget_s=60).problems == [
            "data.train.path: line 200001: not valid JSON (Expecting property name enclosed in double quotes); "
            "each line of a .jsonl file is one whole JSON object"
        ]  # and found given the time


def test_large_parquet_is_checked_in_bounded_time(tmp_path: Path) -> None:
    n = 300_000
    prompts = [f"What is {i} + 1? " * 4 for i in range(n)]
    path = write_parquet(tmp_path / "big.parquet", {"prompt": prompts, "completion": [" 2"] * (n - 1) + [None]})
    started = time.monotonic()
    report = pf.preflight(make_job(tmp_path, path), budget_s=0.2)
    assert time.monotonic() - started < 2.0
    assert report.problems == []  # the null in the last row was not reached
    (note,) = report.notes
    assert note.startswith("data.train.path: checked the first ") and note.endswith("stopped there (time limit)")
    assert "MiB" not in note


def test_max_records_stops_reading(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [*SFT, {"prompt": 1}])
    report = pf.preflight(make_job(tmp_path, path), max_records=5)
    assert report.problems == []
    assert "checked the first 5 records" in report.notes[0] and "(max_records=5)" in report.notes[0]


# --- models --------------------------------------------------------------------------------------------


def model_dir(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in names:
        shutil.copy(TINY / name, folder / name)
    return folder


def test_empty_model_folder(tmp_path: Path) -> None:
    job = make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model=model_dir(tmp_path))
    assert one(job).startswith(f"model.name_or_path: {tmp_path / 'model'} is an empty folder")


def test_model_path_is_a_file(tmp_path: Path) -> None:
    job = make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model=TINY / "config.json")
    assert "config.json is a file; give the folder that holds the model" in one(job)


def test_model_folder_without_config(tmp_path: Path) -> None:
    folder = model_dir(tmp_path, "tokenizer.json", "model.safetensors")
    line = one(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model=folder))
    assert "has no config.json (it holds model.safetensors, tokenizer.json)" in line


def test_model_folder_one_level_too_high(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model=EXAMPLES))
    assert f"its subfolder tiny-model has one: use {TINY}" in line


def test_adapter_folder_given_as_the_model(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model=EXAMPLES / "tiny-model-lora-init"))
    assert "holds a PEFT adapter (adapter_config.json), not a model" in line and "adapter.init_path" in line


def test_config_without_model_type(tmp_path: Path) -> None:
    folder = model_dir(tmp_path, "tokenizer.json", "tokenizer_config.json", "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"hidden_size": 64}))
    assert "config.json has no model_type" in one(
        make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model=folder)
    )
    (folder / "config.json").write_text("{")
    assert "config.json is not valid JSON (line 1" in one(
        make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model=folder)
    )


def test_model_without_tokenizer_or_weights(tmp_path: Path) -> None:
    folder = model_dir(tmp_path, "config.json", "tokenizer_config.json", "generation_config.json")
    found = problems(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model=folder))
    assert len(found) == 2
    assert "holds no weights" in found[0] and "holds no tokenizer" in found[1]


def test_sentencepiece_tokenizer_counts(tmp_path: Path) -> None:
    folder = model_dir(tmp_path, "config.json", "tokenizer_config.json", "model.safetensors")
    (folder / "tokenizer.model").write_bytes(b"\0")
    assert problems(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model=folder)) == []


def test_bare_model_name_offline(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model="no-such-model"))
    cache = tmp_path / "hf-cache" / "hub"
    assert line == (
        f"model.name_or_path: 'no-such-model' is not a local folder, not in the Hugging Face cache ({cache}), and the "
        "hub cannot be reached (huggingface.co does not answer: offline); download it on a machine with network "
        "(hf download no-such-model, then copy the cache) or give a local folder"
    )


def test_hf_hub_offline_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf, "hub_reachable", lambda: pytest.fail("no probe when HF_HUB_OFFLINE=1"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    line = one(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model="org/name"))
    assert "the hub cannot be reached (HF_HUB_OFFLINE is set)" in line


def test_hub_model_online_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf, "hub_reachable", lambda: True)
    assert problems(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model="org/name")) == []


def test_hub_model_in_the_cache_passes_offline(tmp_path: Path) -> None:
    snapshot = tmp_path / "hf-cache" / "hub" / "models--org--name" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert problems(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model="org/name")) == []


def test_check_hub_false_skips_the_hub(tmp_path: Path) -> None:
    job = make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model="org/name")
    assert problems(job, check_hub=False) == []


def test_not_a_hub_id(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model="my model"))
    assert line == "model.name_or_path: 'my model' is neither a local folder nor a hub model id (org/name)"


def test_relative_reward_model_folder(tmp_path: Path) -> None:
    job = make_job(tmp_path, EXAMPLES / "data" / "rl_train.jsonl", method="grpo")
    job.method.reward_model = "./rm"  # type: ignore[union-attr]
    assert one(job, base=tmp_path) == (
        f"method.reward_model: no such folder {tmp_path / 'rm'}; give a local model folder or a hub id (org/name)"
    )
    (tmp_path / "rm").mkdir()
    assert one(job, base=tmp_path).startswith(f"method.reward_model: {tmp_path / 'rm'} is an empty folder")


def test_reward_model_is_checked(tmp_path: Path) -> None:
    job = make_job(tmp_path, EXAMPLES / "data" / "rl_train.jsonl", method="grpo")
    job.method.reward_model = "org/reward"  # type: ignore[union-attr]
    assert one(job).startswith("method.reward_model: 'org/reward' is not a local folder, not in the Hugging Face")


# --- hub datasets --------------------------------------------------------------------------------------


def test_hub_dataset_offline_is_named(tmp_path: Path) -> None:
    line = one(make_job(tmp_path, "org/dataset"))
    assert line.startswith("data.train.path: 'org/dataset' is not a local .jsonl, .json or .parquet file, not in")
    assert "hf download --repo-type dataset org/dataset" in line


def test_hub_dataset_online_or_cached_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = make_job(tmp_path, "org/dataset")
    (tmp_path / "hf-cache" / "datasets" / "org___dataset").mkdir(parents=True)
    assert problems(job) == []
    shutil.rmtree(tmp_path / "hf-cache" / "datasets")
    monkeypatch.setattr(pf, "hub_reachable", lambda: True)
    assert problems(job) == []


# --- hub_problems: the hub lines alone, for validate's warnings ----------------------------------------


def test_hub_problems_names_each_hub_id_without_reading_data(tmp_path: Path) -> None:
    (tmp_path / "eval.jsonl").write_text("not json\n")
    job = make_job(tmp_path, "org/dataset", method="grpo", model="org/model", eval="eval.jsonl")
    job.method.reward_model = "org/reward"  # type: ignore[union-attr]
    found = pf.hub_problems(job, base=tmp_path)
    assert [line.split(":")[0] for line in found] == ["data.train.path", "model.name_or_path", "method.reward_model"]
    assert "'org/dataset' is not a local .jsonl, .json or .parquet file" in found[0]
    assert "hub cannot be reached" in found[1] and "hf download org/model" in found[1]
    local = pf.preflight_problems(job, base=tmp_path, check_hub=False)
    assert [line.split(":")[0] for line in local] == ["data.eval.path"]  # the data, not the hub
    assert pf.preflight_problems(job, base=tmp_path) == local + found


def test_hub_problems_leaves_out_local_cached_and_malformed_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl")
    assert pf.hub_problems(job) == []  # a local model folder and a local file
    snapshot = tmp_path / "hf-cache" / "hub" / "models--org--name" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert pf.hub_problems(make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model="org/name")) == []
    bad = make_job(tmp_path, EXAMPLES / "data" / "sft_train.jsonl", model="my model")
    assert pf.hub_problems(bad) == []  # not an id at all: a preflight problem, with or without a network
    assert one(bad, check_hub=False).endswith("is neither a local folder nor a hub model id (org/name)")
    monkeypatch.setattr(pf, "hub_reachable", lambda: True)
    assert pf.hub_problems(make_job(tmp_path, "org/dataset", model="org/other")) == []


# --- the reachability probe ----------------------------------------------------------------------------


def test_hub_probe_is_quick_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real hub_reachable
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    assert pf.hub_reachable() is False
    assert time.monotonic() - started <= pf.HUB_PROBE_TIMEOUT_S + 0.5
    assert pf._probe.cache_info().currsize >= 1
    assert pf.hub_reachable() is False


def test_hub_probe_goes_through_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert pf._probe_target() == ("proxy.internal", 3128)
    monkeypatch.setenv("NO_PROXY", ".huggingface.co")
    assert pf._probe_target() == ("huggingface.co", 443)


# --- light -----------------------------------------------------------------------------------------------


def test_preflight_imports_no_framework() -> None:
    job = EXAMPLES / "jobs" / "sft_lora.yaml"  # .jsonl data: pyarrow is for .parquet files only
    code = (
        "import sys, ptsdk.preflight as pf, ptsdk.spec as spec; "
        f"pf.preflight(spec.load_job({str(job)!r}), check_hub=False); "
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'pyarrow') if m in sys.modules]; "
        "print(heavy); sys.exit(bool(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0, done.stdout + done.stderr


def test_paths_the_filesystem_refuses_are_problem_lines() -> None:
    job = Job.model_validate(
        {
            "method": {"name": "sft"},
            "model": {"name_or_path": "/m" + "a" * 300},
            "data": {"train": {"path": "/tmp/" + "b" * 300 + ".jsonl"}},
        }
    )
    assert problems(job) == [
        "data.train.path: cannot be checked (File name too long)",
        "model.name_or_path: cannot be checked (File name too long)",
    ]


def test_run_refuses_bad_data_before_anything_is_created(ptsdk, write_job, tmp_path: Path, monkeypatch) -> None:
    """Through `ptsdk run`: an empty data file is exit 2 naming the file, and no run directory is made."""
    from conftest import local_job

    monkeypatch.setenv("PTSDK_TRL_PYTHON", sys.executable)  # past the environment check
    job = local_job(tmp_path, output={"dir": str(tmp_path / "runs")})
    Path(job["data"]["train"]["path"]).write_text("")
    r = ptsdk("run", str(write_job(job)), "--backend", "trl")
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert "problem(s) with the job's data or model" in r.err and "data.train.path" in r.err
    assert not (tmp_path / "runs").exists()
    r = ptsdk("validate", str(tmp_path / "job.yaml"))
    assert r.code == 2 and "data.train.path" in r.err


def test_a_home_folder_of_no_user_is_a_problem_not_a_traceback(ptsdk, write_job) -> None:
    """Found by tools/fuzz_jobs.py: `~nosuchuser/x` made pathlib raise RuntimeError."""
    from conftest import minimal_job

    r = ptsdk("validate", str(write_job(minimal_job(model={"name_or_path": "~nosuchuser/x"}))))
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert "model.name_or_path" in r.err
