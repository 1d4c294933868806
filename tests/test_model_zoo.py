"""Model zoos: trained folders carry the SHA-256 of their files and are verified before reuse (a damaged
one warns, is deleted and retrained), and load_model resolves every zoo through one registry (ZOOS)."""
from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import zslab.models as models
import zslab.train.model_zoo as model_zoo
import zslab.train.zoo as zoo
from zslab.errors import InvalidChoiceError
from zslab.models import LoadedModel, ZooSource, list_models, load_model
from zslab.train.locked_text import CONFIG_FILE as LIT_CONFIG, WEIGHTS_FILE as LIT_WEIGHTS, load_locked_text_model
from zslab.train.model_zoo import MANIFEST_FILE, ModelIntegrityError, ModelZoo, check_folder, hash_files
from zslab.train.zoo import CONFIG_FILE, WEIGHTS_FILE, offline_model_dir, read_manifest

#: zsclip-micro cut down to train in a few seconds: a model of its own (own cache key and folder).
QUICK = {"train": {"steps": 5}, "world": {"n_train": 512}}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A quick micro model trained once into a cache of its own: (folder, weights bytes, fingerprint)."""
    root = tmp_path_factory.mktemp("zoo_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZSLAB_CACHE", str(root))
        folder = offline_model_dir("zsclip-micro", 0, QUICK, progress=False)
        fingerprint = load_model("zsclip-micro", seed=0, progress=False, overrides=QUICK).fingerprint
    return folder, (folder / WEIGHTS_FILE).read_bytes(), fingerprint


@pytest.fixture
def cached(trained, tmp_path, monkeypatch):
    """A private cache holding a copy of the trained folder; returns the copy's path."""
    monkeypatch.setenv("ZSLAB_CACHE", str(tmp_path))
    folder = tmp_path / "models" / trained[0].name
    shutil.copytree(trained[0], folder)
    return folder


@pytest.fixture
def trainings(monkeypatch):
    """Counts the trainings of offline models."""
    calls = []
    real = zoo._train_into

    def counting(folder, name, entry, seed, progress):
        calls.append(name)
        return real(folder, name, entry, seed, progress)

    monkeypatch.setattr(zoo, "_train_into", counting)
    return calls


def load_quick() -> LoadedModel:
    return load_model("zsclip-micro", seed=0, progress=False, overrides=QUICK)


def load_quietly() -> LoadedModel:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_quick()


def no_leftovers(models_dir: Path) -> bool:
    return not [p for p in models_dir.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------------ manifest hashes

def test_manifest_records_size_and_sha256_of_every_file(trained):
    folder = trained[0]
    manifest = read_manifest(folder)
    assert set(manifest["files"]) == {WEIGHTS_FILE, CONFIG_FILE}
    for name, record in manifest["files"].items():
        assert record == {"bytes": (folder / name).stat().st_size, "sha256": sha256(folder / name)}
    assert folder.name.endswith(manifest["cache_key"]) and manifest["train"]["steps"] == 5


def test_sound_folder_is_reused_and_each_file_hashed_once(cached, trained, trainings, monkeypatch):
    hashed = []
    real = model_zoo.file_sha256
    monkeypatch.setattr(model_zoo, "file_sha256", lambda path: hashed.append(Path(path).name) or real(path))
    lm = load_quietly()
    assert trainings == [] and sorted(hashed) == sorted([CONFIG_FILE, WEIGHTS_FILE])
    assert lm.manifest["files"] == read_manifest(cached)["files"]
    assert lm.fingerprint == trained[2]


# ------------------------------------------------------------------------------------------ damaged folders

def test_flipped_byte_warns_deletes_and_retrains_to_the_same_weights(cached, trained, trainings):
    weights = cached / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning) as record:
        lm = load_quick()
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1
    assert str(cached) in messages[0] and WEIGHTS_FILE in messages[0] and "SHA-256" in messages[0]
    assert "retraining" in messages[0]
    assert trainings == ["zsclip-micro"]
    # training is deterministic on the CPU for a seed: the retrained model is the original one
    assert weights.read_bytes() == trained[1]
    original = load_file(str(trained[0] / WEIGHTS_FILE))
    retrained = load_file(str(weights))
    assert original.keys() == retrained.keys() and all(torch.equal(original[k], retrained[k]) for k in original)
    assert lm.fingerprint == trained[2]
    assert read_manifest(cached)["files"] == read_manifest(trained[0])["files"]
    assert check_folder(cached) is None and no_leftovers(cached.parent)
    # the rebuilt folder is sound: the next load neither warns nor trains
    assert load_quietly().fingerprint == trained[2] and trainings == ["zsclip-micro"]


