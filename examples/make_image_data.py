"""Writes the bundled image datasets (deterministic; the outputs are committed).

    python examples/make_image_data.py

Sixteen small PNGs (a solid colour with a white rectangle, three sizes) under examples/data/images/, and records
that ask for the colour: vlm_sft.jsonl (chat; string contents and {type: image} parts alternate) and
vlm_pref.jsonl (preference: the right colour chosen, another rejected). Paths are relative to the data files.
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


def main() -> None:
    pictures = images()
    question: list = [{"type": "image"}, {"type": "text", "text": QUESTION}]
    write(
        "vlm_sft.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": question if i % 2 else QUESTION},
                    {"role": "assistant", "content": color},
                ],
                "images": [rel],
            }
            for i, (rel, color) in enumerate(pictures)
        ],
    )
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


if __name__ == "__main__":
    main()
