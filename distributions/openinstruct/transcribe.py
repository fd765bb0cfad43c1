"""Writes ptsdk_openinstruct/schema.py: the argument dataclasses of OpenInstruct's training scripts, read with `ast`
from a git snapshot of allenai/open-instruct, as pydantic models that forbid unknown keys.

    cd distributions/openinstruct
    python transcribe.py /path/to/open-instruct.git > ptsdk_openinstruct/schema.py && ruff format ptsdk_openinstruct

Nothing here imports OpenInstruct: the fields (names, annotations, defaults, ``choices``, enum values) are read from the
source at the snapshot's HEAD, so the schema is reproducible from the commit it names.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass

#: script -> the dataclasses its ``ArgumentParserPlus`` parses, as (module, class).
SCRIPTS = {
    "FinetuneArgs": (
        "open_instruct/finetune.py",
        [("open_instruct.finetune", "FlatArguments"), ("open_instruct.dataset_transformation", "TokenizerConfig")],
    ),
    "DpoTuneCacheArgs": (
        "open_instruct/dpo_tune_cache.py",
        [
            ("open_instruct.dpo_utils", "DPOExperimentConfig"),
            ("open_instruct.dataset_transformation", "TokenizerConfig"),
        ],
    ),
    "GrpoFastArgs": (
        "open_instruct/grpo_fast.py",
        [
            ("open_instruct.grpo_utils", "GRPOExperimentConfig"),
            ("open_instruct.dataset_transformation", "TokenizerConfig"),
            ("open_instruct.model_utils", "ModelConfig"),
            ("open_instruct.data_loader", "StreamingDataLoaderConfig"),
            ("open_instruct.data_loader", "VLLMConfig"),
            ("open_instruct.environments.tools.utils", "EnvsConfig"),
        ],
    ),
}
PLAIN = {"str", "int", "float", "bool", "dict", "list", "None", "Any", "Literal"}


@dataclass
class FieldSpec:
    name: str
    annotation: str
    default: str
    help: str


class Source:
    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.modules: dict[str, ast.Module] = {}

    def module(self, name: str) -> ast.Module:
        if name not in self.modules:
            path = name.replace(".", "/")
            text = self.show(f"{path}.py") or self.show(f"{path}/__init__.py")
            self.modules[name] = ast.parse(text or "")
        return self.modules[name]

    def show(self, path: str) -> str | None:
        out = subprocess.run(["git", "-C", self.repo, "show", f"HEAD:{path}"], capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else None

    def commit(self) -> str:
        return subprocess.run(
            ["git", "-C", self.repo, "log", "-1", "--format=%H"], capture_output=True, text=True
        ).stdout.strip()

    def resolve(self, module: str, name: str) -> tuple[str, ast.ClassDef | None]:
        """The class `name` (or `alias.name`) seen from `module`, following ``from open_instruct... import``."""
        tree = self.module(module)
        head, _, tail = name.partition(".")
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return module, node
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("open_instruct"):
                for alias in node.names:
                    local = alias.asname or alias.name
                    if tail and local == head:  # `from open_instruct import data_loader as data_loader_lib`
                        return self.resolve(f"{node.module}.{alias.name}", tail)
                    if not tail and local == name:
                        return self.resolve(node.module, alias.name)
        return module, None


def enum_values(cls: ast.ClassDef) -> list[str] | None:
    bases = {ast.unparse(b) for b in cls.bases}
    if not bases & {"enum.StrEnum", "StrEnum", "Enum", "enum.Enum", "str"}:
        return None
    return [
        n.value.value
        for n in cls.body
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
    ]


def fields_of(src: Source, module: str, cls: ast.ClassDef) -> dict[str, FieldSpec]:
    out: dict[str, FieldSpec] = {}
    for base in reversed(cls.bases):
        base_module, base_cls = src.resolve(module, ast.unparse(base))
        if base_cls is not None:
            out.update(fields_of(src, base_module, base_cls))
    body = cls.body
    for i, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        if name.startswith("_") or "ClassVar" in ast.unparse(node.annotation):
            continue
        default, help_text, choices, init = field_default(node.value)
        if not init:
            continue
        if not help_text and i + 1 < len(body):
            nxt = body[i + 1]
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                help_text = nxt.value.value
        annotation = annotation_of(src, module, node.annotation, choices)
        out[name] = FieldSpec(name, annotation, enum_default(src, module, default), " ".join(help_text.split()))
    return out


def field_default(value: ast.expr | None) -> tuple[str, str, list[object] | None, bool]:
    """(default as source, help, metadata choices, init) of a field's right-hand side."""
    if value is None:
        return "...", "", None, True
    if isinstance(value, ast.Call) and ast.unparse(value.func) in ("field", "dataclasses.field"):
        kw = {k.arg: k.value for k in value.keywords}
        init = not (isinstance(kw.get("init"), ast.Constant) and kw["init"].value is False)  # type: ignore[union-attr]
        help_text, choices = "", None
        meta = kw.get("metadata")
        if isinstance(meta, ast.Dict):
            for k, v in zip(meta.keys, meta.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "help":
                    help_text = literal(v) or ""
                if isinstance(k, ast.Constant) and k.value == "choices":
                    choices = literal(v)
        if "default" in kw:
            return ast.unparse(kw["default"]), help_text, choices, init
        factory = kw.get("default_factory")
        if isinstance(factory, ast.Lambda):
            return ast.unparse(factory.body), help_text, choices, init
        if factory is not None:
            return f"{ast.unparse(factory)}()", help_text, choices, init
        return "...", help_text, choices, init
    return ast.unparse(value), "", None, True


def literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def annotation_of(src: Source, module: str, node: ast.expr, choices: list[object] | None) -> str:
    if choices:
        return f"Literal[{', '.join(repr(c) for c in choices)}]"
    text = ast.unparse(node)
    for name in sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - PLAIN, key=len, reverse=True):
        _, cls = src.resolve(module, name)
        values = enum_values(cls) if cls is not None else None
        text = text.replace(name, f"Literal[{', '.join(repr(v) for v in values)}]" if values else "Any")
    for node_ in ast.walk(node):
        if isinstance(node_, ast.Attribute):  # e.g. `data_types.Foo`: not something a command line can carry
            text = text.replace(ast.unparse(node_), "Any")
    return text