def _truncate(folder):
    path = folder / WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _rewrite_manifest(folder, change):
    manifest = read_manifest(folder)
    change(manifest)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


DAMAGES = {
    "truncated weights": (_truncate, "bytes"),
    "missing weights": (lambda f: (f / WEIGHTS_FILE).unlink(), f"{WEIGHTS_FILE} is missing"),
    "edited config": (lambda f: (f / CONFIG_FILE).write_text((f / CONFIG_FILE).read_text() + " "), CONFIG_FILE),
    "unreadable manifest": (lambda f: (f / MANIFEST_FILE).write_text('{"name": "zsc'), "unreadable"),
    "no manifest": (lambda f: (f / MANIFEST_FILE).unlink(), f"no {MANIFEST_FILE}"),
    # an older zslab wrote no hashes: its weights cannot be verified, so they are retrained (same key)
    "manifest without hashes": (lambda f: _rewrite_manifest(f, lambda m: m.pop("files")), "older zslab"),
    "weights not hashed": (lambda f: _rewrite_manifest(f, lambda m: m["files"].pop(WEIGHTS_FILE)),
                           f"no hash of {WEIGHTS_FILE}"),
}


@pytest.fixture
def fake_trainings(trained, monkeypatch):
    """Counts trainings of offline models, each one copying the trained files in (it takes no time; the real
    retraining is checked by the flipped-byte test)."""
    calls = []

    def copy_in(folder, name, entry, seed, progress):
        calls.append(name)
        for file in (WEIGHTS_FILE, CONFIG_FILE):
            shutil.copy(trained[0] / file, folder / file)
        manifest = read_manifest(trained[0])
        return {k: v for k, v in manifest.items() if k not in ("files", "cache_key")}

    monkeypatch.setattr(zoo, "_train_into", copy_in)
    return calls


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_folder_warns_and_is_retrained(damage, cached, trained, fake_trainings):
    trainings = fake_trainings
    spoil, expected = DAMAGES[damage]
    spoil(cached)
    with pytest.warns(RuntimeWarning, match="damaged") as record:
        lm = load_quick()
    message = next(str(w.message) for w in record if "damaged" in str(w.message))
    assert str(cached) in message and expected in message
    assert trainings == ["zsclip-micro"]
    assert check_folder(cached) is None and (cached / WEIGHTS_FILE).read_bytes() == trained[1]
    assert lm.fingerprint == trained[2] and no_leftovers(cached.parent)


def test_local_dir_refuses_a_damaged_zslab_folder_and_keeps_it(cached, trained):
    assert load_model("local-dir:" + str(cached)).fingerprint == trained[2]
    data = bytearray((cached / WEIGHTS_FILE).read_bytes())
    data[-100] ^= 0xFF
    (cached / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as err:
        load_model("local-dir:" + str(cached))
    assert str(cached) in str(err.value) and WEIGHTS_FILE in str(err.value)
    assert (cached / WEIGHTS_FILE).is_file()      # somebody's folder: reported, not deleted


def test_load_locked_text_model_verifies_its_folder(tmp_path):
    # Verification happens before the model is built, so a stand-in folder shows it without MiniLM.
    save_file({"visual.weight": torch.ones(2, 2)}, str(tmp_path / LIT_WEIGHTS))
    (tmp_path / LIT_CONFIG).write_text(json.dumps({"name": "lit-x", "entry": {}}))
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"name": "lit-x", "files": hash_files(tmp_path)}))
    assert check_folder(tmp_path, required=(LIT_WEIGHTS, LIT_CONFIG)) is None
    save_file({"visual.weight": torch.zeros(2, 2)}, str(tmp_path / LIT_WEIGHTS))   # same size, other weights
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_locked_text_model(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"name": "lit-x"}))
    with pytest.raises(ModelIntegrityError, match="no file hashes"):
        load_locked_text_model(tmp_path)


