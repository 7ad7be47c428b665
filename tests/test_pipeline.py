"""End to end through the CLI on a tiny real-data dataset: embed -> train -> predict -> explain ->
run, with the offline kmer encoder."""

import gzip
import shutil

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import FIXTURES
from genepheno.cli import main
from genepheno.data import load_dataset

B = FIXTURES / "real"
TINY = {"epochs": 4, "patience": 4, "hidden_dim": 32, "go_dim": 8, "min_go_genes": 1, "batch_size": 16}


def cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res


def ok(*args):
    res = cli(*args)
    assert res.exit_code == 0, res.output + str(res.exception)
    return res


def one_line_error(res):
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genepheno: error: "), res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    w = tmp_path_factory.mktemp("pipe")
    ok("-q", "datasets", "build", "--ontology", B / "hp_small.obo", "--annotations", B / "genes_to_phenotype.txt",
       "--sequences", B / "human.fasta", "--id-map", B / "entrez_uniprot.tsv", "--go-ontology", B / "go_small.obo",
       "--go-annotations", B / "goa_human_small.gaf", "--min-genes", 3, "--min-concept-genes", 2, "-o", w / "ds")
    ok("-q", "embed", w / "ds" / "sequences.fasta.gz", "-o", w / "emb.sqlite", "--model", "kmer")
    (w / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    ok("-q", "train", "--dataset", w / "ds", "--embeddings", w / "emb.sqlite", "--config", w / "tiny.yaml", "-o", w / "model")
    return w


def read_rows(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        return [line.rstrip("\n").split("\t") for line in fh]


def test_model_folder(work):
    meta = yaml.safe_load((work / "model" / "model.yaml").read_text())
    assert (work / "model" / "weights.safetensors").exists()
    assert meta["config"]["epochs"] == 4 and meta["embedding"]["model"] == "kmer"
    ds = load_dataset(work / "ds")
    assert [t["id"] for t in meta["terms"]] == ds.term_ids and len(meta["concepts"]) == len(ds.concept_ids)
    assert meta["go_vocab"] and meta["dataset"]["manifest_sha256"]
    assert len(meta["history"]) == meta["summary"]["epochs_run"]


def test_predict_file_format_and_hierarchy(work):
    out = work / "pred.tsv.gz"
    ok("-q", "predict", "--model", work / "model", "--embeddings", work / "emb.sqlite", "--dataset", work / "ds",
       "--split", "test", "-o", out)
    rows = read_rows(out)
    assert rows[0] == ["gene_id", "term_id", "score", "gene_symbol", "term_name", "concepts"]
    ds = load_dataset(work / "ds")
    test_genes = {ds.gene_ids[i] for i in ds.split_indices("test")}
    body = rows[1:]
    assert {r[0] for r in body} == test_genes
    scores = {}
    for g, t, s, sym, name, concepts in body:
        assert 0.0 <= float(s) <= 1.0 and name == ds.term_names[ds.term_index[t]] and sym
        scores[g, t] = float(s)
        for c in filter(None, concepts.split(";")):
            cid, cname, contrib = c.split("|")
            assert cid.startswith("GO:") and cname and float(contrib) > 0
    # sorted by gene, then descending score
    order = [r[0] for r in body]
    assert order == sorted(order, key=order.index)
    for g in test_genes:
        s = [float(r[2]) for r in body if r[0] == g]
        assert s == sorted(s, reverse=True)
    # hierarchy: no ancestor below a descendant
    for d, a in ds.ancestor_pairs():
        for g in test_genes:
            assert scores[g, ds.term_ids[a]] >= scores[g, ds.term_ids[d]]


def test_predict_from_fasta_equals_store_and_options(work):
    a, b = work / "a.tsv", work / "b.tsv"
    ok("-q", "predict", "--model", work / "model", "--embeddings", work / "emb.sqlite", "--top-k", 3, "-o", a)
    ok("-q", "predict", "--model", work / "model", "--embeddings", work / "ds" / "sequences.fasta.gz", "--top-k", 3, "-o", b)
    ra, rb = read_rows(a), read_rows(b)
    assert [r[:3] for r in ra] == [r[:3] for r in rb]
    per_gene = {}
    for r in ra[1:]:
        per_gene[r[0]] = per_gene.get(r[0], 0) + 1
    assert set(per_gene.values()) == {3}
    res = ok("-q", "predict", "--model", work / "model", "--embeddings", work / "emb.sqlite", "--min-score", 0.5,
             "--top-concepts", 0, "-o", "-")
    lines = res.stdout.splitlines()
    assert lines[0].startswith("gene_id\t") and all(float(x.split("\t")[2]) >= 0.5 for x in lines[1:])
    assert all(x.split("\t")[5] == "" for x in lines[1:])


def test_explain_table_and_plot(work):
    ds = load_dataset(work / "ds")
    gene = ds.gene_ids[0]
    png = work / "explain.png"
    res = ok("-q", "explain", "--model", work / "model", "--embeddings", work / "emb.sqlite", "--dataset", work / "ds",
             "--gene", gene, "--top-terms", 2, "--top-concepts", 3, "--plot", png)
    rows = [r.split("\t") for r in res.stdout.splitlines()]
    assert rows[0] == ["gene_id", "term_id", "term_name", "score", "concept_id", "concept_name", "activation",
                       "weight", "contribution"]
    assert len(rows) == 1 + 2 * 3
    for r in rows[1:]:
        assert float(r[8]) == pytest.approx(float(r[6]) * float(r[7]), abs=2e-4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_inputs(work, tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("epochs: 2\nlamda_exclusive: 0.1\n")
    msg = one_line_error(cli("train", "--dataset", work / "ds", "--embeddings", work / "emb.sqlite", "--config", typo,
                             "-o", tmp_path / "m"))
    assert "unknown key 'lamda_exclusive'" in msg and "lambda_exclusive" in msg and not (tmp_path / "m").exists()
    msg = one_line_error(cli("predict", "--model", work / "model", "--embeddings", work / "emb.sqlite", "--split", "test",
                             "-o", tmp_path / "s.tsv"))
    assert "--split needs --dataset" in msg and not (tmp_path / "s.tsv").exists()
    msg = one_line_error(cli("explain", "--model", work / "model", "--embeddings", work / "emb.sqlite", "--gene", "NCBIGene:0"))
    assert "NCBIGene:0" in msg
    # embeddings from another encoder version: same dimension, refused
    other = tmp_path / "other.sqlite"
    shutil.copy(work / "emb.sqlite", other)
    import sqlite3
    con = sqlite3.connect(other)
    spec = yaml.safe_load(con.execute("SELECT value FROM meta WHERE key='spec'").fetchone()[0])
    spec["version"] = 999
    import json
    con.execute("UPDATE meta SET value=? WHERE key='spec'", (json.dumps(spec),))
    con.commit()
    con.close()
    msg = one_line_error(cli("predict", "--model", work / "model", "--embeddings", other, "-o", tmp_path / "p.tsv"))
    assert "do not match the model" in msg and "version" in msg and not (tmp_path / "p.tsv").exists()
    msg = one_line_error(cli("train", "--dataset", work / "ds", "--embeddings", tmp_path / "missing.sqlite", "-o", tmp_path / "m"))
    assert "missing.sqlite" in msg


def test_run_end_to_end(work, tmp_path):
    out = tmp_path / "results"
    ok("-q", "run", "--dataset", work / "ds", "-o", out, "--config", work / "tiny.yaml", "--baselines", "naive,go-mlp",
       "--model", "kmer")
    report = (out / "report.md").read_text()
    for method in ("GenePheno", "naive", "GO-MLP"):
        assert method in report
    assert (out / "evaluation" / "metrics.tsv").exists() and list(out.glob("explain_*.png"))
    metrics = read_rows(out / "evaluation" / "metrics.tsv")
    assert metrics[0][:3] == ["method", "bin", "Fmax"]
    fmax = {r[0]: float(r[2]) for r in metrics[1:] if r[1] == "all"}
    assert all(0 < v <= 1 for v in fmax.values()) and len(fmax) == 3
    run = yaml.safe_load((out / "run.yaml").read_text())
    assert run["encoder"]["model"] == "kmer" and set(run["timings_s"]) >= {"train GenePheno", "evaluate"}
    assert np.isfinite(run["wall_s"])
