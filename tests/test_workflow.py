"""The Snakemake workflow (workflow/Snakefile) end to end on a tiny configuration: a dataset built
from the real-data fixtures (a few dozen genes of the bundled hpo-human dataset's sources), the
offline kmer encoder in 3 shards, a tiny training config, and query genes fetched offline from a
local UniProt FASTA (two IDs of four resolve: fetch's exit 3 is tolerated). Also: the merged store
equals one unsharded run, a rerun does nothing, and the SLURM profile resolves every rule in a dry
run (no sbatch needed)."""

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import FIXTURES, ROOT

pytest.importorskip("snakemake")

from genepheno.cli import main  # noqa: E402

SNAKEFILE = ROOT / "workflow" / "Snakefile"
TINY = {"epochs": 4, "patience": 4, "hidden_dim": 32, "go_dim": 8, "min_go_genes": 1, "batch_size": 16}
SLURM_ENV = {"GENEPHENO_SLURM_ACCOUNT": "lab1", "GENEPHENO_SLURM_PARTITION": "cpu",
             "GENEPHENO_SLURM_GPU_PARTITION": "gpu"}
RULE_COUNTS = {"fetch": 1, "embed_shard": 6, "embed_merge": 2, "dataset_build": 1, "train": 1,
               "predict_test": 1, "predict_query": 1, "evaluate": 1, "all": 1}


def snakemake(workdir, *args, env=None):
    """Run snakemake from this interpreter, with this environment's `genepheno` on the PATH."""
    full_env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
                    **(env or {}))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600)


