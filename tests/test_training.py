"""The contrastive training loop: determinism, learning, both registered losses, the lr schedule."""
from __future__ import annotations

import math

import numpy as np
import open_clip
import pytest
import torch

from zslab.errors import InvalidChoiceError
from zslab.train import LOSSES, TrainConfig, build_loss, train_contrastive
from zslab.train.contrastive import _lr_at, images_to_tensor
from zslab.train.losses import (alignment, cwcl_weights, hopfield_retrieval, info_loob, soft_cross_entropy,
                                uniformity)

TINY = dict(embed_dim=16,
            vision_cfg=dict(image_size=16, layers=1, width=32, head_width=16, patch_size=8),
            text_cfg=dict(context_length=8, vocab_size=64, width=32, heads=2, layers=1))
MEAN = STD = (0.5, 0.5, 0.5)
#: SigLIP's initialisation: open_clip.CLIP takes the bias as ``init_logit_bias`` (and then outputs ``logit_bias``).
SIGLIP_INIT = dict(init_logit_scale=math.log(10), init_logit_bias=-10.0)


def tiny_clip(seed=0, **kwargs):
    torch.manual_seed(seed)
    return open_clip.CLIP(**TINY, **kwargs)


def random_data(n=24, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 16, 16, 3), generator=g, dtype=torch.uint8)
    tokens = torch.randint(1, 60, (n, k, 8), generator=g)
    tokens[..., -1] = 63          # the end-of-text token: the highest id, where the text tower pools
    return images, tokens


def learnable_data():
    """Eight images of distinct solid colors, each with its own one-word caption."""
    palette = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255],
                            [255, 255, 255], [0, 0, 0]], dtype=torch.uint8)
    n = len(palette)
    images = palette[:, None, None, :].expand(n, 16, 16, 3).contiguous()
    tokens = torch.zeros(n, 1, 8, dtype=torch.long)
    tokens[:, 0, 0] = 1 + torch.arange(n)
    tokens[:, 0, 1] = 63
    return images, tokens


def run(model, data, seed=0, **cfg):
    cfg = TrainConfig(**{"steps": 4, "batch_size": 8, "lr": 3e-3, "warmup_steps": 2, **cfg})
    return train_contrastive(model, *data, cfg, MEAN, STD, seed=seed, progress=False)


def test_training_is_deterministic_for_a_seed():
    data = random_data()
    a = run(tiny_clip(), data, seed=0)
    b = run(tiny_clip(), data, seed=0)
    assert len(a["loss"]) == 4 and all(math.isfinite(x) for x in a["loss"])
    assert a["loss"] == b["loss"]
    c = run(tiny_clip(), data, seed=1)          # another batch order gives other losses
    assert c["loss"] != a["loss"]
    assert a["images_per_second"][0] > 0 and a["seconds"][0] > 0


def test_training_changes_the_weights_and_restores_the_model_mode():
    model = tiny_clip()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run(model, random_data(), steps=2)
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert not model.training and model.output_dict is False
    assert model.logit_scale.item() <= math.log(100) + 1e-6


def test_infonce_loss_decreases_on_a_learnable_case():
    images, tokens = learnable_data()
    hist = run(tiny_clip(), (images, tokens), steps=30, warmup_steps=3)["loss"]
    assert len(hist) == 30
    early, late = np.mean(hist[2:7]), np.mean(hist[-5:])
    assert late < early - 0.5
    assert late < 0.5 * math.log(8)             # far better than chance over a batch of 8


def test_sigmoid_loss_runs_and_decreases():
    model = tiny_clip(**SIGLIP_INIT)
    assert model.logit_bias is not None and model.logit_bias.item() == pytest.approx(-10.0)
    images, tokens = learnable_data()
    hist = run(model, (images, tokens), steps=15, warmup_steps=3, loss="sigmoid")["loss"]
    assert all(math.isfinite(x) for x in hist)
    assert np.mean(hist[-5:]) < 0.5 * hist[0]


def test_all_losses_are_registered_and_callable():
    assert LOSSES.names() == ["cloob", "cwcl", "cwcl-permuted-weights", "cwcl-text-to-image", "infoloob", "infonce",
                              "infonce+align+uniform", "sigmoid"]
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=-1)
    scale = torch.tensor(10.0)
    clip_loss = build_loss("infonce")(img, txt, scale)
    sig_loss = build_loss("sigmoid")(img, txt, scale, torch.tensor(-10.0))
    assert clip_loss.ndim == 0 and math.isfinite(clip_loss.item())
    assert sig_loss.ndim == 0 and math.isfinite(sig_loss.item())
    # aligned features score better than shuffled ones under both losses
    assert build_loss("infonce")(img, img, scale) < build_loss("infonce")(img, img.flip(0), scale)
    assert (build_loss("sigmoid")(img, img, scale, torch.tensor(-5.0))
            < build_loss("sigmoid")(img, img.flip(0), scale, torch.tensor(-5.0)))


