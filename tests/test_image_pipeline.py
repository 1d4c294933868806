"""The tensor path (decode and resize as tensor ops, what runs on a GPU) against the exact PIL path, on the
CPU: same geometry read off the model's preprocessing, features that agree (mean cosine >= 0.999), batching
by size that changes nothing, settings chosen by device, and cache keys that keep the paths apart."""
from __future__ import annotations

import dataclasses

import open_clip
import pytest
import torch
import torchvision.transforms as T

from zslab.cache import TensorCache
from zslab.datasets import build_dataset, export_imagefolder, subsample
from zslab.embeddings import cached_text_encoder, image_features
from zslab.errors import InvalidChoiceError
from zslab.image_pipeline import (EncodeSettings, UnsupportedPreprocessError, batch_by_size, geometry_of,
                                  model_batches, resize_and_crop)
from zslab.models import load_model, save_random_local_dir

#: photo-like sizes: landscape, portrait, square, odd sizes, one smaller than the model's input
SIZES = [(500, 375), (375, 500), (256, 256), (333, 250), (97, 130), (640, 427)]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """zsworld test images written as JPEGs (and a few PNGs) of mixed sizes: an imagefolder on disk."""
    source = subsample(build_dataset("zsworld", split="unseen"), n_per_class=4, seed=0)
    root = tmp_path_factory.mktemp("photos")
    export_imagefolder(source, root, image_format="jpg", sizes=SIZES)
    png = subsample(source, max_samples=6, seed=1)
    export_imagefolder(png, root, image_format="png", sizes=SIZES[:3])
    return build_dataset("imagefolder", root=str(root))


def _cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=1)


def test_geometry_is_read_off_open_clip_preprocessing():
    _, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32")
    g = geometry_of(preprocess)
    assert (g.resize, g.crop, g.interpolation, g.antialias) == (224, (224, 224), T.InterpolationMode.BICUBIC, True)
    assert g.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))


