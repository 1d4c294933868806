"""The vocabulary of zsworld (colors, shapes, sizes, backgrounds, synonyms, caption templates), read from data."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..config import data_file


@dataclass(frozen=True)
class WorldSpec:
    image_size: int
    colors: Dict[str, Tuple[int, int, int]]
    shapes: List[str]
    sizes: Dict[str, float]
    backgrounds: Dict[str, Tuple[int, int, int]]
    synonyms: Dict[str, List[str]] = field(default_factory=dict)
    caption_templates: List[str] = field(default_factory=list)

    @property
    def color_names(self) -> List[str]:
        return list(self.colors)

    @property
    def size_names(self) -> List[str]:
        return list(self.sizes)

    @property
    def background_names(self) -> List[str]:
        return list(self.backgrounds)

    def pair_name(self, color: int, shape: int) -> str:
        """Class name of a color-shape composition, as used in prompts: ``"red circle"``."""
        return f"{self.color_names[color]} {self.shapes[shape]}"

    def fingerprint(self) -> str:
        """A hash of the vocabulary; part of every cache key that depends on the world."""
        blob = json.dumps(self.__dict__, sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load_world_spec(path: Optional[Path] = None) -> WorldSpec:
    raw = json.loads(Path(path or data_file("zsworld", "world.json")).read_text())
    return WorldSpec(
        image_size=int(raw["image_size"]),
        colors={k: tuple(v) for k, v in raw["colors"].items()},
        shapes=list(raw["shapes"]),
        sizes={k: float(v) for k, v in raw["sizes"].items()},
        backgrounds={k: tuple(v) for k, v in raw["backgrounds"].items()},
        synonyms={k: list(v) for k, v in raw.get("synonyms", {}).items()},
        caption_templates=list(raw["caption_templates"]),
    )