# ------------------------------------------------------------------------------------------ ModelZoo, no training

class ToyZoo(ModelZoo):
    ENTRIES = {"toy-a": {"dim": 3}, "toy-b": {"dim": 5}}

    def entries(self):
        return json.loads(json.dumps(self.ENTRIES))


def toy_builder(entry, calls):
    def build(folder):
        calls.append(folder.name)
        save_file({"weight": torch.arange(entry["dim"] ** 2, dtype=torch.float32).view(entry["dim"], -1)},
                  str(folder / "toy.safetensors"))
        return {"dim": entry["dim"]}
    return build


def test_build_once_builds_once_and_rebuilds_a_damaged_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSLAB_CACHE", str(tmp_path))
    toy, calls = ToyZoo("toy model", "none.yaml", 1, weight_files=("toy.safetensors",)), []
    entry = toy.entry("toy-a")
    folder = toy.build_once("toy-a", entry, 0, toy_builder(entry, calls))
    assert toy.build_once("toy-a", entry, 0, toy_builder(entry, calls)) == folder and len(calls) == 1
    good = (folder / "toy.safetensors").read_bytes()
    (folder / "toy.safetensors").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.warns(RuntimeWarning, match=r"toy model 'toy-a' \(seed 0\).*toy.safetensors has SHA-256"):
        assert toy.build_once("toy-a", entry, 0, toy_builder(entry, calls)) == folder
    assert len(calls) == 2 and (folder / "toy.safetensors").read_bytes() == good and no_leftovers(folder.parent)


def _build_in_process(cache: str, log: str, out: str) -> None:
    """One worker: build toy-a (seed 0) in the shared cache; each training appends a line to ``log``."""
    import os
    import time

    os.environ["ZSLAB_CACHE"] = cache

    def build(folder):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)                      # long enough for the other worker to arrive meanwhile
        (folder / "toy.safetensors").write_bytes(b"weights of toy-a")
        return {"dim": 3}

    toy = ToyZoo("toy model", "none.yaml", 1, weight_files=("toy.safetensors",))
    Path(out).write_text(str(toy.build_once("toy-a", toy.entry("toy-a"), 0, build)))


