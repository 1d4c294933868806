"""zsworld: a seeded procedural world of small RGB images with alt-text captions, attributes and knobs."""
from .captions import CaptionWriter, captions
from .corpus import Corpus, corpus_statistics, make_corpus
from .render import PATTERN_MASKS, SHAPE_MASKS, Scenes, composition_probabilities, concept_probabilities, render, sample_scenes
from .spec import FACTORS, Composition, WorldKnobs, WorldSpec, load_world_spec
from .splits import SPLIT_KINDS, CompositionSplit, make_split

__all__ = ["captions", "CaptionWriter", "Corpus", "make_corpus", "corpus_statistics", "render", "sample_scenes",
           "Scenes", "SHAPE_MASKS", "PATTERN_MASKS", "concept_probabilities", "composition_probabilities",
           "WorldSpec", "WorldKnobs", "FACTORS", "Composition", "load_world_spec", "make_split", "CompositionSplit",
           "SPLIT_KINDS"]
