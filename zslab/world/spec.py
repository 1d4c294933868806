"""The vocabulary of zsworld and its knobs, read from data (``data/zsworld/world.json``).

A class of zsworld is a *composition*: one value of each factor in :data:`FACTORS` (color, pattern,
shape), named ``"<color> <pattern> <shape>"`` (``"red striped circle"``). Everything else about a scene
(size, background, distractor objects, clutter, noise) and about its captions (sentence forms, fillers,
attributes missing or wrong, synonyms, bare labels) is a nuisance that a *knob* controls.

Knobs (:class:`WorldKnobs`) have their defaults in world.json; a model entry overrides them under its
``world:`` key (``data/models/*.yaml``), and since the whole entry goes into the model's cache key, every
knob is part of the identity of a trained model and is written into its manifest.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..config import data_file
from ..errors import InvalidChoiceError

#: The factors of a class, in the order they appear in its name.
FACTORS = ("color", "pattern", "shape")
#: A class: (color index, pattern index, shape index).
Composition = Tuple[int, int, int]
RGB = Tuple[int, int, int]


#: Knobs added after zsworld v2 was first fingerprinted, with the default that leaves the world unchanged.
LATER_KNOBS: Dict[str, Any] = {"contextual_color": 0.0}


@dataclass(frozen=True)
class WorldKnobs:
    """The properties of the world that experiments turn; defaults live in world.json ``knobs``.

    Image side: how often each concept is drawn (``concept_zipf``, ``concept_weights``), how cluttered a
    scene is. Caption side: how much the alt-text-like captions differ from a clean class name.
    """

    # ---- images
    concept_zipf: float = 1.0          # long tail: the k-th value of each factor is drawn ∝ k^-zipf (0 = uniform)
    concept_weights: Dict[str, float] = field(default_factory=dict)  # per-concept multipliers on top
    distractor_rate: float = 0.5       # chance that each of max_distractors extra (smaller) objects is drawn
    max_distractors: int = 2
    clutter_rate: float = 0.5          # chance that each of max_clutter short strokes is drawn
    max_clutter: int = 4
    noise: float = 8.0                 # pixel noise (std, 0-255 scale)
    color_jitter: float = 12.0         # per-object color jitter (std, 0-255 scale)
    contextual_color: float = 0.0      # shape-specific RGB shift of an object's color (0-255 scale): how much an
    #                                    attribute's look depends on its object (compositional ZSL's contextuality)
    # ---- captions
    bare_label_rate: float = 0.0       # captions that are exactly the class name
    framing_rate: float = 0.3          # captions framed as being about the picture's subject ("a photo of a ...")
    offtopic_rate: float = 0.1         # captions that name only a distractor, never with a framing form
    attribute_drop_rate: float = 0.15  # each of color / pattern left out of a caption
    attribute_error_rate: float = 0.05  # each named color / pattern replaced by a wrong one
    synonym_rate: float = 0.2          # a word with synonyms replaced by one of them
    word_order_rate: float = 0.3       # the object phrase in another order ("circle, red, striped")
    context_rate: float = 0.5          # size and background mentioned
    distractor_mention_rate: float = 0.5  # a drawn distractor is mentioned ("next to a blue ring")
    filler_rate: float = 0.4           # alt-text filler before or after ("lol", "new post", "img 2041")

    RATES = ("distractor_rate", "clutter_rate", "bare_label_rate", "framing_rate", "offtopic_rate", "attribute_drop_rate", "attribute_error_rate",
             "synonym_rate", "word_order_rate", "context_rate", "distractor_mention_rate", "filler_rate")

    def __post_init__(self) -> None:
        for name in self.RATES:
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"world knob {name} must be a rate in [0, 1], got {value!r}")
        for name in ("concept_zipf", "noise", "color_jitter", "contextual_color", "max_distractors", "max_clutter"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"world knob {name} must be >= 0, got {getattr(self, name)!r}")
        bad = {k: v for k, v in self.concept_weights.items() if float(v) < 0}
        if bad:
            raise ValueError(f"concept weights must be >= 0, got {bad}")

    @classmethod
    def names(cls) -> List[str]:
        return [f.name for f in fields(cls)]

    def replace(self, overrides: Optional[Mapping[str, Any]] = None) -> "WorldKnobs":
        """These knobs with ``overrides``; an unknown knob name raises listing the valid ones."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise InvalidChoiceError(f"unknown world knob {unknown[0]!r}; valid knobs: {', '.join(self.names())}")
        return replace(self, **overrides)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WorldSpec:
    image_size: int
    colors: Dict[str, RGB]
    patterns: List[str]
    shapes: List[str]
    sizes: Dict[str, float]
    distractor_size: float
    backgrounds: Dict[str, RGB]
    synonyms: Dict[str, List[str]] = field(default_factory=dict)
    pattern_nouns: Dict[str, str] = field(default_factory=dict)
    phrase_orders: List[str] = field(default_factory=list)
    caption_forms: List[str] = field(default_factory=list)
    framing_forms: List[str] = field(default_factory=list)
    context_forms: List[str] = field(default_factory=list)
    distractor_forms: List[str] = field(default_factory=list)
    fillers: List[str] = field(default_factory=list)
    knobs: WorldKnobs = field(default_factory=WorldKnobs)

    @property
    def color_names(self) -> List[str]:
        return list(self.colors)

    @property
    def size_names(self) -> List[str]:
        return list(self.sizes)

    @property
    def background_names(self) -> List[str]:
        return list(self.backgrounds)

    def factor_values(self, factor: str) -> List[str]:
        return {"color": self.color_names, "pattern": list(self.patterns), "shape": list(self.shapes)}[factor]

    @property
    def compositions(self) -> List[Composition]:
        """Every class, color-major then pattern then shape: the order of ``split="all"``."""
        return [(c, p, s) for c in range(len(self.colors)) for p in range(len(self.patterns))
                for s in range(len(self.shapes))]

    def class_name(self, comp: Composition) -> str:
        """The name of a composition as used in prompts: ``"red striped circle"``."""
        c, p, s = comp
        return f"{self.color_names[c]} {self.patterns[p]} {self.shapes[s]}"

    def words_of(self, concept: str) -> List[str]:
        """A concept's word and its synonyms (what a caption may call it)."""
        return [concept, *self.synonyms.get(concept, [])]

    def fingerprint(self) -> str:
        """A hash of the vocabulary and default knobs; part of every cache key that depends on the world. Knobs
        added after the world's first release (:data:`LATER_KNOBS`) count only when they differ from their
        default, so that adding one leaves every existing cache key as it was."""
        content = asdict(self)
        for name, default in LATER_KNOBS.items():
            if content["knobs"].get(name) == default:
                del content["knobs"][name]
        blob = json.dumps(content, sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load_world_spec(path: Optional[Path] = None) -> WorldSpec:
    raw = json.loads(Path(path or data_file("zsworld", "world.json")).read_text())
    knobs = WorldKnobs().replace(raw.get("knobs", {}))
    spec = WorldSpec(
        image_size=int(raw["image_size"]),
        colors={k: tuple(v) for k, v in raw["colors"].items()},
        patterns=list(raw["patterns"]),
        shapes=list(raw["shapes"]),
        sizes={k: float(v) for k, v in raw["sizes"].items()},
        distractor_size=float(raw["distractor_size"]),
        backgrounds={k: tuple(v) for k, v in raw["backgrounds"].items()},
        synonyms={k: list(v) for k, v in raw.get("synonyms", {}).items()},
        pattern_nouns=dict(raw.get("pattern_nouns", {})),
        phrase_orders=list(raw["phrase_orders"]),
        caption_forms=list(raw["caption_forms"]),
        framing_forms=list(raw["framing_forms"]),
        context_forms=list(raw["context_forms"]),
        distractor_forms=list(raw["distractor_forms"]),
        fillers=list(raw["fillers"]),
        knobs=knobs,
    )
    words = [w for f in FACTORS for w in spec.factor_values(f)]
    dup = sorted({w for w in words if words.count(w) > 1})
    if dup:
        raise ValueError(f"{path or 'world.json'}: a word names two concepts: {dup}")
    return spec
