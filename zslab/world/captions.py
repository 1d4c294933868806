"""Alt-text-like captions for zsworld scenes, from the word lists and sentence forms of world.json.

A caption is built in steps, each a knob of :class:`~zslab.world.spec.WorldKnobs`:

1. with ``bare_label_rate`` it is just the class name ("red striped circle"), and nothing else happens;
2. the object phrase: color and pattern each left out (``attribute_drop_rate``) or named wrongly
   (``attribute_error_rate``); words swapped for synonyms (``synonym_rate``); the phrase in another
   order (``word_order_rate``: "circle that is red and striped");
3. a sentence form around it: with ``framing_rate`` a form that says the object is the picture's
   subject ("a photo of a {obj}", "close-up of a {obj}"), else a plain one ("my {obj}", "{obj} for sale");
   with ``offtopic_rate`` (when the scene has a distractor) the caption is about a distractor instead,
   always in a plain form: alt-text that names something in the picture other than its subject;
4. context (``context_rate``: size, background), a drawn distractor (``distractor_mention_rate``:
   "... next to a blue ring"), and alt-text filler (``filler_rate``: "lol", "img 2041").

A wrong attribute is never allowed to name a composition in ``banned`` (the held-out classes), so that
training captions never name an unseen class, even by mistake.
"""
from __future__ import annotations

from typing import Collection, List, Optional

import numpy as np

from .render import Scenes
from .spec import Composition, WorldKnobs, WorldSpec


class CaptionWriter:
    """Writes one caption per scene; ``banned`` compositions are never named."""

    def __init__(self, spec: WorldSpec, knobs: WorldKnobs, banned: Collection[Composition] = ()):
        self.spec, self.knobs, self.banned = spec, knobs, frozenset(banned)
        self.n_colors, self.n_patterns = len(spec.colors), len(spec.patterns)

    def _word(self, word: str, rng: np.random.Generator) -> str:
        options = self.spec.synonyms.get(word)
        if options and rng.random() < self.knobs.synonym_rate:
            return options[rng.integers(len(options))]
        return word

    def _named(self, comp: Composition, rng: np.random.Generator):
        """(color or None, pattern or None, shape) as named: attributes dropped or wrong, never banned."""
        k = self.knobs
        c, p, s = comp
        if rng.random() < k.attribute_error_rate:
            wrong = (c + 1 + rng.integers(self.n_colors - 1)) % self.n_colors
            c = c if (wrong, p, s) in self.banned else wrong
        if rng.random() < k.attribute_error_rate:
            wrong = (p + 1 + rng.integers(self.n_patterns - 1)) % self.n_patterns
            p = p if (c, wrong, s) in self.banned else wrong
        color = None if rng.random() < k.attribute_drop_rate else c
        pattern = None if rng.random() < k.attribute_drop_rate else p
        return color, pattern, s

    def phrase(self, comp: Composition, rng: np.random.Generator, reorder: bool = True) -> str:
        """The object phrase of a composition, with the caption knobs applied."""
        spec = self.spec
        color, pattern, shape = self._named(comp, rng)
        adjs = [w for w in (None if color is None else self._word(spec.color_names[color], rng),
                            None if pattern is None else self._word(spec.patterns[pattern], rng)) if w]
        noun = self._word(spec.shapes[shape], rng)
        if reorder and adjs and rng.random() < self.knobs.word_order_rate:
            form = spec.phrase_orders[1 + rng.integers(len(spec.phrase_orders) - 1)]
        else:
            form = spec.phrase_orders[0]
        return " ".join(form.format(adjs=" ".join(adjs), adjs_reversed=" ".join(reversed(adjs)),
                                    adjs_and=" and ".join(adjs), adjs_comma=" , ".join(adjs), shape=noun).split())

    def caption(self, scenes: Scenes, i: int, rng: np.random.Generator) -> str:
        spec, k = self.spec, self.knobs
        comp = scenes.composition(i)
        if rng.random() < k.bare_label_rate:
            return spec.class_name(comp)
        present = np.nonzero(scenes.d_present[i])[0]
        if present.size and rng.random() < k.offtopic_rate:
            j = present[rng.integers(present.size)]
            d = (int(scenes.d_color[i, j]), int(scenes.d_pattern[i, j]), int(scenes.d_shape[i, j]))
            return self._fill(spec.caption_forms[rng.integers(len(spec.caption_forms))].format(obj=self.phrase(d, rng)),
                              rng)
        forms = spec.framing_forms if rng.random() < k.framing_rate else spec.caption_forms
        text = forms[rng.integers(len(forms))].format(obj=self.phrase(comp, rng))
        if rng.random() < k.context_rate:
            form = spec.context_forms[rng.integers(len(spec.context_forms))]
            text = form.format(caption=text, size=self._word(spec.size_names[scenes.size[i]], rng),
                               background=spec.background_names[scenes.background[i]])
        if present.size and rng.random() < k.distractor_mention_rate:
            j = present[rng.integers(present.size)]
            d = (int(scenes.d_color[i, j]), int(scenes.d_pattern[i, j]), int(scenes.d_shape[i, j]))
            form = spec.distractor_forms[rng.integers(len(spec.distractor_forms))]
            text = form.format(caption=text, distractor=self.phrase(d, rng, reorder=False))
        return self._fill(text, rng)

    def _fill(self, text: str, rng: np.random.Generator) -> str:
        if rng.random() < self.knobs.filler_rate:
            filler = self.spec.fillers[rng.integers(len(self.spec.fillers))]
            text = f"{filler} {text}" if rng.random() < 0.5 else f"{text} {filler}"
        return text

    def captions(self, scenes: Scenes, rng: np.random.Generator) -> List[str]:
        return [self.caption(scenes, i, rng) for i in range(len(scenes))]


def captions(spec: WorldSpec, knobs: WorldKnobs, scenes: Scenes, rng: np.random.Generator,
             banned: Optional[Collection[Composition]] = None) -> List[str]:
    """One caption per scene (see :class:`CaptionWriter`)."""
    return CaptionWriter(spec, knobs, banned or ()).captions(scenes, rng)