def test_cwcl_matches_a_hand_computed_case():
    """Orthogonal texts have weight 1/2 to each other: targets (2/3, 1/3); with identity logits every row's
    loss is log(1 + e) − 2/3, in both directions."""
    eye = torch.eye(2)
    assert torch.allclose(cwcl_weights(eye), torch.tensor([[1.0, 0.5], [0.5, 1.0]]))
    loss = build_loss("cwcl")(eye, eye, torch.tensor(1.0))
    assert loss.item() == pytest.approx(math.log(1 + math.e) - 2 / 3, abs=1e-6)


def test_cwcl_is_infonce_when_the_other_texts_are_opposite():
    """Opposite texts get weight 0: the targets are one-hot and CWCL is InfoNCE."""
    g = torch.Generator().manual_seed(1)
    img = torch.nn.functional.normalize(torch.randn(2, 3, generator=g), dim=-1)
    txt = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    scale = torch.tensor(7.0)
    assert build_loss("cwcl")(img, txt, scale).item() == pytest.approx(build_loss("infonce")(img, txt, scale).item(),
                                                                       abs=1e-6)


def test_cwcl_text_to_image_is_one_hot_from_the_images():
    """One-directional CWCL: InfoNCE's image→text term, CWCL's text→image term, averaged."""
    eye = torch.eye(2)
    one_hot = torch.nn.functional.cross_entropy(eye, torch.arange(2))          # log(1 + e) − 1
    expected = 0.5 * (one_hot.item() + math.log(1 + math.e) - 2 / 3)
    assert build_loss("cwcl-text-to-image")(eye, eye, torch.tensor(1.0)).item() == pytest.approx(expected, abs=1e-6)


def test_cwcl_permuted_weights_keep_the_diagonal_and_the_spread():
    g = torch.Generator().manual_seed(2)
    txt = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=-1)
    img = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=-1)
    w = cwcl_weights(txt)
    torch.manual_seed(0)
    p = torch.randperm(6)
    shuffled = w[p][:, p]
    assert torch.equal(shuffled.diagonal(), w.diagonal())
    assert torch.equal(shuffled.flatten().sort().values, w.flatten().sort().values)
    torch.manual_seed(0)
    permuted = build_loss("cwcl-permuted-weights")(img, txt, torch.tensor(5.0))
    logits = 5.0 * img @ txt.T
    expected = 0.5 * (soft_cross_entropy(logits, shuffled) + soft_cross_entropy(logits.T, shuffled))
    assert permuted.item() == pytest.approx(expected.item(), abs=1e-6)
    assert permuted.item() != pytest.approx(build_loss("cwcl")(img, txt, torch.tensor(5.0)).item(), abs=1e-4)


def test_info_loob_matches_a_hand_computed_case():
    """Three unit pairs at 1/τ = 2: row i scores k_ii against logsumexp of its two off-diagonal k_ij only."""
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    s = 2.0
    k = [[2.0, 0.0, 1.2], [0.0, 2.0, 1.6], [1.2, 1.6, 2.0]]            # s · a aᵀ, by hand
    rows = [math.log(math.exp(k[0][1]) + math.exp(k[0][2])) - k[0][0],
            math.log(math.exp(k[1][0]) + math.exp(k[1][2])) - k[1][1],
            math.log(math.exp(k[2][0]) + math.exp(k[2][1])) - k[2][2]]
    expected = sum(rows) / 3 / s
    assert info_loob(a, a, torch.tensor(s)).item() == pytest.approx(expected, abs=1e-6)
    assert build_loss("infoloob")(a, a, torch.tensor(s)).item() == pytest.approx(2 * expected, abs=1e-6)
    # leaving the positive out: InfoNCE's log-softmax is bounded below by 0, InfoLOOB is not
    assert build_loss("infonce")(a, a, torch.tensor(s)).item() > 0 > expected


