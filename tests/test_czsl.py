"""MIT-States / UT-Zappos in the CZSL layout, read from a folder the test writes itself."""
import numpy as np
import pytest

from conftest import write_czsl_folder
from zslab.datasets.base import DataFileError
from zslab.datasets.czsl import read_czsl
from zslab.methods.compositional import czsl_pair_split


def test_czsl_layout_reads_pairs_vocabularies_and_filtered_images(tmp_path):
    write_czsl_folder(tmp_path, n_per_pair=2)
    data = read_czsl(tmp_path)
    assert data.attrs == ["Canvas", "Leather", "Suede"] and data.objs == ["Boots.Ankle", "Sandals", "Shoes.Flats"]
    assert len(data.pairs["train"]) == 6 and len(data.pairs["test"]) == 4
    assert len(data.images) == (6 + 4) * 2                   # the NA record is skipped
    assert all(image["path"].endswith(".jpg") for image in data.images)


def test_czsl_split_marks_unseen_and_absent_pairs(tmp_path):
    write_czsl_folder(tmp_path, n_per_pair=1)
    data = read_czsl(tmp_path)
    split = czsl_pair_split(data.attrs, data.objs, data.pairs)
    assert [split.name(p) for p in split.unseen] == ["Suede Boots.Ankle", "Suede Sandals"]
    assert [split.name(p) for p in split.absent] == ["Suede Shoes.Flats"]
    assert len(split.seen) == 6 and len(split.label_space("open")) == 9 and len(split.label_space("closed")) == 8


def test_bad_czsl_folders_are_named(tmp_path):
    with pytest.raises(DataFileError, match="train_pairs.txt"):
        read_czsl(tmp_path)
    write_czsl_folder(tmp_path, n_per_pair=1)
    (tmp_path / "compositional-split-natural" / "val_pairs.txt").write_text("three words here\n")
    with pytest.raises(DataFileError, match="line 1"):
        read_czsl(tmp_path)
