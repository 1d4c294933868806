"""Tests for zslab.papers: scanning, lookup, validation messages, folder overrides, and the repo's own YAMLs."""
from __future__ import annotations

from pathlib import Path

import pytest

from zslab import papers
from zslab.errors import InvalidChoiceError, ZslabError
from zslab.papers import PaperMetadataError, Target

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PAPERS = FIXTURES / "papers"
NOTEBOOKS = FIXTURES / "notebooks"

GOOD = """\
id: {id}
title: A Title
arxiv: "2103.00020"
claim: Something holds.
mirrors: Table 2
family: training-free zero-shot
targets:
  - {{metric: top1, value: 76.2, unit: "%", setting: ImageNet, source: "Table 2"}}
test_parameters: {{}}
"""


def write(tmp_path: Path, text: str, name: str = "p1") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_list_papers_reads_the_fixture_folder():
    found = papers.list_papers(PAPERS)
    assert [p.id for p in found] == ["toy_claim", "toy_failing"]
    toy = found[0]
    assert toy.arxiv == "2101.00001" and toy.arxiv_url == "https://arxiv.org/abs/2101.00001"
    assert toy.claim.startswith("The toy statistic")
    assert toy.mirrors == "Table 1 (toy)" and toy.family == "training-free zero-shot"
    assert toy.targets[0] == Target(metric="toy_score", value=0.5, source="Table 1, row 3", unit="",
                                    setting="20 points, 2 seeds")
    assert toy.test_parameters == {"n_points": 8, "seeds": [0, 1, 2]}
    assert found[1].targets[0].unit == "" and found[1].notes == ""


def test_get_paper_and_unknown_id_names_the_valid_ids():
    assert papers.get_paper("toy_failing", PAPERS).title == "A Paper Whose Notebook Fails"
    with pytest.raises(InvalidChoiceError, match="toy_claim, toy_failing") as err:
        papers.get_paper("toy_clam", PAPERS)
    assert "toy_clam" in str(err.value)


def test_env_overrides_the_folders(monkeypatch):
    monkeypatch.setenv("ZSLAB_PAPERS_DIR", str(PAPERS))
    monkeypatch.setenv("ZSLAB_NOTEBOOKS_DIR", str(NOTEBOOKS))
    assert papers.paper_ids() == ["toy_claim", "toy_failing"]
    assert papers.notebook_path("toy_claim") == NOTEBOOKS / "toy_claim.ipynb"
    assert papers.list_notebooks() == ["toy_claim", "toy_failing"]


def test_default_folders_are_the_repository_ones(monkeypatch):
    monkeypatch.delenv("ZSLAB_PAPERS_DIR", raising=False)
    monkeypatch.delenv("ZSLAB_NOTEBOOKS_DIR", raising=False)
    from zslab import config

    assert papers.resolve_papers_dir() == Path(config.DATA_DIR) / "papers"
    assert papers.resolve_notebooks_dir() == Path(config.DATA_DIR).parent / "notebooks"


def test_notebook_path_unknown_names_the_valid_ids():
    with pytest.raises(InvalidChoiceError, match="valid ids: toy_claim, toy_failing"):
        papers.notebook_path("nope", NOTEBOOKS)


def test_good_yaml_loads(tmp_path):
    paper = papers.load_paper(write(tmp_path, GOOD.format(id="p1")))
    assert paper.targets[0].value == 76.2 and paper.targets[0].unit == "%"


@pytest.mark.parametrize("edit, field, hint", [
    (lambda s: s.replace("claim: Something holds.\n", ""), "claim", "missing"),
    (lambda s: s.replace('arxiv: "2103.00020"', "arxiv: 2103.00020"), "arxiv", "quote"),
    (lambda s: s.replace("id: p1", "id: other"), "id", "file name"),
    (lambda s: s + "claims: typo\n", "claims", "unknown field"),
    (lambda s: s.replace(', source: "Table 2"', ""), "targets[0].source", "missing"),
    (lambda s: s.replace("test_parameters: {}", "test_parameters: [1]"), "test_parameters", "mapping"),
    (lambda s: s.replace("test_parameters: {}\n", ""), "test_parameters", "missing"),
    (lambda s: s.replace("title: A Title", "title: ''"), "title", "non-empty"),
])
def test_validation_names_file_and_field(tmp_path, edit, field, hint):
    path = write(tmp_path, edit(GOOD.format(id="p1")))
    with pytest.raises(PaperMetadataError) as err:
        papers.load_paper(path)
    msg = str(err.value)
    assert str(path) in msg and repr(field) in msg and hint in msg
    assert isinstance(err.value, ZslabError)


