import numpy as np
import pytest

from genepheno.errors import InputError
from genepheno.predictions import max_propagate, read_predictions, topological_order, write_predictions

# 0 <- 1 <- 3, 0 <- 2 <- 3 (3 has two parents), 4 alone
PARENTS = [[], [0], [0], [1, 2], []]


def test_topological_order_children_first():
    order = topological_order(PARENTS)
    pos = {j: k for k, j in enumerate(order)}
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert all(pos[j] < pos[p] for j, ps in enumerate(PARENTS) for p in ps)


def test_max_propagate_respects_hierarchy_and_nan():
    s = np.array([[0.1, 0.2, np.nan, 0.9, 0.3], [np.nan] * 5], dtype=np.float32)
    out = max_propagate(s, PARENTS)
    np.testing.assert_allclose(out[0], [0.9, 0.9, 0.9, 0.9, 0.3])
    assert np.isnan(out[1]).all()
    assert s[0, 0] == np.float32(0.1)  # input untouched


def test_write_read_roundtrip(tmp_path):
    s = np.array([[0.5, 0.25, np.nan], [0.125, 0.75, 0.75]], dtype=np.float32)
    p = tmp_path / "pred.tsv.gz"
    n = write_predictions(p, ["g1", "g2"], ["A", "B"], ["T:1", "T:2", "T:3"], ["one", "two", "three"], s,
                          concepts=lambda i, j: f"GO:1|x|{i}{j}")
    assert n == 5
    import gzip
    lines = gzip.open(p, "rt").read().splitlines()
    assert lines[0] == "gene_id\tterm_id\tscore\tgene_symbol\tterm_name\tconcepts"
    assert lines[1:4] == ["g1\tT:1\t0.5000\tA\tone\tGO:1|x|00", "g1\tT:2\t0.2500\tA\ttwo\tGO:1|x|01",
                          "g2\tT:2\t0.7500\tB\ttwo\tGO:1|x|11"]
    back = read_predictions(p, {"g1": 0, "g2": 1, "g3": 2}, {"T:1": 0, "T:2": 1, "T:3": 2})
    np.testing.assert_allclose(back[:2], s, equal_nan=True)
    assert np.isnan(back[2]).all()
    top = tmp_path / "top.tsv"
    assert write_predictions(top, ["g2"], ["B"], ["T:1", "T:2", "T:3"], ["a", "b", "c"], s[1:], top_k=1, min_score=0.2) == 1
    assert top.read_text().splitlines()[1].startswith("g2\tT:2\t0.7500")


@pytest.mark.parametrize("line, problem", [("g1\tT:1\n", "column"), ("g1\tT:1\tx\n", "not a number"),
                                           ("g1\tT:1\t1.5\n", "outside")])
def test_read_bad_rows(tmp_path, line, problem):
    p = tmp_path / "p.tsv"
    p.write_text(line)
    with pytest.raises(InputError, match=problem):
        read_predictions(p, {"g1": 0}, {"T:1": 0})
