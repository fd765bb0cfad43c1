"""Hostile job files (issue #13): each is refused with `field: problem` lines and exit 2, never a traceback."""

from __future__ import annotations

import json
import os
import sys

import pytest
import yaml
from conftest import minimal_job
from ptsdk.errors import MAX_LINE_CHARS, MAX_LINES, SpecError, format_loc, validation_lines
from ptsdk.spec import Job, load_job, validate_job
from ptsdk.spec.load import local_reference_problems, path_problem, reward_ref_problem
from ptsdk.spec.parse import MAX_JOB_BYTES
from pydantic import ValidationError

HEAD_YAML = "method: {name: sft}\nmodel: {name_or_path: org/model}\ndata: {train: {path: org/data}}\n"
HEAD_JSON = '"method": {"name": "sft"}, "model": {"name_or_path": "org/model"}, "data": {"train": {"path": "org/data"}}'


def rejected(result, *expected: str) -> str:
    """The CLI refused the job with exit 2 and an `error:` message naming each expected text."""
    assert result.code == 2, (result.code, result.out, result.err)
    assert result.err.startswith("error:"), result.err
    assert "Traceback" not in result.err
    for text in expected:
        assert text in result.err, (text, result.err)
    return result.err


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- 1. integers Python cannot convert ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("job.json", "{" + HEAD_JSON + ', "training": {"seed": ' + "9" * 5000 + "}}"),
        ("job.yaml", HEAD_YAML + "training: {seed: " + "9" * 5000 + "}\n"),
        ("job.yaml", HEAD_YAML + "training: {seed: 0x" + "f" * 5000 + "}\n"),
        ("job.yaml", HEAD_YAML + "backend_options: {trl: {x: [1, -" + "9" * 5000 + "]}}\n"),
    ],
)
def test_huge_integer_is_named_not_a_traceback(tmp_path, ptsdk, name: str, text: str) -> None:
    err = rejected(
        ptsdk("validate", str(write(tmp_path, name, text))), "is too large; integers in a job fit in 64 bits"
    )
    assert "training.seed:" in err or "backend_options.trl.x.1:" in err
    assert len(err) < 1000


def test_integer_beyond_64_bits_refused(ptsdk, write_job) -> None:
    rejected(ptsdk("validate", str(write_job(minimal_job(training={"seed": 2**64})))), "training.seed:", "64 bits")


# --- 2. paths the filesystem cannot take -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "section"),
    [
        ("model.name_or_path", {"model": {"name_or_path": "/" + "m" * 5000}}),
        ("adapter.init_path", {"adapter": {"type": "lora", "init_path": "a" * 300}}),
        ("data.train.path", {"data": {"train": {"path": "d/" * 2100 + "x.jsonl"}}}),
        ("method.rewards.0", {"method": {"name": "grpo", "num_generations": 2, "rewards": ["r" * 300 + ".py:f"]}}),
        ("output.dir", {"output": {"dir": "o" * 256}}),
    ],
)
def test_path_too_long_for_the_filesystem(ptsdk, write_job, field: str, section: dict) -> None:
    err = rejected(
        ptsdk("validate", str(write_job(minimal_job(**section)))), f"{field}: path too long for the filesystem"
    )
    assert "bytes" in err and "limit" in err


@pytest.mark.parametrize("field", ["model.name_or_path", "data.train.path", "adapter.init_path"])
def test_path_with_nul_byte(tmp_path, ptsdk, field: str) -> None:
    job = minimal_job(adapter={"type": "lora"})
    section, *rest = field.split(".")
    node = job[section]
    for key in rest[:-1]:
        node = node[key]
    node[rest[-1]] = "./a\x00b.jsonl"
    path = write(tmp_path, "job.json", json.dumps(job))
    rejected(ptsdk("validate", str(path)), f"{field}: contains a NUL byte")


def test_file_checks_never_raise_on_impossible_paths() -> None:
    """The helpers the loader uses are safe on their own too (a job built in code skips the loader's checks)."""
    job = validate_job(minimal_job(adapter={"type": "lora"}))
    job.model.name_or_path = "/" + "m" * 5000
    job.data.train.path = "/x/" + "d" * 300 + ".jsonl"
    assert job.adapter.type == "lora"
    job.adapter.init_path = "/a\x00b"
    problems = local_reference_problems(job)
    assert any(p.startswith("model.name_or_path: path too long") for p in problems)
    assert any(p.startswith("data.train.path: path too long") for p in problems)
    assert any(p.startswith("adapter.init_path: contains a NUL byte") for p in problems)
    assert "path too long" in (reward_ref_problem("/" + "r" * 300 + ".py:f") or "")
    assert path_problem("ok/path.jsonl") is None


