"""OpenRLHF's own validation of a ptsdk translation, run by ptsdk's check harness in its environment.

OpenRLHF 0.11.2 builds each CLI's parser under ``if __name__ == "__main__":`` and its modules
import flash_attn or vllm at load time, so neither ``--help`` nor importing works without a GPU
build. This script reads the module's source instead and runs OpenRLHF's own code on the
generated command line:

1. the ``__main__`` block, verbatim, with argparse's abbreviations off (an abbreviated or
   unknown flag is an error, where OpenRLHF's parser would accept ``--train.micro``) and
   ``train`` replaced by a function that keeps the parsed arguments: so the parser and every
   check the main block runs after parsing (asserts, the values it rewrites) run as written;
2. the asserts of the module's ``train`` function that depend on the arguments only (GPU
   counts of colocated roles, say), lifted with the ``if`` statements around them;
3. prepare_openrlhf.py (the run's preparation step) on the data, and the reward on a sample.
4. With images (a local vision-language model): the prepared prompts through OpenRLHF's own loading
   (``blending_datasets``, ``PromptDataset`` with the parsed arguments, the processor ``get_tokenizer`` loads) and
   tokenized with their images by ``process_prompt_with_images``, as its agent does before vLLM generates: every
   image must load (OpenRLHF only warns) and every prompt must fit ``--data.max_len - --rollout.max_new_tokens``
   tokens with its image tokens, since OpenRLHF refuses to cut a VLM prompt (openrlhf/utils/agent.py:227-233).

The harness checks the launcher's arguments with the launcher's own parser (DeepSpeed's, or Ray's
``ray job submit``).
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import importlib.util
import io
import json
import sys
import types
from typing import Any

VERSIONS = ("openrlhf", "deepspeed", "ray", "transformers", "torch", "peft", "datasets")


class Rejected(Exception):
    """OpenRLHF's parser refused the command line."""


class StrictParser(argparse.ArgumentParser):
    """OpenRLHF's parser as written, but without prefix matching and raising instead of exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        raise Rejected(message)


def strict_argparse() -> types.ModuleType:
    """A stand-in `argparse` module whose ArgumentParser is the strict one."""
    shim = types.ModuleType("argparse")
    shim.__dict__.update(vars(argparse))
    shim.ArgumentParser = StrictParser  # type: ignore[attr-defined]
    return shim


def module_source(module: str) -> tuple[str, ast.Module]:
    """The installed module's file and syntax tree (its parents are imported; it is not)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ImportError(f"{module} is not installed")
    with open(spec.origin, encoding="utf-8") as f:
        return spec.origin, ast.parse(f.read(), spec.origin)


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    return (
        isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _stdlib_imports(tree: ast.Module) -> list[ast.stmt]:
    """The module's top-level imports of the standard library (argparse, os, datetime, math...)."""
    out: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.Import) and all(a.name.split(".")[0] in sys.stdlib_module_names for a in node.names):
            out.append(node)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in sys.stdlib_module_names:
            out.append(node)
    return out


def run_main_block(module: str, argv: list[str]) -> tuple[Any, list[str]]:
    """OpenRLHF's __main__ block on argv: (the arguments `train` would get, what it printed)."""
    path, tree = module_source(module)
    mains = [n for n in tree.body if _is_main_guard(n)]
    if not mains:
        raise ImportError(f"{module} has no __main__ block (its parser moved): update check_openrlhf.py")
    captured: list[Any] = []
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": path, "__builtins__": builtins}
    exec(compile(ast.Module(body=_stdlib_imports(tree), type_ignores=[]), path, "exec"), namespace)
    namespace["argparse"] = strict_argparse()
    namespace["train"] = captured.append  # the main block ends with train(args): keep them instead
    printed = io.StringIO()
    old_argv = sys.argv
    sys.argv = [path, *argv]
    try:
        with contextlib.redirect_stdout(printed):
            main = mains[0]
            assert isinstance(main, ast.If)
            exec(compile(ast.Module(body=main.body, type_ignores=[]), path, "exec"), namespace)
    finally:
        sys.argv = old_argv
    if not captured:
        raise RuntimeError(f"{module}'s __main__ block returned without calling train(args)")
    return captured[0], [line for line in printed.getvalue().splitlines() if line.strip()]


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


ARGS_ONLY = {"args", *dir(builtins)}


def _args_asserts(stmts: list[ast.stmt]) -> list[ast.stmt]:
    """The asserts (and the ifs around them) that read nothing but `args`."""
    out: list[ast.stmt] = []
    for s in stmts:
        if isinstance(s, ast.Assert) and _names(s) <= ARGS_ONLY:
            out.append(s)
        elif isinstance(s, ast.If) and _names(s.test) <= ARGS_ONLY:
            body, orelse = _args_asserts(s.body), _args_asserts(s.orelse)
            if body or orelse:
                out.append(ast.If(test=s.test, body=body or [ast.Pass()], orelse=orelse))
    return out


def run_train_asserts(module: str, args: Any) -> int:
    """Run the argument-only asserts of the module's train(); returns how many there are."""
    path, tree = module_source(module)
    train = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train"), None)
    if train is None:
        return 0
    asserts = _args_asserts(train.body)
    if not asserts:
        return 0
    fn = ast.parse("def train_asserts(args):\n    pass\n").body[0]
    assert isinstance(fn, ast.FunctionDef)
    fn.body = asserts
    code = compile(ast.fix_missing_locations(ast.Module(body=[fn], type_ignores=[])), path, "exec")
    namespace: dict[str, Any] = {"__builtins__": builtins}
    exec(code, namespace)
    namespace["train_asserts"](args)
    return sum(isinstance(n, ast.Assert) for a in asserts for n in ast.walk(a))


