"""`genepheno evaluate` on a hand-made dataset and hand-made prediction files whose metrics are
worked out below; the side-by-side report; clean one-line errors for bad files."""

import csv
import gzip

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_dataset
from genepheno.cli import main
from genepheno.data import load_dataset
from genepheno.evaluate import evaluate_files, evaluate_scores, method_name, table1_markdown

# Terms: T:1 (bin >=301) <- T:2 (11-30); T:3 (>=301) <- T:4 (11-30). Labels are propagated.
TERMS = [("T:1", ">=301", ""), ("T:2", "11-30", "T:1"), ("T:3", ">=301", ""), ("T:4", "11-30", "T:3")]
LABELS = {"t1": ["T:1", "T:2"], "t2": ["T:1"], "t3": ["T:3", "T:4"], "t4": ["T:3"], "v1": ["T:1"],
          "g1": ["T:1", "T:2"], "g2": ["T:3"], "g3": ["T:1", "T:3", "T:4"]}
SPLIT = {"t1": "train", "t2": "train", "t3": "train", "t4": "train", "v1": "val", "g1": "test", "g2": "test", "g3": "test"}
# IA from the 4 training genes: T:1 2/4 of annotated genes, T:2 1/2 of T:1's, T:3 2/4, T:4 1/2 -> all 1 bit.

# Deliberately inconsistent with the hierarchy (g1 has T:2 but not T:1; g3 has T:4 only): after
# max-propagation g1 = {T:1 .8, T:2 .8, T:3 .45}, g2 = {T:1 .2, T:3 .6}, g3 = {T:3 .5, T:4 .5}.
MODEL = """gene_id\tterm_id\tscore\tgene_symbol\tterm_name\tconcepts
g1\tT:2\t0.8\tS\tx\t
g1\tT:3\t0.45\tS\tx\t
g2\tT:3\t0.6\tS\tx\t
g2\tT:1\t0.2\tS\tx\t
g3\tT:4\t0.5\tS\tx\t
t1\tT:1\t0.9\tS\tx\t
g1\tHP:0000118\t0.9\tS\tx\t
"""
# the same row for every gene, hierarchy-consistent
OTHER = "".join(f"{g}\t{t}\t{s}\n" for g in ("g1", "g2", "g3") for t, s in
                (("T:1", 0.5), ("T:2", 0.25), ("T:3", 0.5), ("T:4", 0.25)))


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    d = tmp_path_factory.mktemp("hand")
    write_dataset(d / "hand", SPLIT.items(), LABELS, [(t, b, [p] if p else []) for t, b, p in TERMS])
    (d / "model.tsv").write_text(MODEL)
    (d / "other.tsv.gz").write_bytes(gzip.compress(OTHER.encode()))
    return d


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_metrics_by_hand(hand):
    ev = evaluate_files([hand / "model.tsv"], hand / "hand")
    (m,) = ev.methods
    assert m.name == "model" and m.genes_predicted == 3
    a = m.row("all")
    # t in (0.45, 0.5]: g1 {T1,T2} P1 R1, g2 {T3} P1 R1, g3 {T3,T4} P1 R2/3 -> P 1, R 8/9, F 16/17
    # (t in (0.2, 0.45]: g1 adds T3 -> P 8/9, R 8/9; t <= 0.2: g2 adds T1 -> F 416/522; t > 0.5: F 0.8)
    assert a["fmax"] == pytest.approx(16 / 17) and a["threshold"] == pytest.approx(0.46)
    assert (a["precision"], a["recall"], a["coverage"]) == pytest.approx((1, 8 / 9, 1))
    # AUC per term over g1..g3 (missing = 0): T1 (.8, 0 vs .2) 1/2, T2 1, T3 (.6, .5 vs .45) 1, T4 1
    assert a["auc"] == pytest.approx(3.5 / 4) and a["auc_terms"] == 4
    # micro AP: .8 PP, .6 P, .5 PP (R 5/6, P 1), .45 N, .2 N, 0: 1 P + 5 N (P 6/12, R 1)
    assert a["aupr"] == pytest.approx(5 / 6 + 1 / 6 * 0.5)
    # Smin (every IA = 1 bit): at t = .46 only g3 misses T1 -> ru 1/3, mi 0
    assert a["smin"] == pytest.approx(1 / 3) and a["smin_threshold"] == pytest.approx(0.46)
    assert (a["n_genes"], a["n_terms"]) == (3, 4)

    top = m.row(">=301")  # T1, T3: t in (.45, .5]: g3 {T3} R 1/2 -> P 1, R 5/6, F 10/11
    assert top["fmax"] == pytest.approx(10 / 11) and top["threshold"] == pytest.approx(0.46)
    assert top["auc"] == pytest.approx(0.75) and top["aupr"] == pytest.approx(3 / 4 + 1 / 4 * 4 / 6)
    rare = m.row("11-30")  # T2, T4: g2 has neither -> left out; g1 T2 .8, g3 T4 .5 -> F 1 from t = 0
    assert (rare["fmax"], rare["threshold"], rare["auc"], rare["n_genes"], rare["n_terms"]) == (1, 0, 1, 2, 2)
    assert rare["smin"] == 0
    for empty in ("31-100", "101-300"):
        assert m.row(empty)["n_terms"] == 0 and np.isnan(m.row(empty)["fmax"])