def enum_default(src: Source, module: str, default: str) -> str:
    """A default that is an enum member (`DPOLossType.dpo_norm`) as its value; a computed default as COMPUTED
    (pydantic does not validate defaults; the command line never reads them)."""
    try:
        ast.literal_eval(default)
        return default
    except (ValueError, SyntaxError):
        pass
    head, _, member = default.partition(".")
    _, cls = src.resolve(module, head)
    if cls is not None and member and enum_values(cls) is not None:
        for n in cls.body:
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == member for t in n.targets):
                return repr(literal(n.value))
    return "COMPUTED"


def render(src: Source) -> str:
    commit = src.commit()
    lines = [
        "# ruff: noqa: E501",
        f'"""OpenInstruct\'s training-script arguments, transcribed from github.com/allenai/open-instruct@{commit}.',
        "",
        "Generated by distributions/openinstruct/transcribe.py from the argument dataclasses each script hands to",
        "ArgumentParserPlus (transformers' HfArgumentParser): "
        + ", ".join(f"{script} ({' + '.join(c for _, c in classes)})" for script, classes in SCRIPTS.values())
        + ".",
        "Field names, annotations, defaults, ``choices`` and enum values are the source's; a computed default is",
        "COMPUTED here, and a type defined outside OpenInstruct (OLMo-core's enums) is Any.",
        "Do not edit by hand: rerun the transcription against a new commit.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any, Literal",
        "",
        "from pydantic import BaseModel, ConfigDict, Field",
        "",
        f'COMMIT = "{commit}"',
        "#: The default of a field whose default the source computes (not a literal): a command line never reads it.",
        "COMPUTED: Any = None",
        "",
    ]
    for model, (script, classes) in SCRIPTS.items():
        fields: dict[str, FieldSpec] = {}
        for module, name in classes:
            mod, cls = src.resolve(module, name)
            if cls is None:
                raise SystemExit(f"{module}.{name} not found")
            fields.update(fields_of(src, mod, cls))
        lines += [
            "",
            f"class {model}(BaseModel):",
            f'    """The command line of {script}: {", ".join(c for _, c in classes)}."""',
            "",
            '    model_config = ConfigDict(extra="forbid")',
            "",
        ]
        for f in sorted(fields.values(), key=lambda f: f.name):
            desc = f", description={f.help!r}" if f.help else ""
            lines.append(f"    {f.name}: {f.annotation} = Field(default={f.default}{desc})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(Source(sys.argv[1])))
