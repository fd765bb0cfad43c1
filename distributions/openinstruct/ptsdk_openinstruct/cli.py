"""A generated command line read as OpenInstruct's HfArgumentParser reads it, then checked against the transcribed
dataclasses (schema.py): every flag a field of the script's dataclasses, every value of the field's type.

HfArgumentParser (transformers/hf_argparser.py) makes ``--name VALUE`` of every field, ``--name V1 V2 ...`` of a list
field, ``--name`` alone (or ``--name true|false``) of a bool and ``--no_name`` of a bool that defaults to True.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

TRUE, FALSE = ("true", "yes", "t", "y", "1"), ("false", "no", "f", "n", "0")


def _kind(model: type[BaseModel], name: str) -> str:
    """'list', 'bool' or 'value': what the field's flag takes."""
    annotation = model.model_fields[name].annotation
    if annotation is bool:
        return "bool"
    options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    options = tuple(a for a in options if a is not type(None))
    return "list" if all(a is list or get_origin(a) is list for a in options) else "value"


def parse_command_line(args: list[str], model: type[BaseModel]) -> tuple[dict[str, Any], list[str]]:
    """The flags as field values, and the flags the script's parser would refuse."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    i = 0
    while i < len(args):
        flag = args[i]
        if not flag.startswith("--"):
            problems.append(f"{flag}: a value without a flag")
            i += 1
            continue
        name, _, inline = flag[2:].partition("=")
        j = i + 1
        while j < len(args) and not args[j].startswith("--"):
            j += 1
        given = ([inline] if inline else []) + args[i + 1 : j]
        i = j
        negated = name.startswith("no_") and name[3:] in model.model_fields and name not in model.model_fields
        field = name[3:] if negated else name
        if field not in model.model_fields:
            problems.append(f"--{name}: not an argument of this script")
            continue
        if field in values:
            problems.append(f"--{name}: given twice")
        kind = _kind(model, field)
        if negated:
            values[field] = False
        elif kind == "list":
            values[field] = given
        elif kind == "bool" and not given:
            values[field] = True
        elif len(given) != 1:
            problems.append(f"--{name}: takes one value, got {len(given)}")
        elif kind == "bool" and given[0].lower() not in TRUE + FALSE:
            problems.append(f"--{name}: {given[0]!r} is not a boolean")
        else:
            values[field] = given[0].lower() in TRUE if kind == "bool" else given[0]
    return values, problems


def command_line_problems(args: list[str], model: type[BaseModel]) -> list[str]:
    """Why the script's parser (the transcribed dataclasses) would refuse `args`; empty when it accepts them."""
    values, problems = parse_command_line(args, model)
    try:
        model.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"--{where}: {err['msg']}")
    return problems