# --- 3. job names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../x", "a/b", "a\\b", "x" * 300, "a\x00b", ".hidden", "..", "", "-rf", "a b"])
def test_job_name_must_be_a_plain_file_name(tmp_path, ptsdk, name: str) -> None:
    path = write(tmp_path, "job.json", json.dumps(minimal_job(name=name)))
    err = rejected(ptsdk("validate", str(path)), "name:")
    assert "letters, digits, '.', '_' or '-'" in err or "NUL" in err


@pytest.mark.parametrize("name", ["run-1", "sft_lora.v2", "A", "x" * 100, "_tmp"])
def test_plain_job_names_accepted(name: str) -> None:
    assert validate_job(minimal_job(name=name)).name == name


@pytest.mark.parametrize(
    ("stem", "expected"), [(".my job!", "my_job_"), ("x" * 200, "x" * 100), ("...", "job"), ("ok-name", "ok-name")]
)
def test_default_name_from_an_awkward_file_stem_is_sanitized(tmp_path, stem: str, expected: str) -> None:
    path = write(tmp_path, f"{stem}.yaml", yaml.safe_dump(minimal_job()))
    assert load_job(path).name == expected


# --- 4 and 5. locations: union tags, brackets, control characters, long keys, bounded output -------


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"method": {"name": "sft", "dpo": 1}}, "method.dpo: unknown field"),
        ({"method": {"name": "sft", "sft": 1}}, "method.sft: unknown field"),
        ({"method": {"name": "dpo", "grpo": 1}}, "method.grpo: unknown field"),
        ({"adapter": {"type": "lora", "qlora": 1}}, "adapter.qlora: unknown field"),
        ({"adapter": {"type": "lora", "lora": 1}}, "adapter.lora: unknown field"),
    ],
)
def test_key_named_like_a_union_tag_is_named(ptsdk, write_job, section: dict, expected: str) -> None:
    rejected(ptsdk("validate", str(write_job(minimal_job(**section)))), expected)


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("a[b]", "training.'a[b]': unknown field"),
        ("function-after[x]", "training.'function-after[x]': unknown field"),
        ("[key]", "training.'[key]': unknown field"),
        ("x\ny", "training.'x\\ny': unknown field"),
        ("\x1b[31mred", "training.'\\x1b[31mred': unknown field"),
        ("a\u2028b", "training.'a\\u2028b': unknown field"),
        ("a.b", "training.'a.b': unknown field"),
    ],
)
def test_odd_keys_are_quoted_and_kept_on_one_line(ptsdk, write_job, key: str, shown: str) -> None:
    err = rejected(ptsdk("validate", str(write_job(minimal_job(training={key: 1}), "job.json"))), shown)
    assert len(err.strip().splitlines()) == 2


def test_huge_key_is_cut_short(ptsdk, write_job) -> None:
    err = rejected(ptsdk("validate", str(write_job(minimal_job(training={"k" * 500_000: 1})))), "(500000 characters)")
    assert len(err) < 400


def test_many_problems_are_bounded(ptsdk, write_job) -> None:
    job = minimal_job(training={f"bad{i}": 1 for i in range(200)})
    err = rejected(ptsdk("validate", str(write_job(job))), "200 problem(s)", "... and 170 more problems")
    assert len(err.splitlines()) == MAX_LINES + 2


def test_echoed_values_are_bounded(ptsdk, write_job) -> None:
    job = minimal_job(method={"name": "m" * 100_000})
    err = rejected(ptsdk("validate", str(write_job(job))), "method: got 'mmmm", "(100000 characters)", "'sft'")
    assert len(err) < 600
    job = minimal_job(method={"name": "grpo", "rewards": ["r" * 100_000]})
    err = rejected(
        ptsdk("validate", str(write_job(job))), "method.rewards: 'rrrr", "is not a reward function reference"
    )
    assert len(err) < 600


def test_render_bounds_every_line() -> None:
    text = SpecError("x" * 10_000, lines=["y\nz" * 10_000, *map(str, range(100))]).render()
    lines = text.splitlines()
    assert len(lines) == 1 + MAX_LINES + 1 and lines[-1] == "  ... and 71 more problems"
    assert all(len(line) <= MAX_LINE_CHARS + 2 for line in lines) and "y\\nz" in lines[1]


