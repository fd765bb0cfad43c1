#!/usr/bin/env python
"""The check harness: runs a backend's check script inside the framework's own environment.

    python harness.py < {"script": "/path/check_x.py", "requests": [{...}, ...]}
    -> last stdout line: {"results": [{"ok": bool, "errors": [...], "notes": [...], "versions": {...}, ...}]}

A check script defines ``check(request) -> dict`` (keys ``errors``, ``notes`` and anything else
it wants to report) and ``VERSIONS`` (distributions to report). The harness does the rest, once
for every backend: it reads the JSON request, runs each check in the request's ``workdir`` with the
framework's output captured, turns whatever the framework raises (a parser's SystemExit, a
pydantic ValidationError, any exception) into error lines, checks the launcher's arguments with
the launcher's own parser (torchrun, deepspeed), reports versions, and forgets modules imported
from the workdir so the next request brings its own.

This file runs under the framework's interpreter: the standard library only at module level.
The host side is :func:`run_harness`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ptsdk.envs import BackendEnv

HERE = Path(__file__).resolve()


def run_harness(
    env: BackendEnv, script: Path, requests: list[dict[str, Any]], *, timeout: float = 600
) -> list[dict[str, Any]]:
    """Host side: run `script`'s check on each request in the backend's interpreter (one process for all)."""
    answer = env.run_json(HERE, {"script": str(script), "requests": requests}, timeout=timeout)
    return list(answer["results"])


def error_lines(exc: BaseException) -> list[str]:
    """A framework's exception as `field: problem` lines (pydantic errors one per line)."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and exc.__class__.__name__ == "ValidationError":
        try:
            return [f"{'.'.join(str(x) for x in e['loc']) or 'config'}: {e['msg']}" for e in errors()]
        except Exception:  # not pydantic's after all
            pass
    return [f"{exc.__class__.__name__}: {exc}"]


def check_launcher(launcher: dict[str, Any] | None, entry: list[str], sink: io.StringIO) -> list[str]:
    """The launcher's own parser on the launcher's arguments: torchrun's, DeepSpeed's, or Ray's `ray job
    submit` (a placeholder script stands for the entry point where the parser only needs one)."""
    if not launcher or not launcher.get("args"):
        return []
    kind, args = launcher["kind"], [*launcher["args"], "train.py"]
    try:
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            if kind == "torchrun":
                from torch.distributed.run import get_args_parser

                get_args_parser().parse_args(args)
            elif kind == "deepspeed":
                from deepspeed.launcher.runner import parse_args

                parse_args(args)
            elif kind == "ray" and launcher["args"][:2] == ["job", "submit"]:
                from ray.dashboard.modules.job.cli import submit

                try:
                    submit.make_context(
                        "submit", [*launcher["args"][2:], "--", "python", *entry], resilient_parsing=False
                    )
                except Exception as exc:  # click's UsageError family
                    return [f"ray job submit rejected its arguments: {exc}"]
    except SystemExit:
        lines = sink.getvalue().strip().splitlines()
        return [f"{kind} rejected the launcher arguments: {lines[-1] if lines else args}"]
    except ImportError as exc:
        return [f"{kind} launcher is not installed in this environment: {exc}"]
    return []


def run_one(check: Any, request: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"errors": [], "notes": []}
    sink = io.StringIO()
    cwd, workdir = os.getcwd(), request.get("workdir")
    before = set(sys.modules)
    try:
        if workdir:
            os.chdir(workdir)
            sys.path.insert(0, workdir)
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            result = check(request) or {}
        out.update({k: v for k, v in result.items() if k not in ("errors", "notes")})
        out["errors"] += list(result.get("errors", []))
        out["notes"] += list(result.get("notes", []))
    except SystemExit as exc:  # an argument parser's verdict: its message is the last line it printed
        lines = sink.getvalue().strip().splitlines()
        out["errors"].append((lines[-1] if lines else "") or f"the framework's parser exited with {exc.code}")
    except Exception as exc:  # the framework's verdict, whatever form it takes
        out["errors"] += error_lines(exc)
    finally:
        os.chdir(cwd)
        if workdir and workdir in sys.path:
            sys.path.remove(workdir)
        if workdir:
            for name in set(sys.modules) - before:
                path = getattr(sys.modules[name], "__file__", None) or ""
                if path.startswith(os.path.abspath(workdir)):
                    del sys.modules[name]  # each request brings its own copies
    entry = [*request.get("entrypoint", []), *request.get("args", [])]
    out["errors"] += check_launcher(request.get("launcher"), entry, io.StringIO())
    out["ok"] = not out["errors"]
    return out


def load_script(path: str) -> Any:
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(Path(path).parent))  # a check script may import its neighbours (the runner)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    import importlib.metadata as md

    payload = json.load(sys.stdin)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    script = load_script(payload["script"])
    results = [run_one(script.check, r) for r in payload["requests"]]
    versions: dict[str, str | None] = {}
    for dist in getattr(script, "VERSIONS", ()):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    for r in results:
        r["versions"] = versions
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
