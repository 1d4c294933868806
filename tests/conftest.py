"""Session-wide test environment: a private zslab cache and no network.

``ZSLAB_CACHE`` points at one temporary folder for the whole session, so zslab's offline test model
(``zsclip-micro``) is trained once per session and then loaded from there; ``ZSLAB_OFFLINE=1`` turns every
download into an immediate error. Both are restored when the session ends. Tests that need a cache of
their own still ``monkeypatch.setenv`` it; monkeypatch restores the session value afterwards.
"""
from __future__ import annotations

import os

import pytest

_SESSION_ENV = ("ZSLAB_CACHE", "ZSLAB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture(scope="session", autouse=True)
def zslab_session_env(tmp_path_factory):
    saved = {k: os.environ.get(k) for k in _SESSION_ENV}
    cache = tmp_path_factory.mktemp("zslab_cache")
    os.environ["ZSLAB_CACHE"] = str(cache)
    os.environ["ZSLAB_OFFLINE"] = "1"
    try:
        yield cache
    finally:
        # apply_offline_env() may have set the HF switches: put back whatever was there before.
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def zsclip_micro(zslab_session_env):
    """zslab's smallest offline model, seed 0 (trained on first use, then read from the session cache)."""
    from zslab.models import load_model

    return load_model("zsclip-micro", seed=0, progress=False)


def require_system_asset(present: bool, what: str, install: str) -> None:
    """A Debian-packaged asset (needs root to install). Missing: a failure where the tests run as root
    (CI installs it, so absence is a broken set-up), a skip that says how to install it otherwise.
    Python packages are declared dependencies: tests never skip for them, a missing one fails."""
    if present:
        return
    message = f"{what} is missing: {install}"
    if os.geteuid() == 0:
        pytest.fail(message + " (running as root, as CI does: tools/system_assets.sh should have installed it)")
    pytest.skip(message + " (needs root)")


def write_random_clip_folder(folder) -> "os.PathLike":
    """An open_clip model folder (local-dir layout) with random weights in the zsclip-micro shape: real mode's
    loading and evaluation code runs on it in seconds."""
    import json

    import open_clip
    import torch
    from safetensors.torch import save_file

    from zslab.train.zoo import offline_model_entry

    cfg = offline_model_entry("zsclip-micro")["model_cfg"]
    torch.manual_seed(0)
    model = open_clip.CLIP(**cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {
        "size": cfg["vision_cfg"]["image_size"], "mean": [0.5] * 3, "std": [0.5] * 3}}))
    return folder


def write_xlsa17_folder(root, dataset: str = "AWA2", seed: int = 0, dim: int = 2048):
    """A tiny dataset in Xian et al.'s xlsa17 layout (``<root>/<dataset>/res101.mat``, ``att_splits.mat``; 2048 × N
    features, 1-based labels and split indices, a cell array of names with ``+``): 8 classes, 5 seen and 3 unseen,
    whose features are a linear function of their attributes plus noise, so a ZSL model can transfer."""
    import numpy as np
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    names = ["antelope", "grizzly+bear", "killer+whale", "beaver", "dalmatian", "persian+cat", "horse", "zebra"]
    att = rng.integers(0, 2, size=(8, 6)).astype(float)
    att[:, 0] = 1.0
    att[np.arange(6) + 1, np.arange(6)] += 2.0          # distinct rows
    centres = att @ rng.normal(size=(6, dim))
    labels, trainval, test_seen, test_unseen = [], [], [], []
    for c in range(8):
        for i in range(12):
            index = len(labels) + 1                        # 1-based, as the release writes them
            labels.append(c + 1)
            if c < 5:
                (trainval if i < 8 else test_seen).append(index)
            else:
                test_unseen.append(index)
    labels = np.array(labels)
    features = centres[labels - 1] + 0.5 * rng.normal(size=(len(labels), dim))
    folder = os.path.join(str(root), dataset)
    os.makedirs(folder, exist_ok=True)
    cells = np.empty((8, 1), dtype=object)
    for i, name in enumerate(names):
        cells[i, 0] = np.array([name])
    column = lambda v: np.asarray(v, dtype=np.uint16).reshape(-1, 1)  # noqa: E731
    savemat(os.path.join(folder, "res101.mat"), {"features": features.T.astype(np.float32),
                                                  "labels": labels.reshape(-1, 1).astype(np.uint8),
                                                  "image_files": np.array([[f"img{i}.jpg"] for i in range(len(labels))],
                                                                          dtype=object)})
    savemat(os.path.join(folder, "att_splits.mat"), {"att": (att / np.linalg.norm(att, axis=1, keepdims=True)).T,
                                                      "original_att": att.T, "allclasses_names": cells,
                                                      "trainval_loc": column(trainval), "test_seen_loc": column(test_seen),
                                                      "test_unseen_loc": column(test_unseen)})
    return root


def write_czsl_folder(root, n_per_pair: int = 3, seed: int = 0):
    """A tiny UT-Zappos-like dataset in the CZSL layout: ``images/<attr>_<obj>/*.jpg``,
    ``compositional-split-natural/{train,val,test}_pairs.txt`` and the ``torch.save``d metadata list. 3 attributes
    × 3 objects; 6 training pairs, test pairs 2 seen + 2 unseen, one pair never used; one record marked NA."""
    import numpy as np
    import torch
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = os.fspath(root)
    attrs, objs = ["Canvas", "Leather", "Suede"], ["Boots.Ankle", "Sandals", "Shoes.Flats"]
    train = [(a, o) for a in attrs for o in objs][:6]
    test = [train[0], train[4], ("Suede", "Boots.Ankle"), ("Suede", "Sandals")]
    val = [train[1], ("Suede", "Boots.Ankle")]
    split = os.path.join(root, "compositional-split-natural")
    os.makedirs(split, exist_ok=True)
    for name, pairs in (("train", train), ("val", val), ("test", test)):
        with open(os.path.join(split, f"{name}_pairs.txt"), "w") as f:
            f.write("".join(f"{a} {o}\n" for a, o in pairs))
    metadata = []
    for (a, o), which in [(p, "train") for p in train] + [(p, "test") for p in test]:
        folder = os.path.join(root, "images", f"{a}_{o}")
        os.makedirs(folder, exist_ok=True)
        colour = np.array([60 * attrs.index(a) + 40, 80 * objs.index(o) + 30, 120], dtype=np.uint8)
        for i in range(n_per_pair):
            name = f"{which}_{i}.jpg"
            image = np.clip(colour + rng.normal(0, 10, size=(24, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(os.path.join(folder, name))
            metadata.append({"image": f"{a}_{o}/{name}", "attr": a, "obj": o, "set": which})
    metadata.append({"image": "Canvas_Sandals/none.jpg", "attr": "NA", "obj": "Sandals", "set": "train"})
    torch.save(metadata, os.path.join(root, "metadata_compositional-split-natural.t7"))
    return root
