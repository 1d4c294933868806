"""load_model: zslab's offline models (open_clip local-dir layout), checkpoint files, the offline switch,
and the errors for bad names, tags and paths."""
from __future__ import annotations

import json
import time
from pathlib import Path

import open_clip
import pytest
import torch

import zslab.train.zoo as zoo
from zslab.config import cache_dir
from zslab.errors import InvalidChoiceError, MissingAssetError, OfflineError
from zslab.models import list_models, load_model, save_random_checkpoint
from zslab.train.zoo import offline_model_dir, read_manifest
from zslab.world import load_world_spec
from zslab.world.corpus import world_setting

#: The smallest plain open_clip architecture (no timm / HF text tower): ~43M parameters, ~173 MB in fp32.
SMALL_ARCH = "ViT-S-32-alt"


@pytest.fixture(scope="module")
def micro_dir(zsclip_micro):
    return offline_model_dir("zsclip-micro", seed=0, progress=False)


# ------------------------------------------------------------------------------------------ offline zoo

def test_micro_model_is_saved_in_open_clip_local_dir_layout(zsclip_micro, micro_dir):
    assert zsclip_micro.source == "zslab-offline" and zsclip_micro.name == "zsclip-micro"
    assert (micro_dir / "open_clip_config.json").is_file()
    assert (micro_dir / "open_clip_model.safetensors").is_file()
    assert micro_dir.parent.parent == cache_dir()             # under ZSLAB_CACHE, not in the checkout
    config = json.loads((micro_dir / "open_clip_config.json").read_text())
    assert config["model_cfg"] == zoo.offline_model_entry("zsclip-micro")["model_cfg"]
    # no half-built temporary folders are left beside it
    assert not [p for p in micro_dir.parent.iterdir() if p.name.startswith(".")]


def test_plain_open_clip_loads_the_folder_to_the_same_outputs(zsclip_micro, micro_dir):
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + str(micro_dir))
    model.eval()
    tokenizer = open_clip.get_tokenizer("local-dir:" + str(micro_dir))
    texts = ["a red circle", "a photo of a blue square", "this is a pink diamond"]
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain_img = model.encode_image(images, normalize=True)
        plain_txt = model.encode_text(tokenizer(texts), normalize=True)
    ours_img = zsclip_micro.encode_image(images)
    ours_txt = zsclip_micro.encode_text(texts)
    assert ours_img.shape == (3, 32) and ours_txt.shape == (3, 32)
    assert torch.equal(plain_img, ours_img)
    assert torch.equal(plain_txt, ours_txt)
    assert not torch.allclose(ours_txt[0], ours_txt[1])     # a trained model, not a constant
    assert repr(preprocess) == repr(zsclip_micro.preprocess)


def test_fingerprint_is_stable_across_loads(zsclip_micro):
    again = load_model("zsclip-micro", seed=0, progress=False)
    assert again.model is not zsclip_micro.model
    assert again.fingerprint == zsclip_micro.fingerprint
    assert len(again.fingerprint) == 24
    with torch.no_grad():
        next(again.model.parameters()).add_(1e-3)
    again._fingerprint = None
    assert again.fingerprint != zsclip_micro.fingerprint    # any weight change shows


#: A cut-down micro entry (a few steps, few images): the seed, not the amount of training, is under test.
QUICK = {"train": {"steps": 2, "batch_size": 32, "warmup_steps": 1}, "world": {"n_train": 256}}


def test_fingerprint_differs_between_seeds():
    s0 = load_model("zsclip-micro", seed=0, progress=False, overrides=QUICK)
    s1 = load_model("zsclip-micro", seed=1, progress=False, overrides=QUICK)
    s0_again = load_model("zsclip-micro", seed=0, progress=False, overrides=QUICK)
    assert s0.fingerprint != s1.fingerprint
    assert s0_again.model is not s0.model and s0.fingerprint == s0_again.fingerprint
    dir0 = offline_model_dir("zsclip-micro", seed=0, overrides=QUICK)
    assert dir0 != offline_model_dir("zsclip-micro", seed=1, overrides=QUICK)
    assert dir0 != offline_model_dir("zsclip-micro", seed=0)            # the changed entry is another model
    assert read_manifest(offline_model_dir("zsclip-micro", seed=1, overrides=QUICK))["seed"] == 1
    assert read_manifest(dir0)["train"]["steps"] == 2


