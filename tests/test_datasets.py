"""Tests for zslab.datasets: every loader reads small files written here in the real on-disk formats.

Nothing here downloads: ZSLAB_OFFLINE=1 and a private ZSLAB_CACHE are set for every test.
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import require_system_asset
from PIL import Image

import zslab.datasets as zd
from zslab.datasets import (DATASETS, ArrayDataset, DataFileError, FolderDataset, ZSDataset, build_dataset,
                            list_datasets, load_classnames, load_classnames_file, load_templates, subsample,
                            validate_templates)
from zslab.datasets import torchvision_sets
from zslab.datasets.formats import DatasetFormatError, read_cifar_pickle, read_idx
from zslab.errors import InvalidChoiceError, MissingAssetError, OfflineError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
WNIDS = {"n01440764": "tench", "n01443537": "goldfish", "n01484850": "great white shark"}


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch, tmp_path):
    """No test may download or write into the user's cache."""
    monkeypatch.setenv("ZSLAB_OFFLINE", "1")
    monkeypatch.setenv("ZSLAB_CACHE", str(tmp_path / "cache"))


# --------------------------------------------------------------------------------------------------------
# writers of the real formats
# --------------------------------------------------------------------------------------------------------
def _rgb_images(rng, n, h=32, w=32):
    return rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _dump(path: Path, obj, bytes_keys: bool):
    if bytes_keys:  # as the Python-2 pickles on the CIFAR site: bytes keys and bytes strings
        obj = {k.encode(): ([v.encode() for v in val] if isinstance(val, list) and val and isinstance(val[0], str)
                            else val) for k, val in obj.items()}
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar_record(images, labels, label_key, name):
    return {"batch_label": name, label_key: [int(y) for y in labels],
            "data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),
            "filenames": [f"img_{i}.png" for i in range(len(images))]}


def write_cifar10(root: Path, per_batch=4, n_test=12, seed=0, bytes_keys=True, names=CIFAR10_NAMES):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    out = {}
    for fname, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        images, labels = _rgb_images(rng, n), rng.integers(0, 10, size=n)
        _dump(folder / fname, _cifar_record(images, labels, "labels", fname), bytes_keys)
        out[fname] = (images, labels)
    _dump(folder / "batches.meta", {"label_names": list(names), "num_cases_per_batch": per_batch,
                                    "num_vis": 3072}, bytes_keys)
    return out


