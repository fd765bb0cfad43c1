"""Writes the bundled arithmetic datasets (deterministic; the outputs are committed).

    python examples/make_data.py

The task has verifiable answers, so the same data serves SFT, preference training and RL.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent / "data"


def problems(n: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        wrong = (a + b + rng.choice([-3, -2, -1, 1, 2, 3])) % 19
        out.append((f"What is {a} + {b}?", str(a + b), str(wrong)))
    return out


def write(name: str, rows: list[dict]) -> None:
    with (HERE / name).open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def main() -> None:
    HERE.mkdir(exist_ok=True)
    train, evals = problems(256, seed=0), problems(32, seed=1)
    write("sft_train.jsonl", [{"prompt": p, "completion": f" {a}"} for p, a, _ in train])
    write("sft_eval.jsonl", [{"prompt": p, "completion": f" {a}"} for p, a, _ in evals])
    write(
        "chat_train.jsonl",
        [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]} for p, a, _ in train],
    )
    write("pref_train.jsonl", [{"prompt": p, "chosen": f" {a}", "rejected": f" {w}"} for p, a, w in train])
    write(
        "kto_train.jsonl",
        [
            {"prompt": p, "completion": f" {a if i % 2 == 0 else w}", "label": i % 2 == 0}
            for i, (p, a, w) in enumerate(train)
        ],
    )
    write("rl_train.jsonl", [{"prompt": p, "ground_truth": a} for p, a, _ in train])
    # DPO's example: answer vs evasion, a preference the tiny model learns in a few steps (the right sum vs a
    # near miss, pref_train.jsonl, needs arithmetic it does not have).
    write("pref_answer.jsonl", [{"prompt": p, "chosen": f" {a}", "rejected": " I don't know."} for p, a, _ in train])
    # Same SFT data with other column names: shows data.columns.
    write("qa_train.jsonl", [{"question": p, "answer": f" {a}"} for p, a, _ in train[:64]])


if __name__ == "__main__":
    main()