def test_manifest_lists_the_unseen_classes(micro_dir):
    manifest = read_manifest(micro_dir)
    spec = load_world_spec()
    entry = zoo.offline_model_entry("zsclip-micro")
    _, split = world_setting(entry["world"], spec)
    assert manifest["unseen_classes"] == [spec.class_name(c) for c in split.unseen]
    assert len(manifest["unseen_classes"]) == len(split.unseen) > 0
    assert manifest["name"] == "zsclip-micro" and manifest["tag"] == "zsworld" and manifest["seed"] == 0
    # every training setting, the entry's and the defaults it leaves out (a fixed temperature or not)
    assert manifest["train"] == zoo.TrainConfig(**entry["train"]).as_dict() and manifest["n_parameters"] > 0
    assert manifest["train"]["learn_logit_scale"] is True


def test_local_dir_name_loads_the_same_weights(zsclip_micro, micro_dir):
    lm = load_model("local-dir:" + str(micro_dir))
    assert lm.source == "local-dir"
    assert lm.fingerprint == zsclip_micro.fingerprint


# ------------------------------------------------------------------------------------------ checkpoint file

def test_random_checkpoint_round_trips(tmp_path):
    path = save_random_checkpoint(SMALL_ARCH, tmp_path / "ckpt" / "random.pt", seed=3)
    assert path.is_file() and path.stat().st_size < 200e6
    saved = torch.load(path, map_location="cpu", weights_only=True)
    lm = load_model(SMALL_ARCH, pretrained=str(path))
    assert lm.source == "checkpoint-file" and lm.pretrained == str(path)
    loaded = lm.model.state_dict()
    assert set(saved) == set(loaded)
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert lm.encode_text(["a dog"]).shape == (1, open_clip.get_model_config(SMALL_ARCH)["embed_dim"])


# ------------------------------------------------------------------------------------------ offline switch

def test_offline_tag_download_is_refused_at_once():
    t0 = time.perf_counter()
    with pytest.raises(OfflineError) as err:
        load_model("ViT-B-32", pretrained="laion2b_s34b_b79k")
    assert time.perf_counter() - t0 < 1.0
    msg = str(err.value)
    assert "ViT-B-32" in msg and "laion2b_s34b_b79k" in msg
    assert "pretrained='" in msg and "local-dir:" in msg     # how to supply it locally


def test_offline_hf_hub_download_is_refused_at_once():
    name = "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    t0 = time.perf_counter()
    with pytest.raises(OfflineError) as err:
        load_model(name)
    assert time.perf_counter() - t0 < 1.0
    msg = str(err.value)
    assert name in msg and "ZSLAB_OFFLINE=1" in msg and "local-dir:" in msg


# ------------------------------------------------------------------------------------------ bad input

def test_unknown_architecture_names_valid_choices():
    with pytest.raises(InvalidChoiceError) as err:
        load_model("ViT-Q-99")
    msg = str(err.value)
    assert "'ViT-Q-99'" in msg and "zsclip-micro" in msg and "zsclip-tiny" in msg
    assert "lit-zsworld" in msg and "lit-animal-mnist" in msg
    assert "ViT-B-32" in msg and "local-dir:" in msg and "hf-hub:" in msg


def test_unknown_tag_lists_the_tags():
    with pytest.raises(InvalidChoiceError) as err:
        load_model("ViT-B-32", pretrained="laion9b_nope")
    msg = str(err.value)
    assert "'laion9b_nope'" in msg and "laion2b_s34b_b79k" in msg and "openai" in msg


