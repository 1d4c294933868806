"""Zero-shot-initialised fine-tuning, its augmentations, and weight averaging (soups, interpolation)."""
from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from zslab.errors import InvalidChoiceError
from zslab.methods.weight_averaging import average_states, greedy_soup, interpolate_states
from zslab.train.contrastive import images_to_tensor
from zslab.train.finetune import (AUGMENTATIONS, MAX_SHIFT, FinetuneConfig, finetune_classifier,
                                  zero_shot_init_classifier)

TINY = dict(embed_dim=16, vision_cfg=dict(image_size=16, layers=1, width=32, head_width=16, patch_size=8),
            text_cfg=dict(context_length=8, vocab_size=64, width=32, heads=2, layers=1))
MEAN = STD = (0.5, 0.5, 0.5)


def tiny_clip(seed=0):
    torch.manual_seed(seed)
    return open_clip.CLIP(**TINY).eval()


def colour_task(n_per_class=12, seed=0):
    """Four classes of solid colours with pixel noise: learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    palette = torch.tensor([[220, 30, 30], [30, 220, 30], [30, 30, 220], [220, 220, 30]], dtype=torch.float32)
    labels = torch.arange(4).repeat_interleave(n_per_class)
    images = palette[labels][:, None, None, :] + 20 * torch.randn(len(labels), 16, 16, 3, generator=g)
    return images.clamp(0, 255).to(torch.uint8), labels


def test_the_classifier_starts_as_the_zero_shot_head_and_leaves_the_model_alone():
    clip = tiny_clip()
    heads = F.normalize(torch.randn(4, 16, generator=torch.Generator().manual_seed(1)), dim=-1)
    classifier = zero_shot_init_classifier(clip, heads, 50.0)
    x = images_to_tensor(colour_task()[0][:8], MEAN, STD)
    with torch.no_grad():
        zero_shot = 50.0 * F.normalize(clip.encode_image(x), dim=-1) @ heads.T
        assert torch.allclose(classifier(x), zero_shot, atol=1e-4)
    assert classifier.visual is not clip.visual  # a copy: fine-tuning cannot change the pretrained model


def test_fine_tuning_learns_is_deterministic_and_refuses_bad_input():
    images, labels = colour_task()
    heads = F.normalize(torch.randn(4, 16, generator=torch.Generator().manual_seed(1)), dim=-1)
    cfg = FinetuneConfig(steps=40, batch_size=16, lr=3e-3, warmup_steps=4, augment="flip-shift")
    runs = []
    for _ in range(2):
        classifier = zero_shot_init_classifier(tiny_clip(), heads, 20.0)
        history = finetune_classifier(classifier, images, labels, cfg, MEAN, STD)
        runs.append((classifier.state_dict(), history["loss"]))
    assert all(torch.equal(runs[0][0][k], runs[1][0][k]) for k in runs[0][0])
    assert np.mean(runs[0][1][-5:]) < 0.5 * np.mean(runs[0][1][:5])
    with torch.no_grad():
        accuracy = (classifier(images_to_tensor(images, MEAN, STD)).argmax(1) == labels).float().mean()
    assert accuracy > 0.9
    with pytest.raises(ValueError, match="labels of shape"):
        finetune_classifier(classifier, images, labels[:-1], cfg)
    with pytest.raises(ValueError, match="uint8"):
        finetune_classifier(classifier, images.float(), labels, cfg)


def test_config_checks_name_the_bad_value():
    with pytest.raises(InvalidChoiceError, match="mixup"):
        FinetuneConfig(augment="mixup")
    with pytest.raises(ValueError, match="label_smoothing"):
        FinetuneConfig(label_smoothing=1.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        FinetuneConfig(steps=5, warmup_steps=6)


def test_augmentations_keep_shape_and_dtype_and_do_what_they_say():
    g = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (32, 16, 16, 3), generator=g, dtype=torch.uint8)
    for name in AUGMENTATIONS.names():
        out = AUGMENTATIONS.get(name)(batch, torch.Generator().manual_seed(1))
        assert out.shape == batch.shape and out.dtype == torch.uint8, name
    assert torch.equal(AUGMENTATIONS.get("none")(batch, g), batch)
    flipped = AUGMENTATIONS.get("flip")(batch, torch.Generator().manual_seed(1))
    for a, b in zip(batch, flipped):  # each image is itself or its mirror
        assert torch.equal(a, b) or torch.equal(a.flip(1), b)
    # a shift of an image with one bright pixel moves that pixel by at most MAX_SHIFT per axis
    dot = torch.zeros(8, 16, 16, 3, dtype=torch.uint8)
    dot[:, 8, 8] = 255
    shifted = AUGMENTATIONS.get("shift")(dot, torch.Generator().manual_seed(2))
    ys, xs = [], []
    for image in shifted:
        y, x = (image[..., 0] == 255).nonzero()[0].tolist()
        ys.append(y)
        xs.append(x)
        assert abs(y - 8) <= MAX_SHIFT and abs(x - 8) <= MAX_SHIFT and int((image[..., 0] == 255).sum()) == 1
    assert len(set(zip(ys, xs))) > 1


def test_average_and_interpolate_states_by_hand():
    a = {"w": torch.tensor([0.0, 2.0]), "step": torch.tensor([3])}
    b = {"w": torch.tensor([4.0, 6.0]), "step": torch.tensor([3])}
    assert torch.equal(average_states([a, b])["w"], torch.tensor([2.0, 4.0]))
    assert torch.equal(average_states([a, b], [3, 1])["w"], torch.tensor([1.0, 3.0]))
    assert torch.equal(average_states([a, b])["step"], torch.tensor([3]))
    assert torch.equal(interpolate_states(a, b, 0.25)["w"], torch.tensor([1.0, 3.0]))
    assert torch.equal(interpolate_states(a, b, 1.0)["w"], b["w"])
    with pytest.raises(ValueError, match="integer tensor"):
        average_states([a, {**b, "step": torch.tensor([4])}])
    with pytest.raises(ValueError, match="not the same architecture"):
        average_states([a, {"w": b["w"]}])
    with pytest.raises(ValueError, match="shape"):
        average_states([a, {**b, "w": torch.zeros(3)}])
    with pytest.raises(ValueError, match="alpha"):
        interpolate_states(a, b, 1.5)


def test_greedy_soup_keeps_an_ingredient_only_when_the_soup_improves():
    # The score of a state is minus its distance to 1.0: averaging 0.0 with 2.0 helps, adding 5.0 hurts.
    states = [{"w": torch.tensor([v])} for v in (0.0, 5.0, 2.0)]
    own = [-abs(float(s["w"]) - 1.0) for s in states]  # 0.0 and 2.0 tie (-1); 5.0 is last (-4)

    def score(state):
        return -abs(float(state["w"]) - 1.0)

    soup = greedy_soup(states, own, score)
    assert soup.members == [0, 2]  # order by own score (ties keep input order); 5.0 is rejected
    assert float(soup.state["w"]) == 1.0
    assert [t["kept"] for t in soup.trace] == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="one validation score per state"):
        greedy_soup(states, own[:2], score)
