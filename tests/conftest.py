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