def write_config(workdir, **query):
    real = FIXTURES / "real"
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    (workdir / "ids.txt").write_text("TP53\nINS\nCDKN2A\nBRCA1\n")  # CDKN2A ambiguous, BRCA1 absent
    config = {
        "dataset": {"build": {
            "ontology": str(real / "hp_small.obo"), "annotations": str(real / "genes_to_phenotype.txt"),
            "sequences": str(real / "human.fasta"), "id_map": str(real / "entrez_uniprot.tsv"),
            "go_ontology": str(real / "go_small.obo"), "go_annotations": str(real / "goa_human_small.gaf"),
            "options": "--min-genes 3 --min-concept-genes 2"}},
        "embed": {"model": "kmer", "shards": 3, "device": "cpu"},
        "train": {"config": "tiny.yaml"},
        "query": {"ids": "ids.txt", "source": f"fasta:{FIXTURES / 'fetch' / 'uniprot_local.fasta'}", **query},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def ok(res):
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    w = tmp_path_factory.mktemp("wf")
    write_config(w)
    t0 = time.perf_counter()
    out = ok(snakemake(w, "--cores", "2"))
    print(f"\nworkflow wall time: {time.perf_counter() - t0:.1f} s")
    return w, out


def job_stats(out):
    """{rule: jobs} from the "Job stats:" table snakemake prints."""
    start = out.index("Job stats:")
    table = out[start:out.index("\ntotal", start)]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def store_vectors(path):
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT r.id, v.vector FROM records r JOIN vectors v USING (sha256)").fetchall()
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()
    return dict(rows), meta


def read_tsv(path):
    return [line.rstrip("\n").split("\t") for line in Path(path).read_text().splitlines()]


def test_every_rule_ran_with_logs(run):
    w, out = run
    assert job_stats(out) == RULE_COUNTS
    logs = w / "results" / "logs"
    assert len(list((logs / "embed").glob("*.log"))) == 6
    for log in ("fetch.log", "dataset_build.log", "train.log", "predict_test.log", "evaluate.log"):
        assert (logs / log).read_text().strip(), log
    assert "saved model to" in (logs / "train.log").read_text()


def test_merged_shards_equal_one_unsharded_run(run):
    w, _ = run
    emb = w / "results" / "embeddings"
    shards = [store_vectors(emb / "dataset" / f"shard-{k}-of-3.sqlite")[0] for k in (1, 2, 3)]
    assert all(shards) and len(set().union(*shards)) == sum(map(len, shards))  # non-empty, disjoint slices
    ref = w / "unsharded.sqlite"
    res = CliRunner().invoke(main, ["-q", "embed", "fasta", str(w / "results" / "dataset" / "sequences.fasta.gz"),
                                    "-o", str(ref), "--model", "kmer", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    merged, meta = store_vectors(emb / "dataset.sqlite")
    single, ref_meta = store_vectors(ref)
    n_genes = len(read_tsv(w / "results" / "dataset" / "genes.tsv")) - 1
    assert len(merged) == n_genes and sorted(merged) == sorted(single)
    assert all(merged[i] == single[i] for i in single)  # byte-identical float32 vectors
    assert meta["spec"] == ref_meta["spec"] and meta["shards"] == "null"  # every slice present = a full run


def test_test_predictions_well_formed(run):
    w, _ = run
    rows = read_tsv(w / "results" / "predictions" / "test.tsv")
    assert rows[0] == ["gene_id", "term_id", "score", "gene_symbol", "term_name", "concepts"]
    genes = [r for r in read_tsv(w / "results" / "dataset" / "genes.tsv")[1:] if r[3] == "test"]
    n_terms = len(read_tsv(w / "results" / "dataset" / "terms.tsv")) - 1
    body = rows[1:]
    assert len(body) == len(genes) * n_terms and all(len(r) == 6 for r in body)
    # grouped by gene in dataset order, each gene's scores descending
    order = [g for i, g in enumerate(r[0] for r in body) if i == 0 or body[i - 1][0] != g]
    assert order == [g[0] for g in genes]
    for gene_id, symbol, _, _ in genes:
        scores = [float(r[2]) for r in body if r[0] == gene_id]
        assert scores == sorted(scores, reverse=True) and {r[3] for r in body if r[0] == gene_id} == {symbol}
    assert all(re.fullmatch(r"[01]\.\d{4}", r[2]) and 0.0 <= float(r[2]) <= 1.0 for r in body)
    metrics = read_tsv(w / "results" / "evaluation" / "metrics.tsv")
    assert metrics[0][:3] == ["method", "bin", "Fmax"] and metrics[1][:2] == ["GenePheno", "all"]
    assert 0 < float(metrics[1][2]) <= 1


def test_query_genes_fetched_and_predicted(run):
    w, _ = run
    missing = read_tsv(w / "results" / "fetch" / "query.missing.tsv")
    assert sorted((r[0], r[2]) for r in missing[1:]) == [("BRCA1", "not_found"), ("CDKN2A", "ambiguous")]
    assert "exit 3 tolerated" in (w / "results" / "logs" / "fetch.log").read_text()
    rows = read_tsv(w / "results" / "predictions" / "query.tsv")
    assert rows[0][:3] == ["gene_id", "term_id", "score"]
    assert {r[0] for r in rows[1:]} == {"TP53", "INS"} and all(0 <= float(r[2]) <= 1 for r in rows[1:])


def test_rerun_does_nothing(run):
    w, _ = run
    outputs = sorted(p for p in (w / "results").rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in outputs}
    out = ok(snakemake(w, "--cores", "2"))
    assert "Nothing to be done" in out
    assert {p: p.stat().st_mtime_ns for p in outputs} == before


def test_fetch_exit_3_stops_the_workflow_when_not_allowed(tmp_path):
    write_config(tmp_path, allow_missing=False)
    res = snakemake(tmp_path, "--cores", "1", "results/fetch/query.fasta")
    assert res.returncode != 0 and "Error in rule fetch" in res.stdout + res.stderr
    assert not (tmp_path / "results" / "fetch" / "query.fasta").exists()  # snakemake removes a failed job's outputs


def test_slurm_profile_dry_run_resolves_every_rule(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    write_config(tmp_path)
    out = ok(snakemake(tmp_path, "-n", "--profile", str(ROOT / "workflow" / "profiles" / "slurm"), env=SLURM_ENV))
    assert job_stats(out) == RULE_COUNTS
    shard_jobs = re.findall(r"rule embed_shard:.*?resources: ([^\n]*)", out, re.S)
    assert len(shard_jobs) == 6 and all("gpu=1" in r and "slurm_partition=gpu" in r for r in shard_jobs)
    assert "slurm_account=lab1" in out and "slurm_partition=cpu," in out
    # the bundled dataset by name: no build step, the dataset's own sequences are embedded
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"dataset": {"use": "hpo-human"}, "embed": {"shards": 4}}))
    out = ok(snakemake(tmp_path, "-n", "--profile", str(ROOT / "workflow" / "profiles" / "local")))
    assert job_stats(out) == {"embed_shard": 4, "embed_merge": 1, "train": 1, "predict_test": 1,
                                   "evaluate": 1, "all": 1}
    assert re.search(r"genepheno embed fasta \S*datasets/hpo-human/sequences\.fasta\.gz .*--shard 4/4", out)
