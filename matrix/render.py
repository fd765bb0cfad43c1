"""The matrix as rows, and as a terminal table, markdown or JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptsdk.matrix.capability import KINDS, Capability

if TYPE_CHECKING:
    from ptsdk.plugins.backend import Backend

MARK = {"trained": "trained", "validated": "validated", "declared": "declared"}


@dataclass
class Row:
    kind: str
    name: str
    cells: dict[str, Capability | None]


def build_rows(
    backends: Mapping[str, type[Backend]],
    *,
    kind: str | None = None,
    method: str | None = None,
    verified: str | None = None,
    only_keys: set[tuple[str, str]] | None = None,
) -> list[Row]:
    from ptsdk.matrix.check import KNOWN_KEYS

    keys: set[tuple[str, str]] = set(KNOWN_KEYS)
    for cls in backends.values():
        keys |= {c.key for c in cls.capabilities}
    rows = []
    for k, n in sorted(keys, key=lambda key: (KINDS.index(key[0]), key[1])):
        if kind and k != kind:
            continue
        if only_keys is not None and (k, n) not in only_keys:
            continue
        if method and not ((k == "method" and n == method) or (k == "loss" and n.startswith(method + ":"))):
            continue
        cells = {b: next((c for c in cls.capabilities if c.key == (k, n)), None) for b, cls in backends.items()}
        if verified and not any(c is not None and c.verified.value == verified for c in cells.values()):
            continue
        rows.append(Row(k, n, cells))
    return rows


def to_json(backends: Mapping[str, type[Backend]], rows: list[Row]) -> str:
    return json.dumps(
        {
            "backends": {
                name: {
                    "framework": cls.framework,
                    "verified_with": cls.verified_with,
                    "translates": cls.translates,
                    "schema_source": cls.schema_source,
                }
                for name, cls in backends.items()
            },
            "capabilities": [
                {
                    "kind": r.kind,
                    "name": r.name,
                    "backends": {
                        b: None if c is None else {"verified": c.verified.value, "evidence": c.evidence, "note": c.note}
                        for b, c in r.cells.items()
                    },
                }
                for r in rows
            ],
        },
        indent=2,
    )


def to_markdown(backends: Mapping[str, type[Backend]], rows: list[Row]) -> str:
    names = list(backends)
    lines = ["| capability | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for r in rows:
        cells = [MARK[c.verified.value] if c else "-" for c in r.cells.values()]
        lines.append(f"| {r.kind} {r.name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "trained: a test trains with the framework on CPU; validated: the framework's own "
        "validator accepts ptsdk's output; declared: documented, not run here; -: not supported."
    )
    lines += [f"{line}." for line in schema_notes(backends)]
    return "\n".join(lines)


def schema_notes(backends: Mapping[str, type[Backend]]) -> list[str]:
    """One line per backend whose framework installs only from git: where its schema was read."""
    return [
        f"{name}: git only; translations checked against the schema read from {cls.schema_source}"
        for name, cls in backends.items()
        if cls.schema_source
    ]


def print_table(backends: Mapping[str, type[Backend]], rows: list[Row]) -> None:
    from ptsdk.console import console as make_console
    from rich.table import Table

    style = {"trained": "green", "validated": "cyan", "declared": "yellow"}
    table = Table(title="ptsdk capability matrix", title_justify="left")
    table.add_column("kind", style="dim")
    table.add_column("capability")
    for name, cls in backends.items():
        version, _, commit = cls.verified_with.get(cls.framework, "").partition("@")
        if commit:  # the whole commit is in the notes below the table
            version = f"{version}@{commit[:7]}"
        elif len(version) == 40 and all(c in "0123456789abcdef" for c in version):
            version = version[:7]
        table.add_column(f"{name}\n{version}".strip(), justify="center", min_width=len(name))
    last_kind = None
    for r in rows:
        cells = [f"[{style[c.verified.value]}]{c.verified.value}[/]" if c else "[dim]-[/]" for c in r.cells.values()]
        table.add_row(r.kind if r.kind != last_kind else "", r.name, *cells, end_section=False)
        last_kind = r.kind
    console = make_console()
    console.print(table)
    console.print(
        "[green]trained[/]: trained with the framework on CPU in a test  "
        "[cyan]validated[/]: the framework's own validator accepts ptsdk's output  "
        "[yellow]declared[/]: documented, not run here"
    )
    for line in schema_notes(backends):
        console.print(line, highlight=False)