def test_two_processes_building_one_key_train_it_once(tmp_path):
    """Workers of a sweep share ZSLAB_CACHE: the second waits for the first and reuses its folder."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    log = tmp_path / "trainings.log"
    workers = [ctx.Process(target=_build_in_process, args=(str(tmp_path / "cache"), str(log), str(tmp_path / f"out{i}")))
               for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert len(log.read_text().splitlines()) == 1
    folders = {(tmp_path / f"out{i}").read_text() for i in range(2)}
    assert len(folders) == 1 and check_folder(Path(folders.pop())) is None
    assert no_leftovers(tmp_path / "cache" / "models")


def test_build_that_writes_no_weights_fails_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSLAB_CACHE", str(tmp_path))
    toy = ToyZoo("toy model", "none.yaml", 1, weight_files=("toy.safetensors", "other.json"))
    with pytest.raises(RuntimeError, match="wrote no other.json"):
        toy.build_once("toy-a", toy.entry("toy-a"), 0, toy_builder(toy.entry("toy-a"), []))
    assert list((tmp_path / "models").iterdir()) == []


# ------------------------------------------------------------------------------------------ one registry of zoos

def test_zoo_names_are_disjoint_and_listed_zoo_after_zoo():
    names = [z.names() for z in models.ZOOS]
    flat = [n for ns in names for n in ns]
    assert len(flat) == len(set(flat)) and "zsclip-micro" in names[0] and "lit-zsworld" in names[1]
    assert models.list_zoo_models() == flat
    assert list_models()[: len(flat)] == [f"{n}/{z.tag}" for z in models.ZOOS for n in z.names()]


def test_a_third_zoo_is_one_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSLAB_CACHE", str(tmp_path))
    toy, calls, seen = ToyZoo("toy model", "none.yaml", 1, weight_files=("toy.safetensors",)), [], []

    def toy_dir(name, seed=0, overrides=None, progress=True):
        seen.append(overrides)
        entry = {**toy.entry(name), **(overrides or {})}
        return toy.build_once(name, entry, seed, toy_builder(entry, calls))

    def toy_load(folder, name, pretrained, source, device):
        weight = load_file(str(folder / "toy.safetensors"))["weight"]
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        linear.load_state_dict({"weight": weight})
        return LoadedModel(linear, lambda x: x, lambda t: t, name, pretrained, source, device, read_manifest(folder))

    monkeypatch.setattr(models, "ZOOS", models.ZOOS + (ZooSource(toy, "toyworld", "zslab-toy", toy_dir, toy_load),))
    lm = load_model("toy-b", "toyworld", seed=2, overrides={"dim": 4})
    assert lm.source == "zslab-toy" and lm.manifest["dim"] == 4 and lm.model.weight.shape == (4, 4)
    assert seen == [{"dim": 4}] and len(calls) == 1
    assert load_model("toy-b", seed=2, overrides={"dim": 4}).fingerprint == lm.fingerprint and len(calls) == 1
    names = list_models()
    assert names.index("lit-zsworld/zslab") < names.index("toy-a/toyworld") < names.index("RN50/openai")
    with pytest.raises(InvalidChoiceError, match=r"unknown pretrained tag 'zsworld' for toy model 'toy-a'.*'toyworld'"):
        load_model("toy-a", "zsworld")
    with pytest.raises(InvalidChoiceError) as err:
        load_model("toy-q")
    assert "toy-a" in str(err.value) and "zsclip-micro" in str(err.value) and "lit-zsworld" in str(err.value)


def test_a_locked_text_variant_is_its_own_model_and_records_its_entry():
    from zslab.train.locked_text import locked_text_model_dir

    base = locked_text_model_dir("lit-zsworld-micro", seed=0, progress=False)
    variant = locked_text_model_dir("lit-zsworld-micro", seed=0, progress=False,
                                    overrides={"train": {"steps": 3, "loss": "cwcl"}})
    assert variant != base and variant.is_dir()
    manifest = read_manifest(variant)
    assert manifest["train"]["steps"] == 3 and manifest["train"]["loss"] == "cwcl"
    assert locked_text_model_dir("lit-zsworld-micro", seed=0, progress=False,
                                 overrides={"train": {"steps": 3, "loss": "cwcl"}}) == variant


def test_overrides_are_refused_where_they_do_not_apply():
    with pytest.raises(InvalidChoiceError, match="unknown model entry part 'world'; valid parts: train"):
        load_model("lit-zsworld-micro", "zslab", overrides={"world": {"n_train": 10}})
    with pytest.raises(InvalidChoiceError, match="unknown training setting 'stepz'"):
        load_model("lit-zsworld-micro", "zslab", overrides={"train": {"stepz": 1}})
    with pytest.raises(InvalidChoiceError, match="only for zslab's zoo models.*'ViT-B-32'"):
        load_model("ViT-B-32", overrides={"train": {"steps": 1}})
    with pytest.raises(InvalidChoiceError, match="unknown training setting 'stepz'"):
        load_model("zsclip-micro", overrides={"train": {"stepz": 1}})
