"""Regenerate data/attributes/zsworld.json from the world's definition.

    .venv/bin/python data/attributes/make_zsworld.py          # write the file
    .venv/bin/python data/attributes/make_zsworld.py --check  # exit 1 if the committed file is stale

Classes: every composition of ``data/zsworld/world.json`` (color, pattern, shape), color-major then
pattern (``red solid circle``, ``red solid square``, ...): the order of
``build_dataset("zsworld", split="all").classes``.

Color attributes are computed from each color's sRGB triple in world.json: the three channel levels
(value / 255), the Rec. 709 luma, the HSV saturation, and a warm-hue flag (hue below 70° or above 300°).
Shape attributes are geometric facts of the masks in :data:`zslab.world.SHAPE_MASKS` (written below per
shape; the script refuses a shape it has no entry for) plus ``relative_area``, measured by rasterising
each mask: its area over that of a circle of the same radius. Pattern attributes say which texture the
renderer draws (``PATTERN_FACTS``; solid has none). The output is deterministic.
"""
from __future__ import annotations

import colorsys
import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run from a checkout without installing

from zslab.world import SHAPE_MASKS, load_world_spec  # noqa: E402

OUT = HERE / "zsworld.json"

COLOR_ATTRIBUTES = [
    ("red_level", "red channel of the color's sRGB value / 255"),
    ("green_level", "green channel of the color's sRGB value / 255"),
    ("blue_level", "blue channel of the color's sRGB value / 255"),
    ("luma", "brightness: Rec. 709 luma of the sRGB value (0 = black, 1 = white)"),
    ("saturation", "HSV saturation of the color (low = pastel or gray)"),
    ("warm_hue", "1 if the hue is warm (red, orange, yellow, pink: below 70 or above 300 degrees)"),
]

#: Geometric facts of each renderer mask (zslab/world/render.py SHAPE_MASKS).
SHAPE_FACTS: Dict[str, Dict[str, int]] = {
    "circle":   dict(has_corners=0, round_outline=1, hollow=0, convex=1, corners_3=0, corners_4=0,
                     corners_more_than_4=0, horizontal_or_vertical_edges=0, slanted_edges=0,
                     quarter_turn_symmetric=1),
    "square":   dict(has_corners=1, round_outline=0, hollow=0, convex=1, corners_3=0, corners_4=1,
                     corners_more_than_4=0, horizontal_or_vertical_edges=1, slanted_edges=0,
                     quarter_turn_symmetric=1),
    "triangle": dict(has_corners=1, round_outline=0, hollow=0, convex=1, corners_3=1, corners_4=0,
                     corners_more_than_4=0, horizontal_or_vertical_edges=1, slanted_edges=1,
                     quarter_turn_symmetric=0),
    "cross":    dict(has_corners=1, round_outline=0, hollow=0, convex=0, corners_3=0, corners_4=0,
                     corners_more_than_4=1, horizontal_or_vertical_edges=1, slanted_edges=0,
                     quarter_turn_symmetric=1),
    "ring":     dict(has_corners=0, round_outline=1, hollow=1, convex=0, corners_3=0, corners_4=0,
                     corners_more_than_4=0, horizontal_or_vertical_edges=0, slanted_edges=0,
                     quarter_turn_symmetric=1),
    "diamond":  dict(has_corners=1, round_outline=0, hollow=0, convex=1, corners_3=0, corners_4=1,
                     corners_more_than_4=0, horizontal_or_vertical_edges=0, slanted_edges=1,
                     quarter_turn_symmetric=1),
}

SHAPE_ATTRIBUTES = [
    ("has_corners", "the outline has corners"),
    ("round_outline", "the outline is a circle"),
    ("hollow", "has a hole in the middle (a ring)"),
    ("convex", "convex: no dents or holes"),
    ("corners_3", "exactly 3 corners"),
    ("corners_4", "exactly 4 corners"),
    ("corners_more_than_4", "more than 4 corners (the cross has 12)"),
    ("horizontal_or_vertical_edges", "has a horizontal or vertical straight edge"),
    ("slanted_edges", "has a slanted (diagonal) straight edge"),
    ("quarter_turn_symmetric", "looks the same after a quarter turn"),
    ("relative_area", "filled area over that of a circle of the same radius (rasterised from the mask)"),
]