def test_in_memory_scores_equal_file_scores(hand):
    ds = load_dataset(hand / "hand")
    s = np.full((3, 4), np.nan)
    s[0, 1], s[0, 2], s[1, 2], s[1, 0], s[2, 3] = 0.8, 0.45, 0.6, 0.2, 0.5
    mem = evaluate_scores(ds, {"model": s}).methods[0].rows
    disk = evaluate_files([hand / "model.tsv"], ds).methods[0].rows
    for a, b in zip(mem, disk):
        assert {k: v for k, v in a.items()} == pytest.approx(b, nan_ok=True)


def test_cli_side_by_side_report(hand, tmp_path):
    out = tmp_path / "ev"
    res = run("-q", "evaluate", "-p", hand / "model.tsv", "-p", hand / "other.tsv.gz", "--dataset", hand / "hand", "-o", out)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(out / "metrics.tsv"), delimiter="\t"))
    assert list(rows[0])[:10] == ["method", "bin", "Fmax", "threshold", "AUC", "AUPR", "Smin", "coverage",
                                  "n_genes", "n_terms"]
    groups = ("all", "11-30", "31-100", "101-300", ">=301")
    assert [(r["method"], r["bin"]) for r in rows[:6]] == [("model", b) for b in groups] + [("other", "all")]
    assert float(rows[0]["Fmax"]) == pytest.approx(16 / 17, abs=1e-6) and rows[2]["Fmax"] == "NA"
    # other: t in (.25, .5]: {T1, T3} for all -> P 2/3, R 13/18, F 468/675; t <= .25: P 1/2, R 1, F 2/3
    assert float(rows[5]["Fmax"]) == pytest.approx(468 / 675, abs=1e-6) and float(rows[5]["AUC"]) == 0.5
    report = (out / "report.md").read_text()
    assert "| model | **94.12** / **87.50** | **100.00** / **100.00** | – / – | – / – | **90.91** / **75.00** |" in report
    assert "| other | 69.33 / 50.00 | 66.67 / 50.00 | – / – | – / – | 80.00 / 50.00 |" in report
    assert "split **test**: 3 genes, 4 terms" in report
    for png in ("pr_curves.png", "bins_fmax_auc.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({png})" in report
    # --name overrides the stems
    res = run("-q", "evaluate", "-p", hand / "model.tsv", "--name", "GenePheno", "--dataset", hand / "hand", "-o", out)
    assert res.exit_code == 0 and "| GenePheno | " in (out / "report.md").read_text()


def test_table_has_every_method_and_names_default_to_stems(hand):
    assert method_name("a/b/blast.tsv.gz") == "blast" and method_name("naive.tsv") == "naive"
    ev = evaluate_files([hand / "model.tsv", hand / "other.tsv.gz"], hand / "hand")
    table = table1_markdown(ev).splitlines()
    assert table[0] == "| Method | All | 11-30 | 31-100 | 101-300 | ≥301 |"
    assert [line.split(" | ")[0] for line in table[2:]] == ["| model", "| other"]
    rec = ev.records()
    assert len(rec) == 10 and (rec[0]["method"], rec[0]["bin"]) == ("model", "all")
    assert rec[5]["method"] == "other" and rec[5]["fmax"] == pytest.approx(468 / 675)


@pytest.mark.parametrize("content, message", [
    ("NCBIGene:1\tT:1\t0.5\nNCBIGene:2\tT:3\t0.1\n", "has no predictions for the evaluated genes and terms"),
    ("g1\tT:1\n", ":1: has 2 column(s)"),
    ("g1\tT:1\t0.5\ng2\tT:3\thigh\n", ":2: score 'high' is not a number"),
    ("g1\tT:1\t1.5\n", "is outside [0, 1]"),
    ("gene_id\tterm_id\tscore\n", "has no predictions"),
])
def test_bad_prediction_files_give_one_line_errors(hand, tmp_path, content, message):
    bad = tmp_path / "bad.tsv"
    bad.write_text(content)
    out = tmp_path / "ev"
    res = run("-q", "evaluate", "-p", hand / "model.tsv", "-p", bad, "--dataset", hand / "hand", "-o", out)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genepheno: error: ") and message in lines[0], res.output
    assert "Traceback" not in res.output and not out.exists()  # nothing half-written


def test_bad_invocations(hand, tmp_path):
    ds, out = hand / "hand", tmp_path / "ev"
    cases = [(["-p", tmp_path / "missing.tsv"], "file not found"),
             (["-p", hand / "model.tsv", "-p", hand / "model.tsv"], "method name 'model' is used twice"),
             (["-p", hand / "model.tsv", "--name", "a", "--name", "b"], "2 --name value(s) for 1 --predictions"),
             (["-p", hand / "model.tsv", "--split", "val"], "has no predictions")]
    for args, message in cases:
        res = run("-q", "evaluate", *args, "--dataset", ds, "-o", out)
        assert res.exit_code == 1 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not out.exists()
