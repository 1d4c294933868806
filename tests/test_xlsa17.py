"""Xian et al.'s GZSL release (xlsa17 .mat layout) read from files the test writes itself."""
import numpy as np
import pytest

from conftest import write_xlsa17_folder
from zslab.datasets.base import DataFileError
from zslab.datasets.xlsa17 import XLSA17_FEATURES, per_class_subset, read_xlsa17
from zslab.errors import InvalidChoiceError
from zslab.methods import gzsl


def test_release_layout_reads_zero_based_with_names_and_split(tmp_path):
    write_xlsa17_folder(tmp_path)
    data = read_xlsa17(tmp_path, "AWA2")
    assert data.features.shape == (96, 2048) and data.attributes.shape == (8, 6)
    assert data.classes[:3] == ["antelope", "grizzly bear", "killer whale"]
    assert data.labels.min() == 0 and data.labels.max() == 7
    assert data.splits["trainval_loc"][0] == 0 and len(data.splits["test_unseen_loc"]) == 36
    assert set(data.labels[data.splits["test_unseen_loc"]]) == {5, 6, 7}


def test_problem_from_the_release_transfers_to_its_unseen_classes(tmp_path):
    write_xlsa17_folder(tmp_path)
    problem = gzsl.build_problem("AWA2", XLSA17_FEATURES, seed=0, n_train=0, n_test=0, root=str(tmp_path))
    assert list(problem.seen) == [0, 1, 2, 3, 4] and list(problem.unseen) == [5, 6, 7]
    assert len(problem.y_train) == 40 and len(problem.y_test) == 20 + 36
    result = gzsl.evaluate_model("ESZSL", problem, seed=0, use_cache=False)
    assert result.zsl_unseen > 0.6                         # chance among 3 unseen classes: 1/3
    fewer = gzsl.build_problem("AWA2", XLSA17_FEATURES, seed=0, n_train=2, n_test=3, root=str(tmp_path))
    assert len(fewer.y_train) == 10 and len(fewer.y_test) == 24


def test_bad_release_files_are_named(tmp_path):
    with pytest.raises(DataFileError, match="res101.mat"):
        read_xlsa17(tmp_path, "CUB")
    with pytest.raises(InvalidChoiceError, match="AWA2"):
        read_xlsa17(tmp_path, "ImageNet")
    with pytest.raises(ValueError, match="root"):
        gzsl.build_problem("AWA2", XLSA17_FEATURES, seed=0, n_train=0, n_test=0)
    write_xlsa17_folder(tmp_path)
    (tmp_path / "AWA2" / "att_splits.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataFileError, match="att_splits.mat"):
        read_xlsa17(tmp_path, "AWA2")


def test_per_class_subset_is_seeded_and_capped():
    labels = np.repeat(np.arange(3), 5)
    rows = np.arange(15)
    a, b = per_class_subset(rows, labels, 2, seed=1), per_class_subset(rows, labels, 2, seed=1)
    assert (a == b).all() and len(a) == 6 and all((labels[a] == c).sum() == 2 for c in range(3))
    assert (per_class_subset(rows, labels, 0, seed=1) == rows).all()
