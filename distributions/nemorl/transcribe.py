"""Writes ptsdk_nemorl/schema.py: NeMo RL's config classes reachable from each algorithm's ``MasterConfig``, read with
`ast` from a git snapshot of NVIDIA-NeMo/RL, with every class closed to unknown keys.

    cd distributions/nemorl
    python transcribe.py /path/to/RL.git > ptsdk_nemorl/schema.py && ruff format ptsdk_nemorl

NeMo RL validates a run's config with pydantic (``MasterConfig(**config)`` in examples/run_*.py), but its models are
``extra="allow"`` and its TypedDicts ignore unknown keys, so a misspelled key passes. Here each TypedDict keeps its
fields (annotations, ``NotRequired``, ``total=``) and gets ``__pydantic_config__ = ConfigDict(extra="forbid")``; each
BaseModel gets ``extra="forbid"``; two exceptions are explained where they are made (FOLDED, disabled sections).
A name NeMo RL imports from elsewhere (torch, Megatron) becomes Any; a class name
used by two modules gets the module's name as a suffix.
"""

from __future__ import annotations

import ast
import subprocess
import sys

ALGORITHMS = ("sft", "dpo", "rm", "grpo", "ppo")
#: TypedDicts that NeMo RL's generation backends extend (vLLM, Megatron, SGLang, TensorRT-LLM), each with its own keys:
#: its example configs hold the keys of several backends in one ``policy.generation`` section, so the transcription
#: folds every subclass's keys into the base, as optional keys.
FOLDED = ("GenerationConfig",)
TYPING = {
    "Any", "Literal", "NotRequired", "Required", "Optional", "Union", "Annotated", "TypedDict", "BaseModel", "Field",
    "list", "dict", "tuple", "set", "str", "int", "float", "bool", "None", "object", "ConfigDict",
    "PositiveInt", "NonNegativeInt", "PositiveFloat", "NonNegativeFloat",
}  # fmt: skip