def test_format_loc_drops_only_pydantic_parts() -> None:
    assert format_loc(("method", "dpo", "beta")) == "method.beta"
    assert format_loc(("method", "sft", "dpo")) == "method.dpo"
    assert format_loc(("method", "grpo", "rewards", "function-after[_reward_refs(), list[str]]", 0)) == (
        "method.rewards.0"
    )
    assert format_loc(("adapter", "lora", "target_modules", "literal['all-linear']")) == "adapter.target_modules"
    assert format_loc(("backend_options", 1, "[key]")) == "backend_options.1"
    data = {"training": {"list[str]": 1}}
    assert format_loc(("training", "list[str]"), data) == "training.'list[str]'"


def test_validation_lines_use_the_input_to_tell_keys_from_wrappers() -> None:
    data = minimal_job(training={"list[int]": 1})
    with pytest.raises(ValidationError) as info:
        Job.model_validate(data)
    assert validation_lines(info.value.errors(), data) == [
        "training.'list[int]': unknown field; remove it or check its spelling (see `ptsdk schema`)"
    ]


# --- 6. duplicate keys ------------------------------------------------------------------------


def test_yaml_duplicate_top_level_key(tmp_path, ptsdk) -> None:
    text = HEAD_YAML + "training:\n  seed: 1\n  epochs: 2\ntraining:\n  seed: 2\n"
    rejected(
        ptsdk("validate", str(write(tmp_path, "job.yaml", text))),
        "job.yaml:7: duplicate key 'training' (first at line 4)",
    )


def test_yaml_duplicate_nested_key(tmp_path, ptsdk) -> None:
    text = HEAD_YAML + "training: {seed: 1, seed: 2}\n"
    rejected(
        ptsdk("validate", str(write(tmp_path, "job.yaml", text))), "job.yaml:4: duplicate key 'seed' (first at line 4)"
    )


def test_yaml_merge_keys_may_override(tmp_path, ptsdk) -> None:
    text = HEAD_YAML + "backend_options:\n  trl: &base {a: 1, b: 2}\n  verl:\n    <<: *base\n    a: 3\n"
    path = write(tmp_path, "job.yaml", text)
    assert load_job(path).backend_options["verl"] == {"a": 3, "b": 2}


def test_json_duplicate_key(tmp_path, ptsdk) -> None:
    text = "{" + HEAD_JSON + ', "training": {"seed": 1}, "training": {"seed": 2}}'
    rejected(ptsdk("validate", str(write(tmp_path, "job.json", text))), "duplicate key 'training' in one JSON object")


# --- 7. NaN and infinity ----------------------------------------------------------------------

NON_FINITE_FIELDS = [
    ("training", "weight_decay"),
    ("training", "max_grad_norm"),
    ("training", "epochs"),
    ("training", "learning_rate"),
    ("training", "warmup_ratio"),
    ("method", "beta"),
    ("adapter", "dropout"),
]


@pytest.mark.parametrize(("section", "key"), NON_FINITE_FIELDS)
@pytest.mark.parametrize(("yaml_text", "json_text", "shown"), [(".inf", "Infinity", "inf"), (".nan", "NaN", "nan")])
def test_non_finite_numbers_refused(tmp_path, ptsdk, section, key, yaml_text, json_text, shown) -> None:
    job = minimal_job(method={"name": "dpo"}, adapter={"type": "lora"})
    job.setdefault(section, {})[key] = "zzz"
    expected = f"{section}.{key}: must be a finite number, got {shown}"
    for name, text in (("job.yaml", yaml.safe_dump(job).replace("zzz", yaml_text)), ("job.json", json.dumps(job))):
        if name.endswith(".json"):
            text = text.replace('"zzz"', json_text)
        rejected(ptsdk("validate", str(write(tmp_path, name, text))), expected)


def test_non_finite_kl_coef_and_rollout(ptsdk, tmp_path) -> None:
    text = (
        "method: {name: grpo, num_generations: 2, rewards: ['m:f'], kl_coef: -.inf}\n"
        "model: {name_or_path: org/model}\ndata: {train: {path: org/data}}\nrollout: {gpu_memory_utilization: .nan}\n"
    )
    rejected(
        ptsdk("validate", str(write(tmp_path, "job.yaml", text))),
        "method.kl_coef: must be a finite number, got -inf",
        "rollout.gpu_memory_utilization: must be a finite number, got nan",
    )


