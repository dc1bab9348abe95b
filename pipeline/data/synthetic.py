"""`synthetic-lt`: an offline, deterministic long-tailed image dataset of coloured shapes.

Each class is a (colour, shape) pair with a readable name ("red circle", "teal ring"); each image is a real PNG of
that shape in a jittered version of that colour, at a random place and size, on a noisy background. Everything is a
function of `dataset.seed`, so two runs write byte-identical files. Used by `mdpr prepare` when
`dataset.name: synthetic-lt` (the default), so the whole pipeline runs here without downloads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 40, 40), "orange": (240, 140, 20), "yellow": (235, 220, 40), "green": (40, 170, 60),
    "teal": (30, 150, 150), "blue": (40, 80, 220), "purple": (130, 50, 190), "pink": (240, 120, 180),
    "brown": (130, 80, 40), "black": (25, 25, 25), "white": (245, 245, 245), "grey": (128, 128, 128),
}
SHAPES = ("circle", "square", "triangle", "ring", "cross", "diamond", "bar", "star")
MAX_CLASSES = len(COLOURS) * len(SHAPES)


def class_names(num_classes: int) -> list[str]:
    """Readable names of the first `num_classes` (colour, shape) pairs; colours and shapes vary from the start."""
    colours = list(COLOURS)
    names = []
    for i in range(num_classes):
        block, colour = divmod(i, len(colours))
        shape = SHAPES[(5 * block + colour) % len(SHAPES)]  # a bijection over the 96 pairs
        names.append(f"{colours[colour]} {shape}")
    return names


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    """Vertices of polygonal shapes (None for shapes drawn another way)."""
    if shape == "triangle":
        return [(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        return [(cx + rr * np.cos(a), cy - rr * np.sin(a)) for a, rr in zip(angles, radii)]
    return None


def render(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB image of class `name` ("<colour> <shape>")."""
    colour_name, shape = name.split(" ", 1)
    background = rng.integers(105, 150) + rng.integers(-8, 9, size=3)  # a neutral grey, slightly tinted
    noise = rng.normal(0, 10, size=(size, size, 3))
    canvas = np.clip(background + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(canvas, "RGB")
    draw = ImageDraw.Draw(image)
    colour = tuple(int(v) for v in np.clip(np.array(COLOURS[colour_name]) + rng.normal(0, 12, 3), 0, 255))
    r = size * rng.uniform(0.28, 0.42)
    cx, cy = rng.uniform(r, size - r, size=2)
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(2, int(r / 3)))
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "cross":
        w = r / 3
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=colour)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=colour)
    elif shape == "bar":
        draw.rectangle([cx - r, cy - r / 3, cx + r, cy + r / 3], fill=colour)
    else:
        draw.polygon(_shape_polygon(shape, cx, cy, r), fill=colour)
    return image


def write_images(out_dir: Path, rows: list[tuple[str, str, int]], names: list[str], size: int, seed: int) -> None:
    """Render every (split, id, label) row to `out_dir / id` as PNG, each from its own seeded generator."""
    for index, (_split, image_id, label) in enumerate(rows):
        rng = np.random.default_rng([seed, index])
        path = out_dir / image_id
        path.parent.mkdir(parents=True, exist_ok=True)
        render(names[label], size, rng).save(path, format="PNG")
