"""zsworld: a seeded procedural world of small RGB images with captions and attributes."""
from .captions import captions
from .render import SHAPE_MASKS, Scenes, render, sample_scenes
from .spec import WorldSpec, load_world_spec
from .splits import SPLIT_KINDS, CompositionSplit, make_split

__all__ = ["captions", "render", "sample_scenes", "Scenes", "SHAPE_MASKS", "WorldSpec", "load_world_spec",
           "make_split", "CompositionSplit", "SPLIT_KINDS"]
