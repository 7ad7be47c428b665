import gzip

import pytest

from conftest import FIXTURES
from genepheno import annotations as A
from genepheno.errors import InputError

B = FIXTURES / "real"
M = FIXTURES / "mgi"


def test_hpo_genes_to_phenotype():
    ann = A.read_hpo_genes_to_phenotype(B / "genes_to_phenotype.txt")
    assert ann.format == "hpo-g2p"
    assert ann.pairs[:2] == [("NCBIGene:10", "HP:0000007"), ("NCBIGene:18", "HP:0001250")]
    assert ann.symbols["NCBIGene:18"] == "ABAT"
    assert len(ann.pairs) == len(set(ann.pairs))     # repeats (several diseases) collapse
    assert A.detect_phenotype_format(B / "genes_to_phenotype.txt") == "hpo-g2p"


def test_hpo_phenotype_to_genes_both_layouts(tmp_path):
    new = tmp_path / "p2g_2023.txt"
    new.write_text("hpo_id\thpo_name\tncbi_gene_id\tgene_symbol\tdisease_id\n"
                   "HP:0001252\tHypotonia\t7157\tTP53\tOMIM:1\nHP:0001252\tHypotonia\t7157\tTP53\tOMIM:2\n")
    old = tmp_path / "p2g_legacy.txt"
    old.write_text("#Format: HPO-id<tab>HPO label<tab>entrez-gene-id<tab>entrez-gene-symbol<tab>"
                   "Additional Info from G-D source<tab>G-D source<tab>disease-ID for link\n"
                   "HP:0001252\tHypotonia\t7157\tTP53\t-\tmim2gene\tOMIM:151623\n")
    for p in (new, old):
        assert A.detect_phenotype_format(p) == "hpo-p2g"
        ann = A.read_phenotype_annotations(p)
        assert ann.pairs == [("NCBIGene:7157", "HP:0001252")] and ann.symbols == {"NCBIGene:7157": "TP53"}


def test_mgi_reports():
    gp = A.read_phenotype_annotations(M / "MGI_GenePheno.rpt")
    assert gp.format == "mgi-genepheno"
    assert gp.pairs == [("MGI:104663", "MP:0001260"), ("MGI:104663", "MP:0005458"),
                        ("MGI:104993", "MP:0001260"), ("MGI:99457", "MP:0001263")]
    assert gp.skipped == 1                              # the two-gene genotype
    pg = A.read_phenotype_annotations(M / "MGI_PhenoGenoMP.rpt")
    assert pg.format == "mgi-phenogenomp" and pg.pairs[1] == ("MGI:104993", "MP:0000008")
    pairs = A.read_phenotype_annotations(M / "gene_pheno_pairs.txt")
    assert pairs.format == "mgi-pairs" and len(pairs.pairs) == 4


def test_hmd_orthologs_and_coarse_mp():
    ann, orth = A.read_hmd(M / "HMD_HumanPhenotype.rpt")
    assert orth[0] == {"human_symbol": "LEP", "human_gene_id": "NCBIGene:3952", "mouse_symbol": "Lep",
                       "mgi_id": "MGI:104663"}
    assert ann.pairs == [("MGI:104663", "MP:0005376"), ("MGI:104663", "MP:0005375"), ("MGI:104993", "MP:0005376")]
    assert A.detect_phenotype_format(M / "HMD_HumanPhenotype.rpt") == "hmd"


def test_gaf_not_and_evidence(tmp_path):
    rows = ["!gaf-version: 2.1",
            "UniProtKB\tP1\tAAA\t\tGO:0016853\tPMID:1\tIDA\t\tF\tname\tsyn1|syn2\tprotein\ttaxon:9606\t20190101\tUniProt",
            "UniProtKB\tP1\tAAA\tNOT\tGO:0005515\tPMID:1\tIPI\t\tF\tname\t\tprotein\ttaxon:9606\t20190101\tUniProt",
            "UniProtKB\tP1\tAAA\t\tGO:0005634\tGO_REF:1\tIEA\t\tC\tname\t\tprotein\ttaxon:9606\t20190101\tUniProt",
            "UniProtKB\tP2\tBBB\t\tGO:0005634\tPMID:2\tTAS\t\tC\tname\t\tprotein\ttaxon:9606\t20190101\tUniProt"]
    p = tmp_path / "x.gaf.gz"
    p.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    every = A.read_go_annotations(p)
    assert every.pairs == [("P1", "GO:0016853"), ("P1", "GO:0005634"), ("P2", "GO:0005634")]
    assert every.skipped == 1 and every.synonyms["P1"] == {"syn1", "syn2"}
    assert A.read_gaf(p, "non-iea").pairs == [("P1", "GO:0016853"), ("P2", "GO:0005634")]
    assert A.read_gaf(p, "experimental").pairs == [("P1", "GO:0016853"), ("P2", "GO:0005634")]


