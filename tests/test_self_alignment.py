"""S3A's pieces (zslab.methods.self_alignment) on features whose clusters and names are known."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zslab.errors import InvalidChoiceError
from zslab.methods.self_alignment import (cluster_votes, kmeans, realign, self_structural_alignment,
                                          self_train_map, vocabulary)

WORLD = {"holdout_fraction": 0.2, "split_kind": "compositions", "split_seed": 0}


def _blobs(n_per: int = 20, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(3, 8)
    x = torch.cat([centres[i] + 0.05 * torch.randn(n_per, 8, generator=g) for i in range(3)])
    return F.normalize(x, dim=-1), torch.arange(3).repeat_interleave(n_per)


def test_kmeans_recovers_separated_blobs_up_to_relabelling():
    x, y = _blobs()
    labels = kmeans(x, 3, seed=1)
    for c in range(3):                        # each true blob sits in one cluster, and blobs do not share one
        assert len(set(labels[y == c].tolist())) == 1
    assert len(set(labels.tolist())) == 3
    with pytest.raises(ValueError, match="k must be"):
        kmeans(x, 0)


def test_realign_matches_clusters_to_distinct_names():
    votes = torch.tensor([[5.0, 4.0, 0.0], [6.0, 0.0, 1.0]])   # both clusters' plurality is name 0
    assert realign(votes, matching=False).tolist() == [0, 0]
    assert realign(votes).tolist() == [1, 0]                     # 4 + 6 beats 5 + 1
    votes = cluster_votes(torch.tensor([0, 0, 1]), torch.tensor([2, 2, 1]), k=2, n_names=3)
    assert votes.tolist() == [[0, 0, 2], [0, 1, 0]]


def test_self_training_moves_features_toward_their_pseudo_labels():
    x, y = _blobs()
    names = torch.eye(3, 8)[[1, 2, 0]]                            # each blob's name embedding is another blob's axis
    before = (x @ names.T).argmax(1).eq(y).float().mean()
    m = self_train_map(x, y, names, scale=10.0, steps=200, lr=0.05, anchor=0.0)
    after = (F.normalize(x @ m, dim=-1) @ names.T).argmax(1).eq(y).float().mean()
    assert before == 0 and after == 1


def test_loop_finds_names_for_clusters_with_weak_zero_shot():
    x, y = _blobs(seed=2)
    # vocabulary of 5 names: the 3 true ones (axes 0-2, shifted so zero-shot confuses 0 and 1) and 2 distractors
    vocab = F.normalize(torch.stack([torch.eye(8)[0] + 0.9 * torch.eye(8)[1], torch.eye(8)[1], torch.eye(8)[2],
                                     torch.eye(8)[3], torch.eye(8)[4]]), dim=-1)
    zero_shot = (x @ vocab.T).argmax(1).eq(y).float().mean()
    result = self_structural_alignment(x, vocab, k=3, scale=10.0, iterations=2, seed=0, true_vocab_index=y)
    assert len(result.pseudo_accuracy) == 2 and len(result.cluster_names) == 2
    assert sorted(result.cluster_names[-1].tolist()) == [0, 1, 2]
    assert result.predictions.eq(y).float().mean() >= zero_shot


def test_vocabularies_cover_the_world_and_name_the_choices():
    names = vocabulary("world compositions", WORLD)
    assert len(names) == 192 and "red solid circle" in names
    with pytest.raises(InvalidChoiceError, match="'everything'.*world compositions"):
        vocabulary("everything", WORLD)


def test_cached_alignment_equals_the_computed_one_and_reads_the_cache(tmp_path, monkeypatch):
    import zslab.methods.self_alignment as s3a
    from zslab.cache import TensorCache

    g = torch.Generator().manual_seed(0)
    features, vocab = torch.randn(60, 8, generator=g), torch.randn(5, 8, generator=g)
    truth = torch.randint(0, 5, (60,), generator=g)
    cache = TensorCache(tmp_path)
    direct = s3a.self_structural_alignment(features, vocab, 4, 10.0, 2, seed=1, true_vocab_index=truth)
    first = s3a.cached_self_structural_alignment(features, vocab, 4, 10.0, 2, seed=1, true_vocab_index=truth,
                                                 cache=cache)
    monkeypatch.setattr(s3a, "self_structural_alignment", lambda *a, **k: pytest.fail("recomputed"))
    again = s3a.cached_self_structural_alignment(features, vocab, 4, 10.0, 2, seed=1, true_vocab_index=truth,
                                                 cache=cache)
    for result in (first, again):
        assert torch.equal(result.predictions, direct.predictions)
        assert result.pseudo_accuracy == direct.pseudo_accuracy
        assert all(torch.equal(a, b) for a, b in zip(result.cluster_names, direct.cluster_names))
    with pytest.raises(BaseException, match="recomputed"):     # other inputs are another entry
        s3a.cached_self_structural_alignment(features, vocab, 4, 10.0, 2, seed=2, cache=cache)