class Source:
    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.trees: dict[str, ast.Module] = {}

    def tree(self, module: str) -> ast.Module:
        if module not in self.trees:
            path = module.replace(".", "/")
            text = self.show(f"{path}.py")
            if text is None:
                text = self.show(f"{path}/__init__.py")
            self.trees[module] = ast.parse(text or "")
        return self.trees[module]

    def show(self, path: str) -> str | None:
        out = subprocess.run(["git", "-C", self.repo, "show", f"HEAD:{path}"], capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else None

    def subclasses(self, name: str) -> list[tuple[str, ast.ClassDef]]:
        """Classes in nemo_rl whose only base is `name`."""
        out = subprocess.run(
            ["git", "-C", self.repo, "grep", "-lE", rf"^class \w+\({name}\):", "HEAD", "--", "nemo_rl"],
            capture_output=True,
            text=True,
        )
        found = []
        for line in sorted(out.stdout.split()):
            module = line.split(":", 1)[1].removesuffix(".py").replace("/", ".")
            for node in self.tree(module).body:
                if isinstance(node, ast.ClassDef) and [ast.unparse(b) for b in node.bases] == [name]:
                    found.append((module, node))
        return found

    def commit(self) -> str:
        out = subprocess.run(["git", "-C", self.repo, "log", "-1", "--format=%H"], capture_output=True, text=True)
        return out.stdout.strip()

    def find(self, module: str, name: str) -> tuple[str, ast.stmt] | None:
        """The definition of `name` seen from `module`: a class or an alias, following nemo_rl imports."""
        for node in self.tree(module).body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return module, node
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return module, node
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                return module, node
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nemo_rl"):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return self.find(node.module, alias.name)
        return None


class Transcriber:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.emitted: dict[tuple[str, str], str] = {}
        self.names: set[str] = set()
        self.out: list[str] = []
        self.typeddicts: set[str] = set()

    def name_for(self, module: str, name: str) -> str:
        """The transcribed name of `name` as seen from `module` ("Any" for what NeMo RL does not define)."""
        if name in TYPING:
            return name
        found = self.src.find(module, name)
        if found is None:
            return "Any"
        where, node = found
        key = (where, getattr(node, "name", name))
        if key in self.emitted:
            return self.emitted[key]
        new = key[1] if key[1] not in self.names else f"{key[1]}_{where.rsplit('.', 1)[-1]}"
        self.names.add(new)
        self.emitted[key] = new
        self.emit(where, node, new)
        return new

    def rewrite(self, module: str, node: ast.AST, annotation: bool = True) -> ast.AST:
        """`node` with NeMo RL's names replaced by their transcribed names; in an annotation, strings are forward
        references (rewritten too), in a default value they are values."""
        outer = self

        class Names(ast.NodeTransformer):
            def visit_Name(self, n: ast.Name) -> ast.AST:
                return ast.copy_location(ast.Name(outer.name_for(module, n.id), n.ctx), n)

            def visit_Attribute(self, n: ast.Attribute) -> ast.AST:
                return ast.copy_location(ast.Name("Any", n.ctx), n)  # e.g. torch.dtype

            def visit_Subscript(self, n: ast.Subscript) -> ast.AST:
                if isinstance(n.value, ast.Name) and n.value.id == "Literal":
                    return n  # its strings are values, not forward references
                new = self.generic_visit(n)
                if isinstance(new, ast.Subscript) and isinstance(new.value, ast.Name) and new.value.id == "Any":
                    return ast.copy_location(ast.Name("Any", ast.Load()), n)  # Callable[...], os.PathLike[...]
                return new

            def visit_Constant(self, n: ast.Constant) -> ast.AST:
                if isinstance(n.value, str) and n is not node and self.in_annotation:
                    try:
                        return outer.rewrite(module, ast.parse(n.value, mode="eval").body)
                    except SyntaxError:
                        return n
                return n

            in_annotation = annotation

        return Names().visit(node)

    def emit(self, module: str, node: ast.stmt, name: str) -> None:
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(b) for b in node.bases}
            if bases & {"Enum", "str, Enum", "enum.Enum", "StrEnum"} or any("Enum" in b for b in bases):
                values = [
                    repr(n.value.value)
                    for n in node.body
                    if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                ]
                self.out.append(f"{name} = Literal[{', '.join(values)}]\n")
                return
            body: list[str] = []
            parents = [b for b in (ast.unparse(b) for b in node.bases) if b not in ("TypedDict", "BaseModel")]
            resolved = [self.name_for(module, p) for p in parents]
            typed = "TypedDict" in bases or any(r in self.typeddicts for r in resolved)
            if typed:
                self.typeddicts.add(name)
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    annotation = ast.unparse(self.rewrite(module, stmt.annotation))
                    value = "" if stmt.value is None else f" = {ast.unparse(self.rewrite(module, stmt.value, False))}"
                    body.append(f"    {stmt.target.id}: {annotation}{value}")
            if typed and node.name in FOLDED:
                for sub_module, sub in self.src.subclasses(node.name):
                    for stmt in sub.body:
                        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                            annotation = ast.unparse(self.rewrite(sub_module, stmt.annotation))
                            if not annotation.startswith("NotRequired["):
                                annotation = f"NotRequired[{annotation}]"
                            body.append(f"    {stmt.target.id}: {annotation}  # {sub.name}")
            total = [f"total={ast.unparse(k.value)}" for k in node.keywords if k.arg == "total"]
            if typed:
                head = ", ".join([*resolved, "TypedDict", *total]) if not resolved else ", ".join([*resolved, *total])
                # A disabled section (only `enabled: Literal[False]`) keeps the settings NeMo RL's own examples leave
                # in it (examples/configs/sft.yaml lora_cfg): NeMo RL never reads them, so they stay allowed.
                disabled = body == ["    enabled: Literal[False]"]
                extra = "allow" if disabled else "forbid"
                body.insert(0, f'    __pydantic_config__ = ConfigDict(extra="{extra}")')
            else:
                head = ", ".join([*(resolved or ["BaseModel"]), 'extra="forbid"'])
            self.out.append(f"class {name}({head}):\n" + ("\n".join(body) or "    pass") + "\n")
            return
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        self.out.append(f"{name} = {ast.unparse(self.rewrite(module, value)) if value is not None else 'Any'}\n")


def render(src: Source) -> str:
    t = Transcriber(src)
    masters = {a: t.name_for(f"nemo_rl.algorithms.{a}", "MasterConfig") for a in ALGORITHMS}
    commit = src.commit()
    head = [
        "# ruff: noqa: E501, UP007, UP045, F401",  # the source's own spelling; the header imports what any commit needs
        '# mypy: disable-error-code="misc, typeddict-item"',  # __pydantic_config__ in a TypedDict, redeclared keys
        f'"""NeMo RL\'s run configs, transcribed from github.com/NVIDIA-NeMo/RL@{commit}.',
        "",
        "Generated by distributions/nemorl/transcribe.py from the classes reachable from each algorithm's MasterConfig",
        f"(nemo_rl/algorithms/{{{','.join(ALGORITHMS)}}}.py), closed to unknown keys (NeMo RL's own allow or ignore",
        "them), except a disabled section (only `enabled: Literal[False]`), which keeps the settings NeMo RL's",
        "examples leave in it, and GenerationConfig, which holds the keys of every generation backend extending it.",
        "Names NeMo RL takes from other packages are Any. Do not edit by hand: rerun the transcription.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Annotated, Any, Literal, Optional, Union",
        "",
        "from pydantic import BaseModel, ConfigDict, Field, "
        + "NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt",
        "from typing_extensions import NotRequired, Required, TypedDict",
        "",
        f'COMMIT = "{commit}"',
        "",
    ]
    tail = ["", "#: Each algorithm's MasterConfig.", "MASTER_CONFIGS: dict[str, type[BaseModel]] = {"]
    tail += [f'    "{a}": {name},' for a, name in masters.items()]
    tail.append("}")
    return "\n".join(head) + "\n\n" + "\n\n".join(t.out) + "\n".join(tail) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(Source(sys.argv[1])))
