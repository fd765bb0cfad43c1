"""OpenRLHF's data preparation (backends/openrlhf/prepare_openrlhf.py) on mapped messages and conversations holding
their prompt, record by record, without the framework: what each record becomes and the line a bad one gets.
(tests/backends/test_openrlhf.py runs the prepared files through OpenRLHF's own datasets and a CPU training.)"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pytest
from ptsdk.plugins import runtime

# The preparation step imports ptsdk_runtime from the run directory, where ptsdk copies plugins/runtime.py.
sys.modules.setdefault("ptsdk_runtime", runtime)
prepare = importlib.import_module("ptsdk.backends.openrlhf.prepare_openrlhf")

SHAREGPT = {"message_keys": {"role": "from", "content": "value"}, "role_names": {"human": "user", "gpt": "assistant"}}


def spec(family: str, fmt: str, **more: Any) -> dict[str, Any]:
    return {"family": family, "format": fmt, "chat": True, "columns": {}, **more}


def turn(who: str, text: str, **more: Any) -> dict[str, Any]:
    return {"from": who, "value": text, **more}


def test_sharegpt_messages_become_role_content_with_reasoning() -> None:
    keys = {**SHAREGPT["message_keys"], "thinking": "thoughts"}
    record = {"messages": [turn("human", "2+2?"), turn("gpt", "4", thoughts="two and two", weight=1)]}
    out = prepare.convert(spec("sft", "messages", message_keys=keys, role_names=SHAREGPT["role_names"]), record)
    assert out == {
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "two and two"},
        ]
    }


def test_without_a_mapping_messages_pass_as_they_are() -> None:
    record = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4", "weight": 1}]}
    assert prepare.convert(spec("sft", "messages"), record) == record


def test_rl_prompts_and_preference_turns_are_mapped() -> None:
    rl = prepare.convert(spec("rl", "prompt", **SHAREGPT), {"prompt": [turn("human", "2+2?")], "ground_truth": "4"})
    assert rl["prompt"] == [{"role": "user", "content": "2+2?"}] and '"ground_truth": "4"' in rl["ptsdk_columns"]
    pref = prepare.convert(
        spec("preference", "preference", **SHAREGPT),
        {"prompt": [turn("human", "2+2?")], "chosen": [turn("gpt", "4")], "rejected": "5"},
    )
    assert pref["chosen"] == [{"role": "assistant", "content": "4"}]
    assert pref["rejected"] == [{"role": "assistant", "content": "5"}]  # a string: wrapped as before


def test_the_shared_leading_turns_are_the_prompt() -> None:
    system, user = turn("system", "Be brief."), turn("human", "2+2?")
    record = {
        "chosen": [system, user, turn("gpt", "4"), turn("human", "and 3+3?"), turn("gpt", "6")],
        "rejected": [system, user, turn("gpt", "5")],
    }
    out = prepare.convert(spec("preference", "preference", prompt_in_answers=True, **SHAREGPT), record)
    assert [m["role"] for m in out["prompt"]] == ["system", "user"]
    assert [m["content"] for m in out["chosen"]] == ["4", "and 3+3?", "6"]
    assert out["rejected"] == [{"role": "assistant", "content": "5"}]


@pytest.mark.parametrize(
    "settings, record, line",
    [
        (SHAREGPT, {"messages": [turn("bot", "hi")]}, "messages.0.from: 'bot' is none of system, user, assistant"),
        (SHAREGPT, {"messages": [turn("human", 3)]}, "messages.0.value: expected a string, got int"),
        (SHAREGPT, {"messages": ["hi"]}, "messages: expected a list of {'from', 'value'} objects"),
        (
            {**SHAREGPT, "prompt_in_answers": True},
            {"chosen": [turn("human", "a"), turn("gpt", "b")], "rejected": [turn("human", "c"), turn("gpt", "d")]},
            "chosen/rejected: their first turns differ, so they share no prompt",
        ),
        (
            {"prompt_in_answers": True},
            {"chosen": "b", "rejected": "d"},
            "chosen: data.prompt_in_answers needs whole conversations (message lists), got str",
        ),
    ],
)
def test_bad_records_name_the_data_key(settings: dict[str, Any], record: dict[str, Any], line: str) -> None:
    family = "preference" if "chosen" in record else "sft"
    fmt = "preference" if family == "preference" else "messages"
    with pytest.raises(prepare.BadRecord) as err:
        prepare.convert(spec(family, fmt, **settings), record)
    assert str(err.value).startswith(line), str(err.value)