@pytest.mark.parametrize("step", [T.Resize((224, 200)), T.Pad(4), T.Lambda(lambda x: x)])
def test_a_step_the_tensor_path_cannot_copy_is_named_not_guessed(step):
    preprocess = T.Compose([T.Resize(32), T.CenterCrop(32), step, T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    with pytest.raises(UnsupportedPreprocessError, match="pipeline='exact'"):
        geometry_of(preprocess)


def test_resizing_grouped_by_size_equals_resizing_one_by_one(zsclip_micro):
    g = geometry_of(zsclip_micro.preprocess)
    gen = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
              for h, w in [(40, 50), (64, 48), (40, 50), (33, 33), (64, 48)]]
    batched = batch_by_size(images, g)
    one_by_one = torch.stack([batch_by_size([im], g)[0] for im in images])
    assert batched.shape == (5, 3, 32, 32)
    assert torch.equal(batched, one_by_one)
    assert resize_and_crop(images[0][None], g).dtype == torch.uint8      # quantised like PIL's output


def test_settings_follow_the_device_and_name_bad_choices():
    cpu = EncodeSettings.resolve("cpu")
    assert (cpu.pipeline, cpu.precision, cpu.num_workers, cpu.channels_last) == ("exact", "fp32", 0, False)
    assert cpu.cache_fields() == {}                       # the CPU keys of earlier runs stay valid
    assert EncodeSettings.resolve("cpu", reads_files=True).num_workers >= 1       # decoding overlaps the model
    gpu = EncodeSettings.resolve("cuda")                  # resolving needs no GPU, only the device name
    assert (gpu.pipeline, gpu.precision, gpu.pin_memory, gpu.channels_last) == ("fast", "bf16", True, True)
    assert gpu.num_workers >= 1 and gpu.cache_fields() == {"pipeline": "fast", "precision": "bf16"}
    odd = T.Compose([T.Resize((10, 20)), T.ToTensor()])  # a preprocessing the tensor path cannot copy
    assert EncodeSettings.resolve("cuda", preprocess=odd).pipeline == "exact"
    with pytest.raises(InvalidChoiceError, match="exact"):
        EncodeSettings.resolve("cpu", pipeline="turbo")
    with pytest.raises(InvalidChoiceError, match="bf16"):
        EncodeSettings.resolve("cpu", precision="fp8")
    with pytest.raises(ValueError, match="num_workers"):
        EncodeSettings.resolve("cpu", num_workers=-1)


def test_tensor_path_batches_keep_order_and_labels(photo_folder, zsclip_micro):
    settings = EncodeSettings.resolve("cpu", pipeline="fast", num_workers=2)
    n_batches, batches = model_batches(photo_folder, zsclip_micro.preprocess, 16, settings)
    images, labels = zip(*batches)
    assert n_batches == len(images) == -(-len(photo_folder) // 16)
    assert torch.equal(torch.cat(labels), torch.as_tensor(photo_folder.targets))
    assert torch.cat(images).shape == (len(photo_folder), 3, 32, 32)


def test_tensor_path_agrees_with_the_exact_path_on_jpeg_and_png_files(photo_folder, zsclip_micro):
    exact, y_exact = image_features(zsclip_micro, photo_folder, use_cache=False, progress=False)
    fast, y_fast = image_features(zsclip_micro, photo_folder, use_cache=False, progress=False, pipeline="fast")
    assert torch.equal(y_exact, y_fast)
    cos = _cosines(exact, fast)
    assert cos.mean() >= 0.999 and cos.min() >= 0.99, (float(cos.mean()), float(cos.min()))


def test_tensor_path_agrees_at_vit_b_32_resolution(photo_folder, tmp_path):
    folder = save_random_local_dir("ViT-B-32", tmp_path / "vit", seed=0)
    model = load_model(f"local-dir:{folder}")
    few = subsample(photo_folder, max_samples=24, seed=0)
    exact, _ = image_features(model, few, use_cache=False, progress=False)
    fast, _ = image_features(model, few, use_cache=False, progress=False, pipeline="fast")
    cos = _cosines(exact, fast)
    assert cos.mean() >= 0.999, (float(cos.mean()), float(cos.min()))


def test_each_path_and_precision_is_cached_under_its_own_key(photo_folder, zsclip_micro, tmp_path):
    cache = TensorCache(tmp_path / "cache")
    few = subsample(photo_folder, max_samples=8, seed=0)
    exact, _ = image_features(zsclip_micro, few, cache=cache, progress=False)
    fast, _ = image_features(zsclip_micro, few, cache=cache, progress=False, pipeline="fast")
    bf16, _ = image_features(zsclip_micro, few, cache=cache, progress=False, precision="bf16")
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 3
    assert not torch.equal(exact, fast) and not torch.equal(exact, bf16)
    assert _cosines(exact, bf16).mean() > 0.99           # bf16 autocast also runs on the CPU: close, not equal
    again, _ = image_features(zsclip_micro, few, cache=cache, progress=False)
    assert torch.equal(again, exact)


def test_in_memory_datasets_take_the_tensor_path_too(zsclip_micro):
    ds = subsample(build_dataset("zsworld", split="unseen"), max_samples=32, seed=0)
    exact, _ = image_features(zsclip_micro, ds, use_cache=False, progress=False)
    fast, _ = image_features(zsclip_micro, ds, use_cache=False, progress=False, pipeline="fast")
    assert _cosines(exact, fast).mean() >= 0.999


def test_prompt_features_are_cached_and_equal_to_the_model_s(zsclip_micro, tmp_path):
    cache = TensorCache(tmp_path / "prompts")
    calls = []
    model = dataclasses.replace(zsclip_micro)
    model.encode_text = lambda texts: calls.append(list(texts)) or zsclip_micro.encode_text(texts)
    encode = cached_text_encoder(model, cache=cache)
    prompts = ["a photo of a red striped disc.", "a blue dotted box"]
    first = encode(prompts)
    assert torch.equal(first, zsclip_micro.encode_text(prompts))
    assert torch.equal(encode(prompts), first) and len(calls) == 1          # the rerun reads the cache
    encode(prompts[:1])
    assert len(calls) == 2                                                  # other prompts, another key
