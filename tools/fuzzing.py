"""Hostile job files for fuzzing `ptsdk validate`, shared by tests/test_fuzz.py and tools/fuzz_jobs.py.

A case is a valid job with some values replaced by hostile ones (integers of thousands of digits,
NaN and infinity, NUL bytes and control characters, keys with brackets or of 100,000 characters,
YAML tags, dates, anchors and alias bombs, deep nesting, wrong types), rendered as JSON or YAML text,
then sometimes damaged as text (duplicate keys, cut short, bytes that are not UTF-8). Values too big
for hypothesis' choice buffer are drawn as sizes and built here. `run_case` writes one case and runs
it through the real CLI entry (`ptsdk.cli.main(["validate", path])`) in this process.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

# Files the jobs below name, created by `prepare_dir` beside every case.
REWARD_SOURCE = "def score(prompts, completions, **kwargs):\n    return [0.0 for _ in completions]\n"
BASE_JOBS: list[dict[str, Any]] = [
    {"method": {"name": "sft"}, "model": {"name_or_path": "org/model"}, "data": {"train": {"path": "org/dataset"}}},
    {
        "name": "dpo-run",
        "method": {"name": "dpo", "beta": 0.1},
        "model": {"name_or_path": "org/model"},
        "adapter": {"type": "lora", "r": 8, "alpha": 16},
        "data": {"train": {"path": "org/prefs"}},
        "training": {"learning_rate": 0.0001, "weight_decay": 0.01, "max_grad_norm": 1.0, "epochs": 2},
    },
    {
        "method": {"name": "grpo", "num_generations": 4, "kl_coef": 0.04, "rewards": ["my dir/r.py:score"]},
        "model": {"name_or_path": "org/model"},
        "data": {"train": {"path": "train.jsonl"}, "max_length": 1024},
        "training": {"global_batch_size": 8, "micro_batch_size": 4},
        "distributed": {"device": "cpu"},
        "backend_options": {"trl": {"logging_first_step": True, "beta": 0.0}},
    },
    {
        "method": {"name": "ppo", "reward_model": "org/rm"},
        "model": {"name_or_path": "org/model", "dtype": "bfloat16"},
        "data": {"train": {"path": "org/prompts"}},
        "output": {"dir": "runs", "save_steps": 10},
    },
]

# Where hostile values go: real fields of every kind, paths, the passthrough, and made-up keys.
TARGETS: list[tuple[str, ...]] = [
    ("name",),
    ("version",),
    ("method",),
    ("method", "name"),
    ("method", "beta"),
    ("method", "kl_coef"),
    ("method", "rewards"),
    ("method", "rewards", "0"),
    ("model", "name_or_path"),
    ("model", "chat_template"),
    ("adapter",),
    ("adapter", "type"),
    ("adapter", "init_path"),
    ("adapter", "target_modules"),
    ("data", "train", "path"),
    ("data", "eval"),
    ("data", "columns"),
    ("data", "max_length"),
    ("training",),
    ("training", "weight_decay"),
    ("training", "max_grad_norm"),
    ("training", "epochs"),
    ("training", "seed"),
    ("training", "global_batch_size"),
    ("training", "learning_rate"),
    ("distributed", "gpus_per_node"),
    ("output", "dir"),
    ("rollout",),
    # the settings real upstream jobs say (issue 12)
    ("data", "train", "subset"),
    ("data", "eval_split"),
    ("data", "format"),
    ("data", "message_keys"),
    ("data", "message_keys", "role"),
    ("data", "role_names"),
    ("data", "role_names", "human"),
    ("data", "prompt_in_answers"),
    ("model", "pad_token"),
    ("model", "eos_token"),
    ("training", "adam_beta2"),
    ("training", "adam_epsilon"),
    ("training", "min_lr_ratio"),
    ("training", "padding_free"),
    ("training", "max_tokens_per_micro_batch"),
    ("output", "saves_per_epoch"),
    ("output", "evals_per_epoch"),
    ("method", "kl_placement"),
    ("method", "kl_estimator"),
    ("method", "rollout_batch_size"),
    ("method", "epochs_per_rollout"),
    ("method", "max_prompt_length"),
    ("rollout", "server"),
    ("distributed", "strategy"),
    ("distributed", "pipeline_parallel_size"),
    ("backend_options",),
    ("backend_options", "trl"),
    ("backend_options", "trl", "x"),
    ("backend_options", "verl", "a", "b"),
]


class Raw:
    """Text placed into the rendered file verbatim (what json/yaml dumpers cannot write)."""

    def __init__(self, yaml_text: str, json_text: str | None = None) -> None:
        self.yaml_text = yaml_text
        self.json_text = yaml_text if json_text is None else json_text


def _huge_int(digits: int, sign: str) -> Raw:
    return Raw(sign + "9" * digits)


def _alias_bomb(levels: int, width: int) -> Raw:
    parts = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        parts.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return Raw("{" + ", ".join(parts) + "}", json_text="{}")


def _nested(depth: int, kind: str) -> Raw:
    if kind == "list":
        return Raw("[" * depth + "1" + "]" * depth)
    return Raw('{"a": ' * depth + "1" + "}" * depth)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
junk_values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12
)

hostile_text = st.one_of(
    st.sampled_from(
        [
            "",
            ".",
            "..",
            "../../x",
            "/etc/passwd",
            "a\x00b",
            "x\ny",
            "tab\there",
            "a[b]",
            "[key]",
            "function-after[x]",
            "list[str]",
            "a.b",
            "\u2028",
            "\x1b[31mred",
            "my dir/r.py:score",
            " r.py:score",
            "r.py:score\n",
            "r.py:",
            "m:f",
            "pkg.mod:fn",
            "~nosuchuser/x",
            "2024-01-01",
            "yes",
            "1e999",
            "{a}",
            "%s%n",
        ]
    ),
    st.builds(lambda n, c: c * n, st.integers(250, 6000), st.sampled_from(["a", "/", "é", "a/"])),
    st.builds(lambda n: "/" + "d/" * n + "f.jsonl", st.integers(1, 3000)),
    st.builds(lambda n: "k" * n, st.integers(1000, 120_000)),
    st.text(max_size=20),
)

raw_values = st.one_of(
    st.builds(_huge_int, st.integers(4000, 6000), st.sampled_from(["", "-"])),
    st.builds(lambda n: Raw("0x" + "f" * n, json_text="1"), st.integers(17, 5000)),
    st.builds(lambda n: Raw(str(2**n)), st.integers(62, 70)),
    st.sampled_from(
        [
            Raw(".inf", "Infinity"),
            Raw("-.inf", "-Infinity"),
            Raw(".nan", "NaN"),
            Raw(".NaN", "NaN"),
            Raw("1e999", "1e999"),
            Raw("-1e999", "-1e999"),
            Raw("2024-01-01", '"2024-01-01"'),
            Raw("2024-99-99", "1"),
            Raw("2001-12-14t21:59:43.10-05:00", "1"),
            Raw("!!binary aGVsbG8=", "1"),
            Raw("!!set {a, b}", "[]"),
            Raw("!!omap [a: 1, b: 2]", "[]"),
            Raw("!!python/object:os.system x", "1"),
            Raw("!foo bar", "1"),
            Raw("!!float x", "1"),
            Raw("{a: 1, a: 2}", '{"a": 1, "a": 2}'),
            Raw("{yes: 1, ~: 2, 3: 4}", '{"1": 2}'),
            Raw('"\\ud800"', '"\\ud800"'),
            Raw('"a\\0b"', '"a\\u0000b"'),
            Raw("&r [*r]", "[]"),
            Raw("&r {a: *r}", "{}"),
            Raw("{a: &v [1, 2], b: *v, c: *v}", '{"a": [1, 2]}'),
            Raw("*undefined", "1"),
            Raw("{<<: {a: 1}, b: 2}", '{"b": 2}'),
        ]
    ),
    st.builds(_alias_bomb, st.integers(2, 9), st.integers(2, 12)),
    st.builds(_nested, st.integers(10, 3000), st.sampled_from(["list", "dict"])),
)

hostile_keys = st.one_of(
    hostile_text,
    st.sampled_from(["dpo", "sft", "lora", "name", "type", "method", "trl", "[key]"]),
)

hostile_values = st.one_of(junk_values, hostile_text, raw_values)


@dataclass
class Case:
    text: bytes
    suffix: str

    def describe(self, limit: int = 400) -> str:
        shown = self.text[:limit].decode("utf-8", "backslashreplace")
        more = f" ... ({len(self.text):,} bytes in all)" if len(self.text) > limit else ""
        return f"[{self.suffix}] {shown!r}{more}"


def _set(job: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    """job[path] = value, making mappings along the way (a list met on the way gets item path[i])."""
    node: Any = job
    for key in path[:-1]:
        if isinstance(node, list):
            index = int(key) if key.isdigit() else 0
            if not node or index >= len(node) or not isinstance(node[index], (dict, list)):
                node.append({})
                index = len(node) - 1
            node = node[index]
            continue
        if not isinstance(node.get(key), (dict, list)):
            node[key] = {}
        node = node[key]
    last = path[-1]
    if isinstance(node, list):
        if last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        else:
            node.append(value)
    else:
        node[last] = value


def render(job: dict[str, Any], as_json: bool) -> str:
    """The job as JSON or YAML text, with every Raw value written verbatim."""
    raws: dict[str, Raw] = {}

    def swap(node: object) -> object:
        if isinstance(node, Raw):
            token = f"zzraw{len(raws)}zz"
            raws[token] = node
            return token
        if isinstance(node, dict):
            return {(swap(k) if isinstance(k, Raw) else k): swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    plain = swap(job)
    if as_json:
        text = json.dumps(plain, allow_nan=True)
    else:
        try:
            text = yaml.safe_dump(plain, allow_unicode=True, width=math.inf)
        except yaml.YAMLError:  # a string the emitter refuses (lone surrogates): JSON is YAML too
            text = json.dumps(plain, allow_nan=True)
    for token, raw in raws.items():
        literal = raw.json_text if as_json else raw.yaml_text
        text = text.replace(f'"{token}"', literal).replace(token, literal)
    return text


@st.composite
def hostile_jobs(draw: st.DrawFn) -> Case:
    """A valid job with hostile values at a few places, as JSON or YAML, sometimes damaged as text."""
    job = json.loads(json.dumps(draw(st.sampled_from(BASE_JOBS))))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(TARGETS))
        action = draw(st.sampled_from(["value", "value", "key", "delete", "junk"]))
        if action == "value":
            _set(job, path, draw(hostile_values))
        elif action == "key":
            parent = path[:-1] or ("training",)
            _set(job, (*parent, draw(hostile_keys)), draw(hostile_values | st.integers(0, 3)))
        elif action == "delete":
            job.pop(path[0], None)
        else:
            _set(job, path, draw(junk_values))
    as_json = draw(st.booleans())
    text = render(job, as_json)
    damage = draw(
        st.sampled_from(["none", "none", "none", "dup_top", "dup_nested", "truncate", "bad_utf8", "bom", "nul"])
    )
    if damage == "dup_top":
        section = draw(st.sampled_from(["training", "method", "model", "data", "name"]))
        if as_json:
            text = text.rstrip().rstrip("}") + f', "{section}": {{}}}}'
        else:
            text += f"\n{section}: {{}}\n"
    elif damage == "dup_nested":
        text = text.replace("{", '{"k": 1, "k": 2, ', 1) if as_json else text.replace("{", "{k: 1, k: 2, ", 1)
    elif damage == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    data = text.encode("utf-8", "surrogatepass")
    if damage == "bad_utf8":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + data[at:]
    elif damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "nul":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\x00" + data[at:]
    return Case(data, ".json" if as_json else draw(st.sampled_from([".yaml", ".yml"])))


random_files = st.builds(
    Case, st.binary(max_size=300) | st.text(max_size=300).map(str.encode), st.sampled_from([".json", ".yaml"])
)

# --- running a case ---------------------------------------------------------------------------

MAX_STDERR_CHARS = 40 * 600  # MAX_LINES lines of MAX_LINE_CHARS and the header, with room


def prepare_dir(folder: Path) -> None:
    """The files BASE_JOBS name (a reward file in a folder with a space, training data)."""
    (folder / "my dir").mkdir(parents=True, exist_ok=True)
    (folder / "my dir" / "r.py").write_text(REWARD_SOURCE)
    (folder / "train.jsonl").write_text('{"prompt": "1+1=", "ground_truth": "2"}\n')


@dataclass
class Outcome:
    kind: str  # "valid", "rejected" or "failure"
    code: int | None
    out: str
    err: str
    problem: str = ""


def run_case(folder: Path, case: Case, extra_args: tuple[str, ...] = ()) -> Outcome:
    """Write the case into folder and run `ptsdk validate` on it in this process."""
    from ptsdk.cli import main

    path = folder / f"job{case.suffix}"
    path.write_bytes(case.text)
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    problem = ""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["validate", str(path), *extra_args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else -1)
        except Exception:  # MemoryError and RecursionError included: each is a finding
            problem = traceback.format_exc()
    result = Outcome("failure", code, out.getvalue(), err.getvalue(), problem)
    if problem:
        return result
    if "Traceback (most recent call last)" in result.err:
        result.problem = "a traceback on stderr"
    elif code == 0:
        result.kind = "valid"
    elif code != 2:
        result.problem = f"exit code {code}, expected 0 or 2"
    elif not result.err.startswith("error:"):
        result.problem = "exit 2 but stderr does not start with 'error:'"
    elif len(result.err) > MAX_STDERR_CHARS:
        result.problem = f"stderr of {len(result.err):,} characters"
    else:
        result.kind = "rejected"
    return result