def test_non_finite_inside_backend_options(tmp_path, ptsdk) -> None:
    text = HEAD_YAML + "backend_options: {trl: {optim_args: {eps: [1.0, .inf]}, x: 1.0e+999}}\n"
    rejected(
        ptsdk("validate", str(write(tmp_path, "job.yaml", text))),
        "backend_options.trl.optim_args.eps.1: must be a finite number, got inf",
        "backend_options.trl.x: must be a finite number, got inf",
    )


def test_spec_itself_refuses_non_finite_numbers() -> None:
    """Without the loader's checks (a job built in code), the spec refuses them too."""
    with pytest.raises(ValidationError, match="finite number"):
        Job.model_validate(minimal_job(training={"weight_decay": float("inf")}))
    with pytest.raises(ValidationError, match="finite number") as info:
        Job.model_validate(minimal_job(backend_options={"trl": {"a": {"b": [float("nan")]}}}))
    assert info.value.errors()[0]["loc"] == ("backend_options", "trl", "a", "b", 0)


# --- 8. alias bombs ---------------------------------------------------------------------------


def test_yaml_alias_bomb_refused(tmp_path, ptsdk) -> None:
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    text = HEAD_YAML + "backend_options:\n  trl:\n" + "".join(f"    {line}\n" for line in levels)
    rejected(ptsdk("validate", str(write(tmp_path, "job.yaml", text))), "backend_options.trl.", "expands to more than")


def test_recursive_alias_refused(tmp_path, ptsdk) -> None:
    text = HEAD_YAML + "backend_options: {trl: &loop {again: *loop}}\n"
    rejected(ptsdk("validate", str(write(tmp_path, "job.yaml", text))), "refers to itself")


def test_deep_nesting_refused(tmp_path, ptsdk) -> None:
    text = HEAD_YAML + "backend_options: {trl: {x: " + "[" * 150 + "]" * 150 + "}}\n"
    rejected(ptsdk("validate", str(write(tmp_path, "job.yaml", text))), "nested")


def test_ordinary_anchors_and_aliases_still_work(tmp_path, ptsdk) -> None:
    text = (
        "method: {name: sft}\nmodel: {name_or_path: &m org/model}\ndata: {train: {path: org/data}}\n"
        "training: {learning_rate: &lr 0.001}\nbackend_options: {trl: {lr_copy: *lr, model: *m, "
        "a: &list [1, 2, 3], b: *list}}\n"
    )
    result = ptsdk("validate", str(write(tmp_path, "job.yaml", text)))
    assert result.code == 0, result.err
    assert load_job(tmp_path / "job.yaml").backend_options["trl"]["b"] == [1, 2, 3]


# --- 9. reward files in folders with spaces --------------------------------------------------------


def test_reward_file_under_a_folder_with_a_space(tmp_path, ptsdk, write_job) -> None:
    (tmp_path / "my rewards").mkdir()
    (tmp_path / "my rewards" / "r.py").write_text("def score(prompts, completions, **kwargs):\n    return []\n")
    job = minimal_job(method={"name": "grpo", "num_generations": 2, "rewards": ["my rewards/r.py:score"]})
    result = ptsdk("validate", str(write_job(job)))
    assert result.code == 0, result.err
    assert load_job(tmp_path / "job.yaml").method.rewards == [f"{tmp_path}/my rewards/r.py:score"]  # type: ignore[union-attr]


@pytest.mark.parametrize("ref", [" r.py:f", "r.py:f\n", "r.py", "dir/.py:f", "r .py:f", "a\tb.py:f", "r.py:f g"])
def test_malformed_reward_refs_still_refused(ptsdk, write_job, ref: str) -> None:
    job = minimal_job(method={"name": "grpo", "num_generations": 2, "rewards": [ref]})
    rejected(ptsdk("validate", str(write_job(job))), "method.rewards: ", "is not a reward function reference")


def test_unreadable_reward_files_are_problems_not_tracebacks(tmp_path) -> None:
    (tmp_path / "nul.py").write_bytes(b"def f(a, b, **k):\x00 pass\n")
    (tmp_path / "latin.py").write_bytes(b"# \xff\ndef f(a, b, **k): pass\n")
    (tmp_path / "dir.py").mkdir()
    assert "null bytes" in (reward_ref_problem(f"{tmp_path}/nul.py:f") or "")
    assert "UTF-8" in (reward_ref_problem(f"{tmp_path}/latin.py:f") or "")
    assert "no such file" in (reward_ref_problem(f"{tmp_path}/dir.py:f") or "")