def write_cifar100(root: Path, n_train=20, n_test=10, seed=1, bytes_keys=False):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for fname, n in (("train", n_train), ("test", n_test)):
        images, fine = _rgb_images(rng, n), rng.integers(0, 100, size=n)
        rec = _cifar_record(images, fine, "fine_labels", fname)
        rec["coarse_labels"] = [int(y) // 5 for y in fine]
        _dump(folder / fname, rec, bytes_keys)
        out[fname] = (images, fine)
    names = [c.replace(" ", "_") for c in load_classnames("cifar100")]
    _dump(folder / "meta", {"fine_label_names": names, "coarse_label_names": [f"c{i}" for i in range(20)]},
          bytes_keys)
    return out


def idx_bytes(arr: np.ndarray) -> bytes:
    assert arr.dtype == np.uint8
    return struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_mnist(folder: Path, n_train=6, n_test=5, seed=2, gz=False, h=28, w=28):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            path = folder / f"{prefix}-{kind}-ubyte"
            if gz:
                with gzip.open(str(path) + ".gz", "wb") as f:
                    f.write(idx_bytes(arr))
            else:
                path.write_bytes(idx_bytes(arr))
        out["train" if prefix == "train" else "test"] = (images, labels)
    return out


def write_png(path: Path, arr: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG")


# --------------------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------------------
def _check_common(ds: ZSDataset, name: str, split: str):
    assert isinstance(ds, ZSDataset) and ds.name == name and ds.split == split
    assert ds.templates and all(t.count("{c}") == 1 for t in ds.templates)
    json.dumps(ds.identity)  # JSON-able
    assert ds.identity["dataset"] == name and ds.identity["split"] == split
    image, label = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and isinstance(label, int)


def test_cifar10_test_and_train_splits(tmp_path):
    written = write_cifar10(tmp_path)
    ds = build_dataset("cifar10", root=str(tmp_path), split="test")
    _check_common(ds, "cifar10", "test")
    images, labels = written["test_batch"]
    assert len(ds) == 12 and ds.classes == CIFAR10_NAMES
    assert list(ds.targets) == list(labels)
    for i in range(len(ds)):
        img, y = ds[i]
        assert y == labels[i]
        np.testing.assert_array_equal(np.asarray(img), images[i])
    assert ds.templates[0] == "a photo of a {c}." and len(ds.templates) == 18
    assert ds.identity["root"] == str((tmp_path / "cifar-10-batches-py").resolve())
    assert {f["file"] for f in ds.identity["files"]} == {"test_batch", "batches.meta"}

    train = build_dataset("cifar10", root=str(tmp_path), split="train")
    assert len(train) == 20
    expected = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(np.asarray(train[13][0]), expected[13])
    assert list(train.targets) == [int(y) for i in range(1, 6) for y in written[f"data_batch_{i}"][1]]


def test_cifar10_str_keys_and_identity_follows_file_content(tmp_path):
    write_cifar10(tmp_path, bytes_keys=False, seed=5)
    first = build_dataset("cifar10", root=str(tmp_path)).identity
    assert build_dataset("cifar10", root=str(tmp_path)).identity == first
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    st = batch.stat()
    with open(batch, "rb") as f:
        d = pickle.load(f)
    d["data"] = d["data"][:-1]
    d["labels"] = d["labels"][:-1]
    _dump(batch, d, bytes_keys=False)
    os.utime(batch, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert len(build_dataset("cifar10", root=str(tmp_path))) == 11
    assert build_dataset("cifar10", root=str(tmp_path)).identity != first


def test_cifar_meta_names_checked_against_data_file(tmp_path):
    renamed = list(CIFAR10_NAMES)
    renamed[0] = "aeroplane"
    write_cifar10(tmp_path / "a", names=renamed)
    with pytest.warns(UserWarning, match="aeroplane"):
        ds = build_dataset("cifar10", root=str(tmp_path / "a"))
    assert ds.classes == CIFAR10_NAMES  # data/classnames wins
    write_cifar10(tmp_path / "b", names=CIFAR10_NAMES[:9])
    with pytest.raises(DatasetFormatError, match="9 class names"):
        build_dataset("cifar10", root=str(tmp_path / "b"))


def test_cifar100(tmp_path):
    written = write_cifar100(tmp_path)
    ds = build_dataset("cifar100", root=str(tmp_path), split="test")
    _check_common(ds, "cifar100", "test")
    images, fine = written["test"]
    assert len(ds) == 10 and len(ds.classes) == 100
    assert ds.classes[1] == "aquarium fish" and ds.classes[-1] == "worm" and "maple tree" in ds.classes
    assert list(ds.targets) == list(fine)  # fine labels, not coarse
    np.testing.assert_array_equal(np.asarray(ds[3][0]), images[3])
    train = build_dataset("cifar100", root=str(tmp_path), split="train")
    assert len(train) == 20 and list(train.targets) == list(written["train"][1])


def test_cifar100_bytes_keys(tmp_path):
    written = write_cifar100(tmp_path, bytes_keys=True)
    ds = build_dataset("cifar100", root=str(tmp_path))
    np.testing.assert_array_equal(np.asarray(ds[0][0]), written["test"][0][0])


class _RemovesAFile:
    """Unpickling this calls ``os.remove(path)``: what a malicious "CIFAR batch" could do."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.remove, (str(self.path),))


class _Execs:
    """Unpickling this calls ``builtins.exec(source)``."""

    def __init__(self, source: str):
        self.source = source

    def __reduce__(self):
        return (exec, (self.source,))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_pickle_that_would_run_code_is_refused_unrun(tmp_path, protocol):
    write_cifar10(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("still here")
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    with open(batch, "wb") as f:
        pickle.dump({b"data": _RemovesAFile(victim), b"labels": [0]}, f, protocol=protocol)
    with pytest.raises(DatasetFormatError, match=r"test_batch: refusing to unpickle the global (posix|os)\.remove.*"
                                                 r"allowed globals: .*numpy\.ndarray"):
        build_dataset("cifar10", root=str(tmp_path), split="test")
    assert victim.read_text() == "still here"


def test_cifar_pickle_refuses_exec_and_non_latin1_codecs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": _Execs(f"open({str(marker)!r}, 'w').close()")}, protocol=2))
    with pytest.raises(DatasetFormatError, match=r"refusing to unpickle the global builtins\.exec"):
        read_cifar_pickle(path)
    assert not marker.exists()
    # _codecs.encode is allowed only as protocol-2 pickles use it for bytes: latin-1
    import codecs

    class _Rot13:
        def __reduce__(self):
            return (codecs.encode, ("data", "rot13"))

    path.write_bytes(pickle.dumps({b"data": _Rot13()}, protocol=2))
    with pytest.raises(DatasetFormatError, match=r"refusing _codecs\.encode\(str, 'rot13'\)"):
        read_cifar_pickle(path)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_cifar_pickle_of_arrays_scalars_and_bytes_loads_at_every_protocol(tmp_path, protocol):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
    obj = {b"data": data, b"labels": [1, 2, 3], b"batch_label": b"testing batch 1 of 1", b"empty": b"",
           b"num_cases": np.int64(3), b"mean": np.float32(0.5), b"strided": np.zeros((4, 6))[:, ::2],
           b"tags": {b"a"}, b"names": ["cat", "dog"]}
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    d = read_cifar_pickle(path)
    np.testing.assert_array_equal(d["data"], data)
    assert d["labels"] == [1, 2, 3] and d["batch_label"] == b"testing batch 1 of 1" and d["empty"] == b""
    assert d["num_cases"] == 3 and d["mean"] == np.float32(0.5) and d["strided"].shape == (4, 3)
    assert d["tags"] == {b"a"} and d["names"] == ["cat", "dog"]


def test_cifar_pickle_with_numpy1_and_python2_global_names_loads(tmp_path):
    """The files on the CIFAR site name numpy.core.multiarray and __builtin__ (Python 2, numpy 1)."""
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251
    raw = pickle.dumps({b"data": data, b"labels": [4, 5], b"empty": b""}, protocol=2)
    assert b"numpy._core.multiarray" in raw and b"__builtin__" in raw      # what is being renamed below
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "data_batch_1"
    path.write_bytes(raw)
    d = read_cifar_pickle(path)
    np.testing.assert_array_equal(d["data"], data)
    assert d["labels"] == [4, 5] and d["empty"] == b""


# --------------------------------------------------------------------------------------------------------
# IDX: MNIST, Fashion-MNIST
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["raw", "gz", "torchvision"])
def test_mnist_layouts(tmp_path, layout):
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    written = write_mnist(folder, gz=(layout == "gz"))
    for split, n in (("test", 5), ("train", 6)):
        ds = build_dataset("mnist", root=str(tmp_path), split=split)
        _check_common(ds, "mnist", split)
        images, labels = written[split]
        assert len(ds) == n and list(ds.targets) == list(labels)
        assert ds.classes == [str(i) for i in range(10)]
        assert ds.templates == ['a photo of the number: "{c}".']
        for i in range(n):
            rgb = np.asarray(ds[i][0])
            assert rgb.shape == (28, 28, 3)
            for c in range(3):
                np.testing.assert_array_equal(rgb[..., c], images[i])
        assert ds.identity["root"] == str(folder.resolve())


def test_fashion_mnist_torchvision_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision_sets, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    written = write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    ds = build_dataset("fashion_mnist", root=str(tmp_path))
    _check_common(ds, "fashion_mnist", "test")
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "ankle boot"
    assert list(ds.targets) == list(written["test"][1])


def test_idx_reader_generic_dtypes(tmp_path):
    arr = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    path = tmp_path / "x.idx"
    path.write_bytes(struct.pack(">HBB", 0, 0x0C, 3) + struct.pack(">3I", 2, 3, 4) + arr.tobytes())
    out = read_idx(path)
    assert out.shape == (2, 3, 4) and out.dtype == np.int32
    np.testing.assert_array_equal(out, np.arange(24).reshape(2, 3, 4))


def test_truncated_and_malformed_idx_files(tmp_path):
    write_mnist(tmp_path / "cut")
    images = tmp_path / "cut" / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DatasetFormatError, match=r"truncated IDX file.*need 3920 data bytes, found only 3820"):
        build_dataset("mnist", root=str(tmp_path / "cut"))

    write_mnist(tmp_path / "gzcut", gz=True)
    gz = tmp_path / "gzcut" / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:15])
    with pytest.raises(DatasetFormatError, match="truncated or corrupt gzip"):
        build_dataset("mnist", root=str(tmp_path / "gzcut"))

    bad = tmp_path / "bad"
    bad.write_bytes(b"\x08\x03\x00\x00" + bytes(20))
    with pytest.raises(DatasetFormatError, match="not an IDX file"):
        read_idx(bad)
    short_header = tmp_path / "short"
    short_header.write_bytes(struct.pack(">HBB", 0, 8, 3) + struct.pack(">I", 5))
    with pytest.raises(DatasetFormatError, match="truncated IDX header"):
        read_idx(short_header)
    extra = tmp_path / "extra"
    extra.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(DatasetFormatError, match="1 bytes beyond"):
        read_idx(extra)


def test_mnist_label_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DatasetFormatError, match="5 images but .* 4 labels"):
        build_dataset("mnist", root=str(tmp_path))


DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def test_fashion_mnist_from_debian_package(tmp_path):
    require_system_asset(DEBIAN.is_dir(), "Debian's dataset-fashion-mnist", "apt-get install dataset-fashion-mnist")
    ds = build_dataset("fashion_mnist", root=str(tmp_path / "empty"), split="test")
    assert len(ds) == 10000 and ds.identity["root"].startswith(str(DEBIAN))
    assert np.bincount(ds.targets, minlength=10).tolist() == [1000] * 10
    img, _ = ds[0]
    assert img.size == (28, 28) and img.mode == "RGB"


# --------------------------------------------------------------------------------------------------------
# folders
# --------------------------------------------------------------------------------------------------------
def test_imagefolder(tmp_path):
    rng = np.random.default_rng(3)
    written = {}
    for cls, n in (("red_panda", 2), ("cat", 3)):
        for i in range(n):
            arr = rng.integers(0, 256, size=(9, 7, 3), dtype=np.uint8)
            write_png(tmp_path / cls / f"{i:02d}.png", arr)
            written[(cls, i)] = arr
    gray = rng.integers(0, 256, size=(5, 5), dtype=np.uint8)
    write_png(tmp_path / "cat" / "sub" / "g.png", gray)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()

    ds = build_dataset("imagefolder", root=str(tmp_path))
    _check_common(ds, "imagefolder", "test")
    assert isinstance(ds, FolderDataset)
    assert ds.classes == ["cat", "red panda"] and len(ds) == 6
    assert list(ds.targets) == [0, 0, 0, 0, 1, 1]
    assert ds.templates == ["a photo of a {c}."]
    np.testing.assert_array_equal(np.asarray(ds[0][0]), written[("cat", 0)])
    np.testing.assert_array_equal(np.asarray(ds[5][0]), written[("red_panda", 1)])
    np.testing.assert_array_equal(np.asarray(ds[3][0]), np.stack([gray] * 3, -1))  # cat/sub/g.png
    assert ds.identity["num_files"] == 6
    assert build_dataset("imagefolder", root=str(tmp_path), split="all").identity["split"] == "all"
    with pytest.raises(InvalidChoiceError, match="'all', 'test'"):
        build_dataset("imagefolder", root=str(tmp_path), split="train")
    with pytest.raises(MissingAssetError, match="root"):
        build_dataset("imagefolder")
    custom = build_dataset("imagefolder", root=str(tmp_path), templates=["art of a {c}."])
    assert custom.prompts()[1] == ["art of a red panda."]


def _imagenet_tree(folder: Path, rng):
    written = {}
    for wnid in WNIDS:
        for i in range(2):
            arr = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
            write_png(folder / wnid / f"ILSVRC2012_val_{wnid}_{i}.png", arr)
            written[(wnid, i)] = arr
    return written


def test_imagenet_small_folder(tmp_path):
    written = _imagenet_tree(tmp_path / "val", np.random.default_rng(4))
    for root in (tmp_path, tmp_path / "val"):
        with pytest.warns(UserWarning, match="only 3 of the 1000 classes"):
            ds = build_dataset("imagenet", root=str(root))
        _check_common(ds, "imagenet", "test")
        assert ds.classes == ["tench", "goldfish", "great white shark"]
        assert list(ds.targets) == [0, 0, 1, 1, 2, 2]
        assert ds.identity["wnids"] == list(WNIDS)
        assert ds.identity["root"] == str((tmp_path / "val").resolve())
        assert len(ds.templates) == 80
        np.testing.assert_array_equal(np.asarray(ds[3][0]), written[("n01443537", 1)])
    with pytest.warns(UserWarning):
        simple = build_dataset("imagenet", root=str(tmp_path), template_set="simple")
    assert simple.templates == load_templates("imagenet", "simple")


def test_imagenet_errors(tmp_path):
    with pytest.raises(MissingAssetError, match="cannot be downloaded automatically.*root="):
        build_dataset("imagenet", root=str(tmp_path / "nowhere"))
    _imagenet_tree(tmp_path / "val", np.random.default_rng(5))
    write_png(tmp_path / "val" / "n99999999" / "x.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(DatasetFormatError, match="n99999999"):
        build_dataset("imagenet", root=str(tmp_path))
    with pytest.raises(MissingAssetError, match="train/"):
        build_dataset("imagenet", root=str(tmp_path), split="train")


def test_imagenet_classnames_file():
    raw = load_classnames_file("imagenet")
    assert len(raw["classnames"]) == len(raw["wnids"]) == 1000
    assert raw["wnids"] == sorted(raw["wnids"]) and len(set(raw["wnids"])) == 1000
    for wnid, name in WNIDS.items():
        assert raw["classnames"][raw["wnids"].index(wnid)] == name
    sets = json.loads((Path(zd.__file__).parents[2] / "data" / "templates" / "imagenet.json").read_text())
    assert sets["default"] == "openai" and len(sets["sets"]["openai"]) == 80


# --------------------------------------------------------------------------------------------------------
# subsample
# --------------------------------------------------------------------------------------------------------
def _array_ds(n=60, classes=3):
    rng = np.random.default_rng(7)
    return ArrayDataset(rng.integers(0, 256, size=(n, 4, 4, 3), dtype=np.uint8), np.arange(n) % classes,
                        name="toy", split="test", classes=[f"c{i}" for i in range(classes)],
                        templates=["a {c}."], identity={"dataset": "toy", "split": "test"})


def test_subsample_deterministic_and_identity():
    ds = _array_ds()
    a = subsample(ds, n_per_class=5, seed=1)
    b = subsample(ds, n_per_class=5, seed=1)
    c = subsample(ds, n_per_class=5, seed=2)
    assert len(a) == 15 and np.bincount(a.targets).tolist() == [5, 5, 5]
    np.testing.assert_array_equal(a.rows, b.rows)
    assert a.identity == b.identity and a.identity_hash() == b.identity_hash()
    assert a.identity != c.identity and not np.array_equal(a.rows, c.rows)
    sel = a.identity["selection"]
    assert sel["seed"] == 1 and sel["n_per_class"] == 5 and sel["count"] == 15 and len(sel["indices_sha256"]) == 64
    assert "selection" not in ds.identity and ds.identity["dataset"] == a.identity["dataset"] == "toy"
    assert list(a.rows) == sorted(a.rows)  # original order kept
    for j in range(len(a)):
        np.testing.assert_array_equal(np.asarray(a[j][0]), np.asarray(ds[int(a.rows[j])][0]))
        assert a[j][1] == ds[int(a.rows[j])][1]

    m = subsample(ds, max_samples=7, seed=0)
    assert len(m) == 7 and m.identity["selection"]["max_samples"] == 7
    nested = subsample(a, max_samples=4, seed=0)
    assert len(nested) == 4 and nested.identity["selection"]["parent"] == sel
    assert set(nested.rows) <= set(a.rows)
    assert len(subsample(ds, n_per_class=100)) == 60
    with pytest.raises(ValueError, match="n_per_class"):
        subsample(ds, n_per_class=-1)


def test_subsample_folder_dataset(tmp_path):
    _imagenet_tree(tmp_path / "val", np.random.default_rng(6))
    with pytest.warns(UserWarning):
        ds = build_dataset("imagenet", root=str(tmp_path))
    sub = subsample(ds, n_per_class=1, seed=3)
    assert isinstance(sub, FolderDataset) and len(sub) == 3 and list(sub.targets) == [0, 1, 2]
    assert sub.classes == ds.classes and sub.identity["wnids"] == ds.identity["wnids"]
    assert subsample(ds, n_per_class=1, seed=3).samples == sub.samples


# --------------------------------------------------------------------------------------------------------
# registry, errors, offline
# --------------------------------------------------------------------------------------------------------
def test_unknown_dataset_and_split_name_valid_choices():
    with pytest.raises(InvalidChoiceError) as e:
        build_dataset("cifar11")
    assert "'cifar11'" in str(e.value) and "'cifar10'" in str(e.value) and "'mnist'" in str(e.value)
    with pytest.raises(InvalidChoiceError, match=r"cifar10 split 'val'.*'test', 'train'"):
        build_dataset("cifar10", split="val")
    assert {"cifar10", "cifar100", "mnist", "fashion_mnist", "imagefolder", "imagenet"} <= set(list_datasets())


def test_offline_missing_cifar_fails_fast(tmp_path):
    start = time.perf_counter()
    with pytest.raises(OfflineError) as e:
        build_dataset("cifar10", root=str(tmp_path / "missing"))
    assert time.perf_counter() - start < 1.0
    msg = str(e.value)
    assert "cifar10" in msg and "cifar-10-batches-py" in msg and "test_batch" in msg
    with pytest.raises(OfflineError, match="cifar100.*cifar-100-python"):
        build_dataset("cifar100", root=str(tmp_path / "missing"), split="train")


def test_offline_missing_idx_names_files(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision_sets, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    with pytest.raises(OfflineError, match="t10k-images-idx3-ubyte"):
        build_dataset("mnist", root=str(tmp_path / "missing"))
    with pytest.raises(OfflineError, match="apt-get install dataset-fashion-mnist"):
        build_dataset("fashion_mnist", root=str(tmp_path / "missing"), split="train")
    with pytest.raises(OfflineError, match="cifar10"):
        build_dataset("cifar10")  # default root: the (empty, private) cache


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_has_template_and_classname_data(name):
    factory = DATASETS.get(name)
    templates = load_templates(getattr(factory, "templates_file", None) or name)
    assert templates and all(t.count("{c}") == 1 for t in templates)
    if getattr(factory, "classnames_file", True):
        names = load_classnames(name)
        assert names and all(isinstance(c, str) and c.strip() for c in names)
    splits = getattr(factory, "splits", None)
    assert splits is None or (len(splits) >= 1 and all(isinstance(s, str) for s in splits))


def test_template_validation_and_sets():
    assert validate_templates(["a {c}."]) == ["a {c}."]
    for bad in (["a photo."], ["{c} and {c}"], ["a {c} {x}"], [], "a {c}"):
        with pytest.raises(DataFileError):
            validate_templates(bad)
    with pytest.raises(InvalidChoiceError, match="'openai', 'simple'"):
        load_templates("imagenet", "fancy")
    assert load_templates("cifar10") == load_templates("cifar100")
    with pytest.raises(FileNotFoundError):
        load_templates("no_such_dataset")