def test_alignment_and_uniformity_match_hand_computed_cases():
    x, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert alignment(x, y).item() == pytest.approx((2.0 + 0.0) / 2)           # ‖x0 − y0‖² = 2, ‖x1 − y1‖² = 0
    # three points: distances² 2, 2 and 4 (antipodes) -> log mean(e^-4, e^-4, e^-8)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    expected = math.log((2 * math.exp(-4.0) + math.exp(-8.0)) / 3)
    assert uniformity(z).item() == pytest.approx(expected, abs=1e-6)
    # the combined loss adds both terms to InfoNCE, uniformity taken over images and texts together
    s = torch.tensor(3.0)
    total = build_loss("infonce+align+uniform")(x, y, s).item()
    parts = build_loss("infonce")(x, y, s).item() + 1.0 + uniformity(torch.cat([x, y])).item()
    assert total == pytest.approx(parts, abs=1e-6)


def test_hopfield_retrieval_matches_a_hand_computed_case():
    stored = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = hopfield_retrieval(torch.tensor([[1.0, 0.0]]), stored, beta=math.log(3.0))
    # softmax(ln3 · [1, 0]) = [3/4, 1/4]; the retrieved pattern [0.75, 0.25], normalised
    assert out[0].tolist() == pytest.approx([3 / math.sqrt(10), 1 / math.sqrt(10)], abs=1e-6)


def test_cloob_reduces_to_infoloob_when_retrieval_returns_the_pattern_itself():
    """Orthonormal, aligned pairs and a sharp memory (large β): every pattern retrieves itself, so CLOOB's
    four retrievals are the features and its loss is symmetric InfoLOOB; a soft memory (small β) blurs the
    retrievals toward each other and changes the loss."""
    x = torch.eye(4)[:3]
    s = torch.tensor(5.0)
    assert build_loss("cloob", hopfield_scale=200.0)(x, x, s).item() == pytest.approx(
        build_loss("infoloob")(x, x, s).item(), abs=1e-5)
    assert build_loss("cloob", hopfield_scale=0.5)(x, x, s).item() != pytest.approx(
        build_loss("infoloob")(x, x, s).item(), abs=1e-3)


@pytest.mark.parametrize("loss", ["infoloob", "cloob", "infonce+align+uniform", "cwcl"])
def test_new_losses_train_deterministically_and_learn(loss):
    images, tokens = learnable_data()
    a = run(tiny_clip(init_logit_scale=math.log(30)), (images, tokens), steps=15, warmup_steps=3, loss=loss,
            learn_logit_scale=False)["loss"]
    b = run(tiny_clip(init_logit_scale=math.log(30)), (images, tokens), steps=15, warmup_steps=3, loss=loss,
            learn_logit_scale=False)["loss"]
    assert a == b and all(math.isfinite(x) for x in a)
    assert np.mean(a[-5:]) < a[0] - 0.05        # losses carry the factor τ = 1/30: 0.05 is 1.5 nats


def test_a_fixed_temperature_stays_fixed_and_a_learned_one_moves():
    fixed = tiny_clip(init_logit_scale=math.log(30))
    run(fixed, random_data(), learn_logit_scale=False)
    assert fixed.logit_scale.item() == pytest.approx(math.log(30)) and fixed.logit_scale.requires_grad
    learned = tiny_clip(init_logit_scale=math.log(30))
    run(learned, random_data())
    assert learned.logit_scale.item() != pytest.approx(math.log(30))


def test_unknown_loss_names_the_valid_ones():
    with pytest.raises(InvalidChoiceError) as err:
        build_loss("hinge")
    assert "'hinge'" in str(err.value) and "'infonce'" in str(err.value) and "'sigmoid'" in str(err.value)
    with pytest.raises(InvalidChoiceError, match="'infonce'"):
        run(tiny_clip(), random_data(), loss="hinge")


def test_mismatched_images_and_captions_raise():
    images, tokens = random_data(n=8)
    with pytest.raises(ValueError, match="8 images but 7 caption rows"):
        run(tiny_clip(), (images, tokens[:7]))


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(steps=100, lr=2.0, warmup_steps=10)
    lrs = [_lr_at(s, cfg) for s in range(cfg.steps)]
    warm, rest = lrs[:10], lrs[10:]
    assert warm == pytest.approx([2.0 * (s + 1) / 10 for s in range(10)])
    assert all(a < b for a, b in zip(warm, warm[1:]))
    assert max(lrs) == pytest.approx(2.0) and rest[0] == pytest.approx(2.0)
    assert all(a >= b for a, b in zip(rest, rest[1:])) and rest[0] > rest[-1]
    assert rest[-1] < 0.01 * 2.0
    assert _lr_at(10 + 45, cfg) == pytest.approx(1.0)     # cosine: half-way down at half-way


