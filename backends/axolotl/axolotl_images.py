#!/usr/bin/env python
"""ptsdk's image records -> the records Axolotl's multimodal collator reads. Runs in Axolotl's environment.

    python axolotl_images.py axolotl_images.json     # a Plan `prepare` command, in the run directory

Axolotl 0.19 reads a record's images from message parts ({type: image, path|url|image|base64}) and from an
`images` column, but takes only the column's first image and appends it after the first user turn's text
(axolotl/processing_strategies.py:263-335). ptsdk's spec puts a string content's images before that text and
allows several: so every image becomes a {type: image, path} part with an absolute path, where the spec places
it (ptsdk_runtime.image_parts), and the messages are canonical (the job's message_keys and role_names applied).

axolotl_images.json: {"messages": column, "images": column, "folder": data.images.root or null, "message_keys",
"role_names", "splits": {name: {"path", "max_samples", "out"}}}. Exit 2 with `data.<split>.path: line N:
problem` lines; nothing is written for a split with a bad record.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from ptsdk_runtime import canonical_messages, image_parts, iter_records  # copied beside this file


def convert_split(spec: dict[str, Any], split: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    local = split["path"].endswith((".jsonl", ".json", ".parquet"))
    folder = spec.get("folder") or (os.path.dirname(os.path.abspath(split["path"])) if local else None)
    rows, problems = [], []
    for where, record in iter_records(split["path"], limit=split.get("max_samples")):
        if isinstance(record, Exception):  # a line that is not JSON
            problems.append(f"{where}: {record}")
        elif not isinstance(record, dict) or not isinstance(record.get(spec["messages"]), list):
            problems.append(f"{where}: no {spec['messages']} list")
        else:
            rows += _converted(spec, where, record, folder, problems)
    return rows, problems


def _converted(
    spec: dict[str, Any], where: str, record: dict[str, Any], folder: str | None, problems: list[str]
) -> list[dict[str, Any]]:
    messages = canonical_messages(record[spec["messages"]], spec.get("message_keys"), spec.get("role_names"))
    try:
        return [{"messages": image_parts(messages, record.get(spec["images"]), folder)}]
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return []


def convert(spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, split in spec["splits"].items():
        rows, bad = convert_split(spec, split)
        problems += [f"data.{name}.path: {p}" for p in bad]
        if bad:
            continue
        os.makedirs(os.path.dirname(split["out"]) or ".", exist_ok=True)
        partial = split["out"] + ".partial"
        with open(partial, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        os.replace(partial, split["out"])
    return problems


def main(argv: list[str]) -> int:
    with open(argv[0]) as f:
        problems = convert(json.load(f))
    for p in problems:
        print(p, file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