PATTERN_ATTRIBUTES = [
    ("has_stripes", "drawn with horizontal stripes of a darker shade"),
    ("has_dots", "drawn with a grid of darker dots"),
    ("has_checks", "drawn with a checkerboard of a darker shade"),
]
#: Which texture each pattern of zslab/world/render.py PATTERN_MASKS draws.
PATTERN_FACTS: Dict[str, Dict[str, int]] = {
    "solid": dict(has_stripes=0, has_dots=0, has_checks=0),
    "striped": dict(has_stripes=1, has_dots=0, has_checks=0),
    "dotted": dict(has_stripes=0, has_dots=1, has_checks=0),
    "checked": dict(has_stripes=0, has_dots=0, has_checks=1),
}


def relative_area(shape: str, n: int = 801) -> float:
    """Area of the renderer's mask at radius 1 over pi, on an ``n``×``n`` grid over [-1.5, 1.5]²."""
    grid = np.linspace(-1.5, 1.5, n)
    dx, dy = np.meshgrid(grid, grid)
    cell = (grid[1] - grid[0]) ** 2
    area = float(SHAPE_MASKS[shape](dx, dy, np.float64(1.0)).sum()) * cell
    return round(min(1.0, area / np.pi), 3)


def color_row(rgb) -> List[float]:
    r, g, b = (v / 255.0 for v in rgb)
    hue, sat, _ = colorsys.rgb_to_hsv(r, g, b)
    luma = 0.2126 * r + 0.7152 * g + 0.0722 * b
    warm = 1 if (hue * 360 < 70 or hue * 360 > 300) else 0
    return [round(r, 3), round(g, 3), round(b, 3), round(luma, 3), round(sat, 3), warm]


def build() -> dict:
    spec = load_world_spec()
    for kind, names, facts in (("shapes", spec.shapes, SHAPE_FACTS), ("patterns", spec.patterns, PATTERN_FACTS)):
        missing = [s for s in names if s not in facts]
        if missing:
            raise SystemExit(f"no fact entry for {kind} {missing}: add them to {__file__}")
    shape_rows = {s: [SHAPE_FACTS[s][name] for name, _ in SHAPE_ATTRIBUTES[:-1]] + [relative_area(s)]
                  for s in spec.shapes}
    pattern_rows = {p: [PATTERN_FACTS[p][name] for name, _ in PATTERN_ATTRIBUTES] for p in spec.patterns}
    colors = list(spec.colors.values())
    classes = [spec.class_name(comp) for comp in spec.compositions]
    matrix = [color_row(colors[c]) + pattern_rows[spec.patterns[p]] + shape_rows[spec.shapes[s]]
              for c, p, s in spec.compositions]
    return {
        "about": ("Derived from the world's definition by data/attributes/make_zsworld.py (do not edit by hand): "
                  "color attributes computed from the sRGB values in data/zsworld/world.json, pattern and shape "
                  "attributes from the renderer's patterns and masks (zslab/world/render.py). Classes: every "
                  "composition (color, pattern, shape), color-major, as in build_dataset('zsworld', split='all')."),
        "attributes": [{"name": n, "meaning": m} for n, m in COLOR_ATTRIBUTES + PATTERN_ATTRIBUTES + SHAPE_ATTRIBUTES],
        "classes": classes,
        "matrix": matrix,
    }


def dump(table: dict) -> str:
    """JSON with one attribute and one matrix row per line."""
    lines = ["{", f' "about": {json.dumps(table["about"])},', ' "attributes": [',
             ",\n".join("  " + json.dumps(a) for a in table["attributes"]), " ],",
             f' "classes": {json.dumps(table["classes"])},', ' "matrix": [',
             ",\n".join("  " + json.dumps(r) for r in table["matrix"]), " ]", "}"]
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == table
    return text


def main(argv: List[str]) -> int:
    text = dump(build())
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale: rerun {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
