"""ptsdk's canonical records as the columns OpenInstruct's transforms read (run in the run directory before launch).

    python prepare_openinstruct.py openinstruct_data.json

SFT (sft_tulu_tokenize_and_truncate_v1): a ``messages`` list. Preference (preference_tulu_tokenize_and_truncate_v1):
``chosen`` and ``rejected`` as whole conversations, the prompt turns first (open_instruct/dataset_transformation.py).
Standard library only, so it runs in any interpreter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ALPACA = (
    "Below is an instruction that describes a task{context}. Write a response that appropriately completes the "
    "request.\n\n### Instruction:\n{instruction}\n\n{input}### Response:\n"
)


def turns(value: Any, role: str) -> list[dict[str, Any]]:
    """A prompt or an answer as a list of messages (a string becomes one turn of `role`)."""
    return list(value) if isinstance(value, list) else [{"role": role, "content": str(value)}]


def convert(record: dict[str, Any], fmt: str) -> dict[str, Any]:
    if fmt == "messages":
        return {"messages": record["messages"]}
    if fmt == "prompt_completion":
        return {"messages": turns(record["prompt"], "user") + turns(record["completion"], "assistant")}
    if fmt == "instruction":
        extra = record.get("input") or ""
        text = ALPACA.format(
            context=", paired with an input that provides further context" if extra else "",
            instruction=record["instruction"],
            input=f"### Input:\n{extra}\n\n" if extra else "",
        )
        return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": record["output"]}]}
    if fmt == "preference":
        prompt = turns(record["prompt"], "user")
        return {
            "chosen": prompt + turns(record["chosen"], "assistant"),
            "rejected": prompt + turns(record["rejected"], "assistant"),
        }
    raise SystemExit(f"prepare_openinstruct.py: records of format {fmt!r} are not converted")


def records(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # in OpenInstruct's environment through datasets

        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
        return list(data) if isinstance(data, list) else [data]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    for source, target in spec["files"]:
        out = Path(target)
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = records(Path(source))[: spec.get("max_samples") or None]
        out.write_text("".join(json.dumps(convert(r, spec["format"])) + "\n" for r in rows))


if __name__ == "__main__":
    main(sys.argv[1])
