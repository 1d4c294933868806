"""One-switch-at-a-time evaluation (zslab.methods.gap_diagnosis) on a small random open_clip model written by
the test: each switch changes only what it names, and a switched model never reuses the reference's cache."""
from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from torchvision import transforms

from conftest import write_random_clip_folder

from zslab.methods.gap_diagnosis import (EXPECTED_EFFECT, OPENAI_MEAN, SWITCHES, Evaluation, applicable_switches,
                                         default_synonyms, evaluate_switches, inputs_at_model_size, normalisation_of, squash_resize,
                                         swap_activation, with_normalisation)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from zslab.models import load_model

    return load_model(f"local-dir:{write_random_clip_folder(tmp_path_factory.mktemp('tiny_clip'))}")


def test_activation_swap_changes_every_gelu_and_the_outputs(tiny_model):
    from open_clip.transformer import QuickGELU

    swapped = swap_activation(tiny_model.model, to_quick_gelu=True)
    assert not any(isinstance(m, torch.nn.GELU) for m in swapped.modules())
    assert sum(isinstance(m, QuickGELU) for m in swapped.modules()) == sum(
        isinstance(m, torch.nn.GELU) for m in tiny_model.model.modules()) > 0
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(swapped.encode_image(x), tiny_model.model.encode_image(x))
    with pytest.raises(ValueError, match="no QuickGELU layer to swap"):
        swap_activation(tiny_model.model, to_quick_gelu=False)


def test_preprocessing_switches_change_only_their_step():
    pre = open_clip.image_transform(32, is_train=False, mean=(0.5,) * 3, std=(0.5,) * 3)
    other = with_normalisation(pre, OPENAI_MEAN, (0.2, 0.2, 0.2))
    assert normalisation_of(other)[0] == pytest.approx(OPENAI_MEAN) and normalisation_of(pre)[0] == (0.5, 0.5, 0.5)
    squashed = squash_resize(pre)
    assert not any(isinstance(t, transforms.CenterCrop) for t in squashed.transforms)
    from PIL import Image

    wide = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 60, 3), dtype=np.uint8))
    assert squashed(wide).shape == pre(wide).shape == (3, 32, 32)
    assert not torch.allclose(squashed(wide), pre(wide))            # a non-square image: the crop mattered
    with pytest.raises(ValueError, match="no Normalize step"):
        with_normalisation(transforms.Compose([transforms.ToTensor()]), (0,) * 3, (1,) * 3)


def test_switches_on_the_same_images(tiny_model):
    from zslab.datasets import build_dataset

    ds = build_dataset("zsworld", split="unseen", n_per_class=2, seed=0)
    reference = Evaluation(tiny_model, list(ds.classes), ["a photo of a {c}."])
    context = {"templates": ["a {c}", "the {c}"], "synonyms": default_synonyms("zsworld")}
    assert default_synonyms("zsworld")["square"] == "box" and default_synonyms("imagenet") == {}
    renamed = SWITCHES.get("rarer class-name synonyms")(reference, context)
    assert "red spotted box" in renamed.classes and renamed.model is reference.model
    quick = SWITCHES.get("QuickGELU forced")(reference, context)
    assert quick.model.fingerprint != tiny_model.fingerprint and quick.model.fingerprint.startswith(tiny_model.fingerprint)
    out = evaluate_switches(reference, ds, applicable_switches(list(SWITCHES), context), context)
    assert set(out) == {"reference", *SWITCHES.names()} and all(len(v) == len(ds) for v in out.values())
    # zsworld images are square at the input size: resizing differently changes nothing
    np.testing.assert_array_equal(out["squash resize"], out["reference"])
    assert applicable_switches(["rarer class-name synonyms", "bf16 inference"], {"synonyms": {}}) == ["bf16 inference"]
    assert inputs_at_model_size(ds, tiny_model.preprocess)
    assert applicable_switches(["squash resize", "bf16 inference"], {"inputs_at_model_size": True}) == ["bf16 inference"]
    with pytest.raises(Exception, match="valid choices"):
        applicable_switches(["fp8"], context)
    assert set(EXPECTED_EFFECT) == set(SWITCHES.names())