def test_gene2go_both_layouts(tmp_path):
    ncbi = tmp_path / "gene2go"
    ncbi.write_text("#tax_id\tGeneID\tGO_ID\tEvidence\tQualifier\tGO_term\tPubMed\tCategory\n"
                    "9606\t7157\tGO:0005634\tIDA\tlocated_in\tnucleus\t1\tComponent\n"
                    "9606\t7157\tGO:0005737\tIDA\tNOT located_in\tcytoplasm\t1\tComponent\n"
                    "9606\t7157\tGO:0003677\tIEA\tenables\tDNA binding\t-\tFunction\n")
    ann = A.read_go_annotations(ncbi, "non-iea")
    assert ann.pairs == [("NCBIGene:7157", "GO:0005634")] and ann.skipped == 1
    orgdb = tmp_path / "entrez_go.tsv"
    orgdb.write_text("entrez_id\tgo_id\tevidence\taspect\n1\tGO:0008150\tND\tBP\n2\tGO:0001553\tIEA\tBP\n")
    assert A.read_go_annotations(orgdb).pairs == [("NCBIGene:1", "GO:0008150"), ("NCBIGene:2", "GO:0001553")]


def test_id_map_and_symbols(tmp_path):
    m = A.read_id_map(B / "entrez_uniprot.tsv")
    assert all(k.startswith("NCBIGene:") and v for k, v in m.items())
    mrk = tmp_path / "MRK_SwissProt.rpt"
    mrk.write_text("MGI:104663\tLep\tO\tleptin\t27.9\t6\tP41160 Q9QX01\n")
    assert A.read_id_map(mrk) == {"MGI:104663": ["P41160", "Q9QX01"]}
    sym = tmp_path / "labels.txt"
    sym.write_text("MGI:104663\tLep\nMGI:99457\tMc4r\n")
    assert A.read_gene_symbols(sym) == {"MGI:104663": "Lep", "MGI:99457": "Mc4r"}


@pytest.mark.parametrize("content, fmt, problem", [
    ("ncbi_gene_id\tgene_symbol\thpo_id\n7157\tTP53\n", "hpo-g2p", "has 2 column"),
    ("ncbi_gene_id\tgene_symbol\thpo_id\nTP53\tTP53\tHP:0001252\n", "hpo-g2p", "not an NCBI Gene ID"),
    ("ncbi_gene_id\tgene_symbol\thpo_id\n7157\tTP53\tHypotonia\n", "hpo-g2p", "not a term ID"),
    ("MGI:1\n", "mgi-pairs", "has 1 column"),
    ("ncbi_gene_id\tgene_symbol\thpo_id\n", "hpo-g2p", "no annotation rows"),
])
def test_bad_annotation_rows(tmp_path, content, fmt, problem):
    p = tmp_path / "ann.txt"
    p.write_text(content)
    with pytest.raises(InputError, match=problem) as e:
        A.read_phenotype_annotations(p, fmt)
    assert str(p) in str(e.value)


def test_unrecognised_and_empty(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("hello\tworld\n")
    with pytest.raises(InputError, match="unrecognised annotation format"):
        A.read_phenotype_annotations(p)
    p.write_text("")
    with pytest.raises(InputError, match="is empty"):
        A.read_phenotype_annotations(p)
    g = tmp_path / "x.gaf"
    g.write_text("UniProtKB\tP1\n")
    with pytest.raises(InputError, match="gaf-version"):
        A.read_gaf(g)