def test_invalid_yaml_and_non_mapping(tmp_path):
    with pytest.raises(PaperMetadataError, match="not valid YAML"):
        papers.load_paper(write(tmp_path, "id: [unclosed\n"))
    with pytest.raises(PaperMetadataError, match="expected a mapping"):
        papers.load_paper(write(tmp_path, "- a\n- b\n"))


# -------------------------------------------------------------------- the repository's own paper YAMLs

REPO_IDS = papers.paper_ids(Path(__file__).resolve().parent.parent / "data" / "papers")


@pytest.mark.parametrize("paper_id", REPO_IDS)
def test_repo_paper_is_valid_and_has_its_notebook(paper_id):
    """Every data/papers/<id>.yaml validates, has notebooks/<id>.ipynb, and its test_parameters fit it."""
    from zslab.runner.params import notebook_parameters, validate_overrides

    repo = Path(__file__).resolve().parent.parent
    paper = papers.get_paper(paper_id, repo / "data" / "papers")
    nb = papers.notebook_path(paper_id, repo / "notebooks")
    validate_overrides(notebook_parameters(nb), paper.test_parameters, paper_id)


# -------------------------------------------------------------------- targets matched to our numbers

def test_target_and_expected_fields_parse_and_validate(tmp_path):
    text = GOOD.format(id="p1").replace(
        '  - {metric: top1, value: 76.2, unit: "%", setting: ImageNet, source: "Table 2"}',
        '  - {metric: gain, labels: {comparison: a − b}, value: 1.3, unit: pt, scale: 100, tolerance: 0.5,\n'
        '     compare: effect, source: "Sec. 3"}') + (
        'related_arxiv: ["2203.05557"]\nexpected:\n  - {metric: top1, labels: {head: x}, value: 0.5, tolerance: 0.02}\n')
    paper = papers.load_paper(write(tmp_path, text))
    t = paper.targets[0]
    assert t.labels == {"comparison": "a − b"} and t.scale == 100 and t.tolerance == 0.5 and t.compare == "effect"
    assert paper.related_arxiv == ["2203.05557"]
    assert paper.expected[0].value == 0.5 and paper.expected[0].labels == {"head": "x"}
    with pytest.raises(PaperMetadataError, match="compare.*'levels'"):
        papers.load_paper(write(tmp_path, text.replace("compare: effect", "compare: levels"), "p1"))
    with pytest.raises(PaperMetadataError, match=r"expected\[0\].tolerance"):
        papers.load_paper(write(tmp_path, text.replace(", tolerance: 0.02}", "}"), "p1"))
    with pytest.raises(PaperMetadataError, match="related_arxiv"):
        papers.load_paper(write(tmp_path, text.replace('["2203.05557"]', "[2203.05557]"), "p1"))


def test_targets_are_compared_as_the_mode_allows():
    from zslab.runner.targets import compare_target

    metrics = [{"metric": "gain", "value": 0.02, "ci_low": 0.01, "ci_high": 0.03, "seed": None,
                "labels": {"comparison": "a − b"}},
               {"metric": "gain", "value": 0.5, "ci_low": None, "ci_high": None, "seed": 0,
                "labels": {"comparison": "a − b"}}]
    effect = {"metric": "gain", "labels": {"comparison": "a − b"}, "value": 1.3, "scale": 100, "tolerance": 0.5}
    off = compare_target(effect, metrics, "offline")
    assert off["ours"] == pytest.approx(2.0) and off["ours_low"] == pytest.approx(1.0)   # the across-seed row
    assert off["comparison"].startswith("same direction") and "resolved" in off["comparison"]
    real = compare_target(effect, metrics, "real")
    assert real["comparison"].startswith("outside tolerance")
    assert compare_target({**effect, "tolerance": 1.0}, metrics, "real")["comparison"].startswith("within tolerance")
    level = compare_target({**effect, "compare": "level"}, metrics, "offline")
    assert "real mode only" in level["comparison"]
    missing = compare_target({**effect, "labels": {"comparison": "c − d"}}, metrics, "offline")
    assert missing["ours"] is None and missing["comparison"] == "not measured in this run"
    opposite = compare_target({**effect, "value": -1.0}, metrics, "offline")
    assert opposite["comparison"].startswith("opposite direction")
