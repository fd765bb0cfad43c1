"""Property-based: no malformed job file ever produces a traceback, only exit 0 or 2."""

from __future__ import annotations

import json

import yaml
from conftest import minimal_job
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ptsdk.errors import SpecError
from ptsdk.spec import load_job

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
