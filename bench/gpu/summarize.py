"""The GPU check's summary: each part's exit code and its run directory's numbers.

    python bench/gpu/summarize.py WORK OUT

Reads WORK/parts.tsv (step, exit code, seconds, run directory or translation folder, written by check.sh)
and each run directory's manifest.json and metrics.jsonl; writes OUT/summary.json and OUT/summary.md:
status, exit code, loss first -> last, DPO reward margins, mean reward first -> last, tokens/s, peak memory,
versions, the command and the translated native config. Standard library only.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

NATIVE_CONFIG_MAX = 6000


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def metrics(run: Path) -> list[dict[str, Any]]:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def first_last(values: list[float | None]) -> list[float] | None:
    present = [v for v in values if isinstance(v, (int, float))]
    return [round(present[0], 5), round(present[-1], 5)] if present else None


def margins(train: list[dict[str, Any]]) -> list[float | None]:
    """DPO's chosen-minus-rejected reward margin per step: TRL logs it, OpenRLHF logs both rewards."""
    out: list[float | None] = []
    for m in train:
        extra = m.get("extra") or {}
        if "rewards/margins" in extra:
            out.append(extra["rewards/margins"])
        elif "chosen_reward" in extra and "reject_reward" in extra:
            out.append(extra["chosen_reward"] - extra["reject_reward"])
        else:
            out.append(None)
    return out


def run_summary(run: Path) -> dict[str, Any]:
    manifest = read_json(run / "manifest.json") or {}
    records = metrics(run)
    train = [m for m in records if m.get("kind") == "train"]
    rates = [m["tokens_per_s"] for m in train if isinstance(m.get("tokens_per_s"), (int, float))]
    summary: dict[str, Any] = {
        "status": manifest.get("status"),
        "exit_code": manifest.get("exit_code"),
        "steps": len(train),
        "loss_first_last": first_last([m.get("loss") for m in train]),
        "reward_first_last": first_last([m.get("reward") for m in train]),
        "dpo_margin_first_last": first_last(margins(train)),
        "tokens_per_s_median": round(statistics.median(rates), 1) if rates else None,
        "tokens_seen": train[-1].get("tokens_seen") if train else None,
        "train_wall_s": round(train[-1]["wall_time_s"], 2) if train and train[-1].get("wall_time_s") else None,
    }
    for key in ("wall_time_s", "peak_rss_mib", "nonfinite", "artifact_problems", "error"):
        if manifest.get(key) not in (None, [], {}):
            summary[key] = manifest[key]
    summary["versions"] = (manifest.get("environment") or {}).get("versions")
    if summary["status"] != "succeeded" and (run / "logs" / "backend.log").exists():
        summary["log_tail"] = "\n".join((run / "logs" / "backend.log").read_text().splitlines()[-40:])
    extra_keys = sorted({k for m in train for k in (m.get("extra") or {})})
    if extra_keys:
        summary["extra_keys"] = extra_keys
    for name in ("trl_config.yaml", "openrlhf_args.json", "command.sh"):
        if (run / name).exists():
            summary.setdefault("native_files", {})[name] = (run / name).read_text()[:NATIVE_CONFIG_MAX]
    return summary


def translation_summary(folder: Path, log: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"files": sorted(p.name for p in folder.iterdir())} if folder.is_dir() else {}
    if (folder / "command.sh").exists():
        out["command.sh"] = (folder / "command.sh").read_text()[:NATIVE_CONFIG_MAX]
    if log.exists():
        text = log.read_text()
        out["native_check"] = [ln for ln in text.splitlines() if ln.startswith("# native check")]
    return out


def main(argv: list[str]) -> int:
    work, out = Path(argv[0]), Path(argv[1])
    parts: list[dict[str, Any]] = []
    table = work / "parts.tsv"
    for line in table.read_text().splitlines() if table.exists() else []:
        step, rc, seconds, target = (line.split("\t") + ["", "", "", ""])[:4]
        part: dict[str, Any] = {"step": step, "rc": int(rc) if rc.lstrip("-").isdigit() else rc, "seconds": seconds}
        path = Path(target) if target else None
        if path is not None and (path / "manifest.json").exists():
            part["run"] = run_summary(path)
        elif path is not None and step.startswith("translate"):
            part["translation"] = translation_summary(path, work / "logs" / f"{step}.log")
        parts.append(part)
    (out / "summary.json").write_text(json.dumps({"parts": parts}, indent=2) + "\n")

    md = ["# GPU check summary", "", "| step | rc | s | status | steps | loss first->last | margin | reward | tok/s |"]
    md.append("|---|---|---|---|---|---|---|---|---|")
    for p in parts:
        r = p.get("run", {})
        md.append(
            f"| {p['step']} | {p['rc']} | {p['seconds']} | {r.get('status', '')} | {r.get('steps', '')} | "
            f"{r.get('loss_first_last') or ''} | {r.get('dpo_margin_first_last') or ''} | "
            f"{r.get('reward_first_last') or ''} | {r.get('tokens_per_s_median') or ''} |"
        )
    for p in parts:
        details = p.get("run") or p.get("translation")
        if not details:
            continue
        md += ["", f"## {p['step']}", ""]
        for key, value in details.items():
            if isinstance(value, str) and "\n" in value:
                md += [f"{key}:", "```", value.rstrip(), "```"]
            elif key == "native_files":
                for name, text in value.items():
                    md += [f"{name}:", "```", text.rstrip(), "```"]
            else:
                md.append(f"- {key}: {json.dumps(value)}")
    (out / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md[: 3 + len(parts) + 1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
