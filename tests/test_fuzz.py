"""Property-based: no malformed job file ever produces a traceback, only exit 0 or 2.

The hostile cases (huge integers, NaN, duplicate keys, NUL and control characters, odd and huge keys,
YAML tags and alias bombs, deep nesting, wrong types, damaged text) live in tools/fuzzing.py, shared
with the longer standalone run `tools/fuzz_jobs.py --cases 10000`."""

from __future__ import annotations

import json
import sys

import yaml
from conftest import ROOT, minimal_job
from hypothesis import HealthCheck, given, settings, strategies as st
from ptsdk.errors import SpecError
from ptsdk.spec import load_job

sys.path.insert(0, str(ROOT / "tools"))
from fuzzing import Case, hostile_jobs, prepare_dir, random_files, run_case  # noqa: E402

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=12)
values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12
)
KEYS = ["method", "model", "data", "training", "distributed", "adapter", "output", "version", "name", "backend_options"]


@st.composite
def mutated_jobs(draw) -> dict:  # type: ignore[no-untyped-def]
    """A valid job with random sections replaced, removed or given junk keys."""
    job = minimal_job(method={"name": draw(st.sampled_from(["sft", "dpo", "grpo", "kto", "ppo", "x"]))})
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=4)):
        action = draw(st.sampled_from(["replace", "delete", "junk"]))
        if action == "replace":
            job[key] = draw(values)
        elif action == "delete":
            job.pop(key, None)
        elif isinstance(job.get(key), dict):
            job[key][draw(st.text(min_size=1, max_size=6))] = draw(values)
    return job


def outcome(tmp_path, text: str, suffix: str) -> None:
    path = tmp_path / f"job{suffix}"
    path.write_text(text)
    try:
        load_job(path, check_files=False)
    except SpecError as exc:
        assert exc.exit_code == 2 and exc.render().startswith("error:")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job=mutated_jobs(), as_json=st.booleans())
def test_mutated_jobs_never_traceback(tmp_path, job: dict, as_json: bool) -> None:
    text = json.dumps(job, allow_nan=True) if as_json else yaml.safe_dump(job)
    outcome(tmp_path, text, ".json" if as_json else ".yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200), suffix=st.sampled_from([".json", ".yaml"]))
def test_random_text_never_tracebacks(tmp_path, text: str, suffix: str) -> None:
    outcome(tmp_path, text, suffix)


def through_cli(tmp_path, case: Case) -> None:
    """`ptsdk validate` on the case, in-process: exit 0, or exit 2 with a bounded `error:` message."""
    if not (tmp_path / "my dir").exists():
        prepare_dir(tmp_path)
    result = run_case(tmp_path, case)
    assert result.kind != "failure", f"{result.problem}\n{case.describe()}\nstderr: {result.err[:2000]}"


HOSTILE = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@HOSTILE
@given(case=hostile_jobs())
def test_hostile_jobs_through_the_cli(tmp_path, case: Case) -> None:
    through_cli(tmp_path, case)


@settings(HOSTILE, max_examples=150)
@given(case=random_files)
def test_random_bytes_through_the_cli(tmp_path, case: Case) -> None:
    through_cli(tmp_path, case)