def test_missing_checkpoint_path(tmp_path):
    missing = tmp_path / "nowhere" / "model.pt"
    with pytest.raises(MissingAssetError) as err:
        load_model("ViT-B-32", pretrained=str(missing))
    assert str(missing) in str(err.value)
    assert isinstance(err.value, FileNotFoundError)


def test_local_dir_without_config(tmp_path):
    with pytest.raises(MissingAssetError, match="open_clip_config.json"):
        load_model("local-dir:" + str(tmp_path))


def test_wrong_tag_for_offline_model_names_zsworld():
    with pytest.raises(InvalidChoiceError) as err:
        load_model("zsclip-micro", pretrained="nope")
    assert "'nope'" in str(err.value) and "zsworld" in str(err.value) and "offline model" in str(err.value)


def test_wrong_tag_for_locked_text_model_names_zslab():
    # Checked before anything is trained or loaded.
    with pytest.raises(InvalidChoiceError) as err:
        load_model("lit-zsworld-micro", pretrained="zsworld")
    msg = str(err.value)
    assert "'zsworld'" in msg and "'zslab'" in msg and "locked-text model 'lit-zsworld-micro'" in msg


def test_list_models():
    names = list_models()
    assert "zsclip-tiny/zsworld" in names and "zsclip-micro/zsworld" in names
    assert "lit-zsworld/zslab" in names and "lit-animal-mnist/zslab" in names
    assert "ViT-B-32/laion2b_s34b_b79k" in names
    # zslab's zoos first (offline, then locked-text, each sorted), then open_clip's pairs
    assert names.index("zsclip-tiny/zsworld") < names.index("lit-animal-mnist/zslab") \
        < names.index("ViT-B-32/laion2b_s34b_b79k")
    assert names.index("zsclip-micro/zsworld") < names.index("zsclip-tiny/zsworld")


def test_two_empty_caches_give_identical_models_and_features(tmp_path, monkeypatch):
    """Determinism end to end, from nothing: the same seed trains the same weights and encodes the same
    features in two separate, empty caches (what lets each notebook be tested with one run)."""
    from zslab.embeddings import image_features
    from zslab.evaluation import eval_dataset
    from zslab.train.model_zoo import read_manifest

    small = {"train": {"steps": 5}, "world": {"n_train": 512}}
    outputs = []
    for name in ("a", "b"):
        monkeypatch.setenv("ZSLAB_CACHE", str(tmp_path / name))
        lm = load_model("zsclip-micro", seed=3, overrides=small, progress=False)
        ds = eval_dataset("zsworld", split="unseen", n_per_class=2, seed=3, model=lm)
        feats, labels = image_features(lm, ds, progress=False)
        folder = next((tmp_path / name / "models").glob("zsclip-micro-seed3-*"))
        outputs.append((read_manifest(folder)["files"], lm.fingerprint, feats, labels))
    (files_a, fp_a, feats_a, labels_a), (files_b, fp_b, feats_b, labels_b) = outputs
    assert files_a == files_b and fp_a == fp_b
    assert torch.equal(feats_a, feats_b) and torch.equal(labels_a, labels_b)


def test_device_auto_is_cpu_without_a_gpu_and_bad_devices_name_the_choices():
    from zslab.models import resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(InvalidChoiceError, match=r"unknown device 'gpu0'; valid devices: auto, cpu, cuda, cuda:N, mps"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidChoiceError, match="torch sees no CUDA GPU here; use 'auto' or 'cpu'"):
            load_model("zsclip-micro", device="cuda:0", progress=False)


def test_every_notebook_that_encodes_images_takes_a_device():
    from zslab.papers import list_notebooks, notebook_path
    from zslab.runner import notebook_parameters

    for nb in list_notebooks():
        source = notebook_path(nb).read_text()
        if "encode_eval_set" in source or "load_inputs" in source:
            param = notebook_parameters(notebook_path(nb)).get("device")
            assert param is not None and param.default == "auto", nb
