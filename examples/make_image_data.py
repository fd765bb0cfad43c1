"""Writes the bundled image datasets (deterministic; the outputs are committed).

    python examples/make_image_data.py

Sixteen small PNGs (a solid colour with a white rectangle, three sizes) under examples/data/images/, and records
that ask for the colour: vlm_sft.jsonl (chat; the three ways to give a record's image in turn, see chat()) and
vlm_pref.jsonl (preference: the right colour chosen, another rejected) and vlm_rl.jsonl (prompts for online RL, the
colour as ground_truth for examples/rewards.py:colour). Paths are relative to the data files.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent / "data"
COLORS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}
QUESTION = "What color is it?"


def images(n: int = 16) -> list[tuple[str, str]]:
    from PIL import Image, ImageDraw

    (HERE / "images").mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        color = list(COLORS)[i % len(COLORS)]
        image = Image.new("RGB", (32 + 4 * (i % 3), 32), COLORS[color])  # sizes differ: the processor resizes
        ImageDraw.Draw(image).rectangle((4, 4, 12 + i % 8, 12), fill=(255, 255, 255))
        rel = f"images/{i:02d}_{color}.png"
        image.save(HERE / rel, optimize=True)
        out.append((rel, color))
    return out


def write(name: str, rows: list[dict]) -> None:
    with (HERE / name).open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def chat(i: int, rel: str, color: str) -> dict:
    """The three ways a record gives its image, in turn: a string content with the images column (the image goes
    before the text), a {type: image} placeholder filled from the column, a {type: image, path} part."""
    forms: list[tuple[object, dict]] = [
        (QUESTION, {"images": [rel]}),
        ([{"type": "image"}, {"type": "text", "text": QUESTION}], {"images": [rel]}),
        ([{"type": "image", "path": rel}, {"type": "text", "text": QUESTION}], {}),
    ]
    content, column = forms[i % len(forms)]
    return {"messages": [{"role": "user", "content": content}, {"role": "assistant", "content": color}], **column}


def main() -> None:
    pictures = images()
    write("vlm_sft.jsonl", [chat(i, rel, color) for i, (rel, color) in enumerate(pictures)])
    names = list(COLORS)
    write(
        "vlm_pref.jsonl",
        [
            {
                "prompt": [{"role": "user", "content": QUESTION}],
                "chosen": [{"role": "assistant", "content": color}],
                "rejected": [{"role": "assistant", "content": names[(names.index(color) + 1) % len(names)]}],
                "images": [rel],
            }
            for rel, color in pictures
        ],
    )
    write(
        "vlm_rl.jsonl",
        [
            {"prompt": [{"role": "user", "content": QUESTION}], "images": [rel], "ground_truth": color}
            for rel, color in pictures
        ],
    )


if __name__ == "__main__":
    main()
