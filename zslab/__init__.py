"""zslab: a lab bench for zero-shot learning research.

The package is what the paper notebooks in ``notebooks/`` call: model loading (``zslab.models``), the
dataset registry (``zslab.datasets``), the offline world (``zslab.world``), zero-shot heads
(``zslab.zeroshot``), the embedding cache (``zslab.cache``), metrics, training loops (``zslab.train``),
records (``zslab.records``) and the papermill runner (``zslab.runner``, ``zslab`` CLI).
"""
__version__ = "0.1.0"
