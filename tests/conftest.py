"""Shared fixtures. Markers ``internet`` and ``slow`` are off unless --internet / --slow is given."""

import gzip
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_addoption(parser):
    parser.addoption("--internet", action="store_true", help="run tests that query live web services")
    parser.addoption("--slow", action="store_true", help="run slow end-to-end tests")


def pytest_collection_modifyitems(config, items):
    for marker in ("internet", "slow"):
        if config.getoption(f"--{marker}"):
            continue
        skip = pytest.mark.skip(reason=f"needs --{marker}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


def shared(*parts):
    """Path to a file of ../shared/data, or skip the test when that folder is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p


@pytest.fixture
def fixtures():
    return FIXTURES


def write_dataset(path, genes, labels, terms, go=None):
    """A dataset folder by hand. genes: [(gene_id, split)]; labels: {gene: [terms]} (already
    propagated); terms: [(term_id, bin, [parents])]; go: {gene: [GO IDs]}."""
    path.mkdir(parents=True)
    (path / "manifest.yaml").write_text("name: synthetic\n")
    (path / "genes.tsv").write_text("gene_id\tsymbol\tsequence_id\tsplit\n" +
                                    "".join(f"{g}\tS{g}\tP{g}\t{s}\n" for g, s in genes))
    n = {t: sum(t in v for v in labels.values()) for t, _, _ in terms}
    (path / "terms.tsv").write_text("term_id\tname\tn_genes\tbin\tparents\n" +
                                    "".join(f"{t}\tname of {t}\t{n[t]}\t{b}\t{','.join(p)}\n" for t, b, p in terms))
    (path / "concepts.tsv").write_text("concept_id\tname\tnamespace\n")
    with gzip.open(path / "labels.tsv.gz", "wt") as fh:
        fh.write("gene_id\tterm_id\n" + "".join(f"{g}\t{t}\n" for g, ts in labels.items() for t in ts))
    if go is not None:
        with gzip.open(path / "go_annotations.tsv.gz", "wt") as fh:
            fh.write("gene_id\tgo_id\n" + "".join(f"{g}\t{t}\n" for g, ts in go.items() for t in ts))
    return path