# --- 10. job files that are not text, not files, or not reachable ---------------------------------


def test_binary_job_file(tmp_path, ptsdk) -> None:
    rejected(ptsdk("validate", str(write(tmp_path, "job.yaml", b"\x89PNG\r\n\x1a\n\x00\xff"))), "not UTF-8 text")


def test_utf8_bom_is_accepted(tmp_path, ptsdk) -> None:
    assert (
        ptsdk("validate", str(write(tmp_path, "job.json", b"\xef\xbb\xbf" + json.dumps(minimal_job()).encode()))).code
        == 0
    )


def test_nul_bytes_in_yaml_text(tmp_path, ptsdk) -> None:
    rejected(ptsdk("validate", str(write(tmp_path, "job.yaml", HEAD_YAML + "name: a\x00b\n"))), "not valid YAML")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_does_not_hang(tmp_path, ptsdk) -> None:
    os.mkfifo(tmp_path / "job.yaml")
    rejected(ptsdk("validate", str(tmp_path / "job.yaml")), "is not a regular file")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_endless_device_is_not_read(ptsdk) -> None:
    rejected(ptsdk("validate", "/dev/zero"), "/dev/zero: is not a regular file")


def test_oversized_job_file(tmp_path, ptsdk) -> None:
    path = write(tmp_path, "job.yaml", HEAD_YAML + "#" * MAX_JOB_BYTES)
    rejected(ptsdk("validate", str(path)), "a job file is at most 1,048,576")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX name limits")
def test_job_path_too_long(tmp_path, ptsdk) -> None:
    err = rejected(ptsdk("validate", str(tmp_path / ("j" * 5000 + ".yaml"))), "path too long for the filesystem")
    assert len(err) < 400


def test_job_path_with_nul_byte(tmp_path) -> None:
    # The shell cannot pass a NUL in an argument; code calling load_job can.
    with pytest.raises(SpecError, match="contains a NUL byte"):
        load_job(tmp_path / "a\x00b.yaml")


def test_missing_and_directory_job_files(tmp_path, ptsdk) -> None:
    rejected(ptsdk("validate", str(tmp_path / "nope.yaml")), "no such job file")
    with pytest.raises(SpecError, match="is a directory"):
        load_job(tmp_path)


# --- other YAML and JSON values no job can hold ----------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("backend_options: {trl: {date: 2024-01-01}}", "backend_options.trl.date: YAML read this as a date"),
        ("backend_options: {trl: {bad: 2024-99-99}}", ":4:30: not valid YAML: '2024-99-99' is not a valid timestamp"),
        ("backend_options: {trl: {x: !!float x}}", "not valid YAML: 'x' is not a valid float"),
        ("backend_options: {trl: {x: !!int ''}}", "not valid YAML: '' is not a valid int"),
        ("backend_options: {trl: {x: !!set {a, b}}}", "backend_options.trl.x: YAML sets (!!set) are not supported"),
        ("backend_options: {trl: {x: !!binary aGVsbG8=}}", "backend_options.trl.x: binary (!!binary) values"),
        ("backend_options: {trl: {yes: 1}}", "backend_options.trl.True: key True is a boolean, not a name"),
        ("backend_options: {trl: {~: 1}}", "backend_options.trl.None: key None is null"),
        ("backend_options: {trl: {x: !!python/object:os.system x}}", "not valid YAML"),
        ('name: "\\ud800"', "name: is not valid Unicode text"),
    ],
)
def test_yaml_values_no_job_can_hold(tmp_path, ptsdk, snippet: str, expected: str) -> None:
    rejected(ptsdk("validate", str(write(tmp_path, "job.yaml", HEAD_YAML + snippet + "\n"))), expected)


def test_json_lone_surrogate(tmp_path, ptsdk) -> None:
    text = '{"method": {"name": "sft"}, "model": {"name_or_path": "org/m\\ud800"}, "data": {"train": {"path": "o/d"}}}'
    rejected(ptsdk("validate", str(write(tmp_path, "job.json", text))), "model.name_or_path: is not valid Unicode text")


def test_nul_byte_in_the_job_path_through_the_cli(ptsdk) -> None:
    r = ptsdk("validate", "jobs/a\x00b.yaml")
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err.startswith("error: ") and "NUL byte" in r.err