#: Prompts tokenized with their images by the native check (each is a processor call).
IMAGE_PROMPTS_CHECKED = 256


def check_images(args: Any, spec: dict[str, Any]) -> tuple[list[str], list[str], dict[str, Any]]:
    """(errors, notes, what came out) of the prepared image prompts through OpenRLHF's own dataset and processor."""
    import os
    from types import SimpleNamespace

    model = args.actor.model_name_or_path
    if not os.path.isdir(model):
        return [], [f"data.images: {model} is not a local folder: the image prompts were prepared, not tokenized"], {}
    from openrlhf.datasets.prompts_dataset import PromptDataset  # type: ignore[import-not-found]
    from openrlhf.datasets.utils import blending_datasets  # type: ignore[import-not-found]
    from openrlhf.utils.utils import get_tokenizer  # type: ignore[import-not-found]
    from openrlhf.utils.vlm_utils import process_prompt_with_images  # type: ignore[import-not-found]

    tokenizer = get_tokenizer(model, None, "left")  # AutoProcessor for a config with vision_config (utils.py:40-66)
    if not hasattr(tokenizer, "image_processor"):
        return (
            [
                f"model.name_or_path: OpenRLHF loads {model} as a text tokenizer (its config.json has no "
                "vision_config: openrlhf/utils/utils.py:40-48), and its agent then ignores the images "
                "(openrlhf/utils/agent.py:211); train a vision-language model"
            ],
            [],
            {},
        )
    strategy = SimpleNamespace(args=args, is_rank_0=lambda: False, print=lambda *a, **k: None)
    rows = blending_datasets(args.data.prompt_dataset, None, strategy, dataset_split=args.data.prompt_split)
    dataset = PromptDataset(rows, tokenizer, strategy, input_template=args.data.input_template)
    budget = args.data.max_len - args.rollout.max_new_tokens
    image_token = getattr(tokenizer, "image_token_id", None)
    errors: list[str] = []
    first: dict[str, Any] = {}
    longest = 0
    checked = min(len(dataset), IMAGE_PROMPTS_CHECKED)
    for i in range(checked):
        _, prompt, _, images = dataset[i]
        refs = list(images or [])
        if not refs:
            errors.append(f"data.train.path: prepared record {i + 1} reaches OpenRLHF without images")
            continue
        try:
            ids, mm, pil = process_prompt_with_images(tokenizer, prompt, refs)
        except (ValueError, OSError) as exc:
            errors.append(f"data.train.path: prepared record {i + 1}: OpenRLHF's processor call failed: {exc}")
            continue
        if len(pil) != len(refs):  # OpenRLHF logs a warning and goes on with fewer pictures
            errors.append(f"data.train.path: prepared record {i + 1}: {len(pil)} of {len(refs)} images loaded")
        longest = max(longest, len(ids))
        if len(ids) > budget:
            errors.append(
                f"method.max_prompt_length: prepared record {i + 1}'s prompt is {len(ids)} tokens with its images; "
                f"OpenRLHF refuses to cut a VLM prompt (openrlhf/utils/agent.py:227-233): raise "
                f"max_prompt_length by {len(ids) - budget}"
            )
        if not first:
            first = {
                "prompt": prompt,
                "images": refs,
                "tokens": len(ids),
                "image_tokens": ids.count(image_token) if image_token is not None else None,
                "mm_inputs": {k: list(v.shape) for k, v in (mm or {}).items()},
            }
        if len(errors) >= 20:
            break
    notes = [f"data.images: {checked} of {len(dataset)} prompts tokenized with their images by OpenRLHF's processor"]
    return errors, notes, {"rows": len(dataset), "first_prompt": first, "longest_prompt": longest, "budget": budget}


def _where(exc: BaseException) -> str:
    return str(exc) or exc.__class__.__name__


def check(request: dict[str, Any]) -> dict[str, Any]:
    module, argv = request["module"], list(request["args"])
    errors: list[str] = []
    notes: list[str] = []
    out: dict[str, Any] = {"module": module}
    try:
        args, printed = run_main_block(module, argv)
        notes += [f"{module}: {line}" for line in printed]
        out["parsed"] = True
        out["train_asserts"] = run_train_asserts(module, args)
    except Rejected as exc:
        errors.append(f"{module} rejected the command line: {exc}")
    except AssertionError as exc:
        errors.append(f"{module}: its checks after parsing failed: {_where(exc)}")
    if request.get("prepare") and not errors:
        import prepare_openrlhf  # type: ignore[import-not-found]  # the run's own preparation step, copied beside the plan

        with open(request["prepare"], encoding="utf-8") as f:
            spec = json.load(f)
        problems, summary = prepare_openrlhf.prepare(spec, reward_file=spec.get("reward_file"))
        errors += problems
        out["prepared"] = summary
        if spec.get("images") and not problems:
            image_errors, image_notes, out["images"] = check_images(args, spec)
            errors += image_errors
            notes += image_notes
    return {"errors": errors, "notes": notes, **out}
