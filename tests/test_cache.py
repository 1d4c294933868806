"""TensorCache (content keys, damaged entries, atomic saves) and cached image features."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from zslab.cache import RowCache, TensorCache, cache_key
from zslab.datasets import build_dataset
from zslab.embeddings import image_features
from zslab.models import LoadedModel

DESC = {"kind": "image_features", "model": "abc123", "preprocess": "Compose(...)",
        "dataset": {"dataset": "zsworld", "split": "unseen", "n_per_class": 3, "seed": 0}}


def make_tensors(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"features": torch.randn(5, 4, generator=g), "labels": torch.arange(5)}


class Counting:
    def __init__(self, seed=0):
        self.calls = 0
        self.seed = seed

    def __call__(self):
        self.calls += 1
        return make_tensors(self.seed)


def leftovers(root):
    return [p for p in root.rglob("*") if p.is_file() and p.suffix != ".pt"] + list(root.rglob(".*"))


def test_miss_then_hit(tmp_path):
    cache = TensorCache(tmp_path)
    compute = Counting()
    first = cache.get_or_compute(DESC, compute)
    assert (cache.misses, cache.hits, compute.calls) == (1, 0, 1)
    assert cache.path(DESC).is_file()
    second = cache.get_or_compute(DESC, compute)
    assert (cache.misses, cache.hits, compute.calls) == (1, 1, 1)
    assert set(second) == {"features", "labels"}
    assert all(torch.equal(first[k], second[k]) for k in first)
    # a fresh cache object over the same folder hits too
    other = TensorCache(tmp_path)
    assert other.load(DESC) is not None and other.misses == 0


def test_key_changes_with_every_description_field(tmp_path):
    cache = TensorCache(tmp_path)
    base = cache.path(DESC)
    assert cache.path(dict(reversed(list(DESC.items())))) == base      # key order does not matter
    variants = [
        {**DESC, "kind": "text_features"},
        {**DESC, "model": "abc124"},
        {**DESC, "preprocess": "Compose(other)"},
        {**DESC, "dataset": {**DESC["dataset"], "n_per_class": 4}},
        {**DESC, "dataset": {**DESC["dataset"], "seed": 1}},
        {**DESC, "dataset": {**DESC["dataset"], "split": "seen"}},
        {**DESC, "extra": None},
    ]
    paths = {cache.path(v) for v in variants}
    assert base not in paths and len(paths) == len(variants)
    assert len(cache_key(DESC)) == 64 and base.parent.name == cache_key(DESC)[:2]


def test_truncated_entry_warns_and_is_recomputed(tmp_path):
    cache = TensorCache(tmp_path)
    compute = Counting()
    cache.get_or_compute(DESC, compute)
    path = cache.path(DESC)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(RuntimeWarning, match="corrupt"):
        again = cache.get_or_compute(DESC, compute)
    assert compute.calls == 2 and cache.misses == 2 and cache.hits == 0
    assert torch.equal(again["features"], make_tensors()["features"])
    # the rebuilt entry is sound: the next read hits without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.load(DESC) is not None


def test_tampered_entry_warns_and_is_recomputed(tmp_path):
    cache = TensorCache(tmp_path)
    compute = Counting()
    cache.get_or_compute(DESC, compute)
    path = cache.path(DESC)
    entry = torch.load(path, weights_only=True)
    entry["tensors"]["features"][0, 0] += 1.0          # content changed, checksum left as it was
    torch.save(entry, path)
    with pytest.warns(RuntimeWarning, match="checksum"):
        again = cache.get_or_compute(DESC, compute)
    assert compute.calls == 2
    assert torch.equal(again["features"], make_tensors()["features"])
    entry = torch.load(path, weights_only=True)
    entry["checksum"] = "0" * 64                         # a wrong checksum on intact tensors
    torch.save(entry, path)
    with pytest.warns(RuntimeWarning, match="checksum"):
        assert cache.load(DESC) is None
    assert not path.exists()                             # the damaged entry is removed


def test_no_temporary_files_remain_after_save(tmp_path):
    cache = TensorCache(tmp_path)
    for seed in range(3):
        cache.save({**DESC, "model": str(seed)}, make_tensors(seed))
    assert len(list(tmp_path.rglob("*.pt"))) == 3
    assert leftovers(tmp_path) == []


def test_failed_compute_leaves_nothing(tmp_path):
    cache = TensorCache(tmp_path)

    def boom():
        raise RuntimeError("encoder exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        cache.get_or_compute(DESC, boom)
    assert not cache.path(DESC).exists() and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------ image features

@pytest.fixture
def count_encodes(monkeypatch):
    counter = {"calls": 0, "images": 0}
    original = LoadedModel.encode_image

    def counting(self, images, normalize=True):
        counter["calls"] += 1
        counter["images"] += len(images)
        return original(self, images, normalize=normalize)

    monkeypatch.setattr(LoadedModel, "encode_image", counting)
    return counter


def test_image_features_are_encoded_once(zsclip_micro, count_encodes, tmp_path):
    cache = TensorCache(tmp_path)
    ds = build_dataset("zsworld", split="unseen", n_per_class=3)
    n = len(ds)                                            # 3 images of each unseen class of the world
    batches = -(-n // 16)
    assert n >= 17 and n % 3 == 0                          # more than one batch
    feats, labels = image_features(zsclip_micro, ds, batch_size=16, cache=cache, progress=False)
    assert count_encodes["calls"] == batches and count_encodes["images"] == n
    assert feats.shape == (n, 32) and labels.tolist() == ds.targets.tolist()
    assert torch.linalg.norm(feats, dim=1).tolist() == pytest.approx([1.0] * n, abs=1e-5)
    feats2, labels2 = image_features(zsclip_micro, ds, batch_size=16, cache=cache, progress=False)
    assert count_encodes["calls"] == batches               # warm: no encoding
    assert torch.equal(feats, feats2) and torch.equal(labels, labels2)
    assert (cache.misses, cache.hits) == (1, 1)
    # use_cache=False encodes again, to the same numbers
    feats3, _ = image_features(zsclip_micro, ds, batch_size=16, cache=cache, use_cache=False, progress=False)
    assert count_encodes["calls"] == 2 * batches and torch.allclose(feats, feats3, atol=1e-6)


def test_a_warm_rerun_never_renders_the_generated_images(zsclip_micro, tmp_path, monkeypatch):
    """zsworld's images are drawn on first access; features found in the cache by the dataset's identity
    need none, so a warm rerun skips the rendering (seconds per notebook)."""
    import zslab.datasets.zsworld as zsworld_module

    cache = TensorCache(tmp_path)
    first = build_dataset("zsworld", split="unseen", n_per_class=2)
    feats, _ = image_features(zsclip_micro, first, cache=cache, progress=False)
    renders = []
    real_render = zsworld_module.render
    monkeypatch.setattr(zsworld_module, "render", lambda *a, **k: renders.append(1) or real_render(*a, **k))
    again = build_dataset("zsworld", split="unseen", n_per_class=2)
    warm, _ = image_features(zsclip_micro, again, cache=cache, progress=False)
    assert torch.equal(feats, warm) and renders == []
    assert np.array_equal(np.asarray(again[0][0]), np.asarray(first[0][0])) and renders   # drawn when asked


def test_image_features_miss_for_another_selection(zsclip_micro, count_encodes, tmp_path):
    cache = TensorCache(tmp_path)
    base = build_dataset("zsworld", split="unseen", n_per_class=2)
    image_features(zsclip_micro, base, cache=cache, progress=False)
    assert cache.misses == 1 and count_encodes["calls"] == 1
    more = build_dataset("zsworld", split="unseen", n_per_class=3)
    f_more, _ = image_features(zsclip_micro, more, cache=cache, progress=False)
    assert cache.misses == 2 and count_encodes["calls"] == 2 and f_more.shape[0] == len(more) == len(base) * 3 // 2
    reseeded = build_dataset("zsworld", split="unseen", n_per_class=2, seed=1)
    f_seed, _ = image_features(zsclip_micro, reseeded, cache=cache, progress=False)
    assert cache.misses == 3 and count_encodes["calls"] == 3
    f_base, _ = image_features(zsclip_micro, base, cache=cache, progress=False)
    assert cache.hits == 1 and count_encodes["calls"] == 3
    assert not torch.equal(f_seed, f_base)


def test_image_features_default_cache_lives_under_zslab_cache(zsclip_micro, count_encodes, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv("ZSLAB_CACHE", str(tmp_path / "private"))
    ds = build_dataset("zsworld", split="unseen", n_per_class=1)
    image_features(zsclip_micro, ds, progress=False)
    image_features(zsclip_micro, ds, progress=False)
    assert count_encodes["calls"] == 1
    assert len(list((tmp_path / "private" / "embeddings").rglob("*.pt"))) == 1


# ---------------------------------------------------------------------------------------------------------
# RowCache: per-row results shared by every subset of one source
# ---------------------------------------------------------------------------------------------------------
def _row_values(rows):
    return {"x": torch.as_tensor(np.asarray(rows), dtype=torch.float32)[:, None] * torch.ones(1, 3)}


def test_row_cache_computes_only_rows_no_shard_holds(tmp_path):
    store, asked = RowCache(tmp_path), []
    source = {"dataset": "toy"}

    def compute_for(rows):
        def compute(positions):
            asked.append(sorted(int(r) for r in np.asarray(rows)[positions]))
            return _row_values(np.asarray(rows)[positions])
        return compute

    first = np.array([5, 1, 9])
    out = store.get_or_compute(source, first, compute_for(first))["x"]
    assert out[:, 0].tolist() == [5, 1, 9] and asked == [[1, 5, 9]]
    second = np.array([9, 2, 2, 1, 7])  # repeats, overlaps and new rows
    out = store.get_or_compute(source, second, compute_for(second))["x"]
    assert out[:, 0].tolist() == [9, 2, 2, 1, 7] and asked[-1] == [2, 7]
    assert store.rows_computed == 5 and store.rows_read == 2  # 9 and 1 were stored; 2 is computed once
    before = len(asked)
    store.get_or_compute(source, second, compute_for(second))
    assert len(asked) == before  # everything stored: compute is not called
    assert len(list(store.folder(source).glob("*.pt"))) == 2
    store.get_or_compute({"dataset": "other"}, first, compute_for(first))
    assert asked[-1] == [1, 5, 9]  # another source shares nothing


def test_row_cache_recomputes_a_damaged_shard_and_checks_sizes(tmp_path):
    store = RowCache(tmp_path)
    rows = np.array([0, 3])
    store.get_or_compute({"s": 1}, rows, lambda pos: _row_values(rows[pos]))
    shard = next(store.folder({"s": 1}).glob("*.pt"))
    shard.write_bytes(shard.read_bytes()[:40])
    with pytest.warns(RuntimeWarning, match="corrupt"):
        out = store.get_or_compute({"s": 1}, rows, lambda pos: _row_values(rows[pos]))
    assert out["x"][:, 0].tolist() == [0, 3]
    with pytest.raises(ValueError, match="returned 1 rows"):
        store.get_or_compute({"s": 2}, rows, lambda pos: _row_values(rows[pos][:1]))
    with pytest.raises(ValueError, match="non-negative"):
        store.get_or_compute({"s": 1}, np.array([-1]), lambda pos: _row_values(pos))