def test_the_optimizer_uses_the_schedule(monkeypatch):
    seen = []
    original = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        seen.append([g["lr"] for g in self.param_groups])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    cfg = dict(steps=6, warmup_steps=3, lr=1e-3)
    run(tiny_clip(), random_data(), **cfg)
    expected = [_lr_at(s, TrainConfig(**cfg)) for s in range(6)]
    assert [lrs[0] for lrs in seen] == pytest.approx(expected)
    assert all(len(set(lrs)) == 1 for lrs in seen)        # every parameter group follows it


def test_images_to_tensor_matches_manual_normalisation():
    images, _ = random_data(n=2)
    x = images_to_tensor(images, (0.1, 0.2, 0.3), (0.5, 0.25, 2.0))
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.float32
    manual = (images[1, 4, 5, 2].item() / 255.0 - 0.3) / 2.0
    assert x[1, 2, 4, 5].item() == pytest.approx(manual, abs=1e-6)


def test_fast_tokenize_gives_open_clips_ids():
    """Word-by-word tokenizing of zsworld captions (and of texts that stress the cleaning) equals
    open_clip's SimpleTokenizer, truncation included."""
    from zslab.train.zoo import fast_tokenize, training_data, offline_model_entry

    entry = offline_model_entry("zsclip-micro")
    entry["world"] = {**entry["world"], "n_train": 300}
    _, per_image, _ = training_data(entry, seed=0)
    texts = sorted({c for caps in per_image for c in caps}) + [
        "A  Photo\tof a RED  square.", "it's a 3-d plot's corner", "caf\u00e9 &amp; cr\u00e8me", "x" * 90,
        " ".join(["word"] * 40), "", "   ", "don't&nbsp;stop", "e\u0301t\u00e9 ok", "\x1b[31mred\x1b[0m text"]
    for ctx in (20, 77):
        tok = open_clip.SimpleTokenizer(context_length=ctx)
        assert torch.equal(fast_tokenize(tok, texts), tok(texts))


# --------------------------------------------------------------------------------------------------------
# Training only the token-embedding rows a corpus uses (train/compact_vocab.py)
# --------------------------------------------------------------------------------------------------------
def test_compact_vocabulary_trains_bit_identical_weights(monkeypatch):
    """Rows no caption uses never move under AdamW without weight decay on embeddings, so leaving them out
    of the optimizer must give the same weights, bit for bit (and untouched rows keep their values)."""
    import zslab.train.contrastive as contrastive

    images, tokens = random_data(n=32, k=2, seed=3)
    tokens = torch.where(tokens % 3 == 0, tokens, torch.zeros_like(tokens))   # a sparse vocabulary
    compact, full = tiny_clip(), tiny_clip()
    run(compact, (images, tokens), steps=6)
    monkeypatch.setattr(contrastive, "supports_compaction", lambda model: False)
    run(full, (images, tokens), steps=6)
    for name, value in compact.state_dict().items():
        assert torch.equal(value, full.state_dict()[name]), name
    unused = torch.ones(64, dtype=torch.bool)
    unused[torch.unique(tokens)] = False
    assert torch.equal(compact.token_embedding.weight[unused], tiny_clip().token_embedding.weight[unused])
    assert isinstance(compact.token_embedding, torch.nn.Embedding) and compact.token_embedding.num_embeddings == 64


def test_compact_vocabulary_restores_the_full_table_on_error():
    from zslab.train.compact_vocab import compact_token_embedding

    model = tiny_clip()
    table = model.token_embedding
    tokens = torch.tensor([[5, 0, 63], [9, 5, 63]])
    with pytest.raises(RuntimeError, match="boom"):
        with compact_token_embedding(model, tokens) as renumbered:
            assert renumbered.tolist() == [[1, 0, 3], [2, 1, 3]]      # order kept: end of text stays largest
            assert model.token_embedding.num_embeddings == 4
            raise RuntimeError("boom")
    assert model.token_embedding is table


def test_compaction_needs_argmax_pooling_and_a_plain_embedding():
    from zslab.train.compact_vocab import supports_compaction

    assert supports_compaction(tiny_clip())
    eos = tiny_clip()
    eos.text_pool_type = "eos"          # pools at one fixed id, which renumbering would move
    assert not supports_compaction(eos)
    assert not supports_compaction(torch.nn.Linear(2, 2))
