"""Readers for the gene annotation files that phenotype and GO resources publish.

Every reader takes a path (plain or gzip, detected by content) and returns an ``Annotations``
record: (gene_id, term_id) pairs in file order without repeats, plus gene symbols when the file
has them. Gene IDs are normalised to CURIEs: NCBI Gene IDs become ``NCBIGene:<n>``, MGI IDs stay
``MGI:<n>``, UniProt accessions stay bare. Term IDs are returned as written; resolving alt_ids and
obsolete terms is the ontology's job (``Ontology.resolve``), so unknown IDs can be counted there.

Formats (tab-separated; ``#`` lines are comments unless said otherwise):

- ``hpo-g2p``: HPO genes_to_phenotype.txt, 2023+ header
  ``ncbi_gene_id gene_symbol hpo_id hpo_name frequency disease_id``; the pre-2023 layout
  (``#Format: entrez-gene-id<tab>entrez-gene-symbol<tab>HPO-Term-ID<tab>…``) is read too.
- ``hpo-p2g``: HPO phenotype_to_genes.txt, 2023+ header ``hpo_id hpo_name ncbi_gene_id
  gene_symbol disease_id``, or the pre-2023 7-column layout ``HPO-id, HPO label,
  entrez-gene-id, entrez-gene-symbol, additional info, source, disease-ID``.
- ``mgi-genepheno``: MGI_GenePheno.rpt, no header: MP ID in column 5, marker ID(s) in column 7.
- ``mgi-phenogenomp``: MGI_PhenoGenoMP.rpt, no header: MP ID in column 4, marker ID(s) in column 6.
  For both MGI reports only single-marker genotypes are kept (a knockout of one gene).
- ``mgi-pairs``: two columns ``MGI_id<TAB>MP_id``.
- ``hmd``: MGI HMD_HumanPhenotype.rpt: human symbol, human Entrez ID, mouse symbol, MGI ID,
  comma-separated top-level MP IDs. ``read_hmd`` also returns the ortholog table.
- GO: GAF 2.x (``read_gaf``; ``NOT`` qualifiers dropped) and NCBI gene2go-style tables
  (``read_gene2go``: NCBI's ``#tax_id GeneID GO_ID Evidence Qualifier …`` or a headed
  ``entrez_id go_id evidence [aspect]`` table).
- ID maps: ``read_id_map`` (gene ID → sequence accessions, two columns, header optional;
  an MGI ``MRK_SwissProt.rpt`` is read too) and ``read_gene_symbols`` (gene ID → symbol).
"""

import re
from dataclasses import dataclass, field

from genepheno.errors import InputError
from genepheno.io import open_text

TERM_RE = re.compile(r"^[A-Za-z]+:\d+$")
# GO evidence codes. "experimental" keeps experimental codes plus curator/author statements.
EXPERIMENTAL = frozenset({"EXP", "IDA", "IPI", "IMP", "IGI", "IEP", "HTP", "HDA", "HMP", "HGI", "HEP"})
CURATED = frozenset({"TAS", "IC"})
EVIDENCE_FILTERS = ("all", "non-iea", "experimental")
PHENOTYPE_FORMATS = ("hpo-g2p", "hpo-p2g", "mgi-genepheno", "mgi-phenogenomp", "mgi-pairs", "hmd")


@dataclass
class Annotations:
    pairs: list = field(default_factory=list)     # (gene_id, term_id)
    symbols: dict = field(default_factory=dict)   # gene_id -> symbol
    path: str = ""
    format: str = ""
    skipped: int = 0                              # rows skipped on purpose (e.g. NOT, multi-gene)

    def by_gene(self):
        out = {}
        for g, t in self.pairs:
            out.setdefault(g, []).append(t)
        return out


def normalize_gene_id(raw):
    raw = raw.strip()
    if raw.isdigit():
        return f"NCBIGene:{raw}"
    if raw.lower().startswith("ncbigene:"):
        return "NCBIGene:" + raw.split(":", 1)[1]
    return raw


def _rows(path):
    """Yield (line number, fields) for non-empty, non-comment lines."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#") or line.startswith("!"):
                continue
            yield lineno, line.split("\t")


def _check(path, lineno, fields, n, what):
    if len(fields) < n:
        raise InputError(f"{path}:{lineno}", f"has {len(fields)} column(s), {what} needs at least {n}",
                         "is the file tab-separated and complete?")


def _term(path, lineno, value):
    value = value.strip()
    if not TERM_RE.match(value):
        raise InputError(f"{path}:{lineno}", f"{value!r} is not a term ID (expected e.g. HP:0001250)")
    return value


class _Collector:
    def __init__(self, path, fmt):
        self.ann = Annotations(path=str(path), format=fmt)
        self._seen = set()

    def add(self, gene, term, symbol=None):
        if (gene, term) not in self._seen:
            self._seen.add((gene, term))
            self.ann.pairs.append((gene, term))
        if symbol:
            self.ann.symbols.setdefault(gene, symbol)

    def done(self):
        if not self.ann.pairs:
            raise InputError(self.ann.path, f"has no annotation rows (read as {self.ann.format})")
        return self.ann


def _first_lines(path, n=5):
    out = []
    with open_text(path) as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if line.strip():
                out.append(line)
            if len(out) >= n:
                break
    if not out:
        raise InputError(path, "is empty")
    return out


def detect_phenotype_format(path):
    """Guess one of PHENOTYPE_FORMATS from the first lines; an InputError when nothing fits."""
    lines = _first_lines(path)
    head = lines[0].lower()
    if head.startswith("ncbi_gene_id\tgene_symbol\thpo_id") or "entrez-gene-id\tentrez-gene-symbol\thpo-term-id" in head.replace(" ", ""):
        return "hpo-g2p"
    if head.startswith("hpo_id\thpo_name\tncbi_gene_id") or head.startswith("#format: hpo-id"):
        return "hpo-p2g"
    data = [ln.split("\t") for ln in lines if not ln.startswith("#")]
    if data:
        f = data[0]
        if len(f) >= 2 and f[0].startswith("MGI:") and f[1].strip().startswith("MP:"):
            return "mgi-pairs"
        if len(f) >= 4 and f[1].strip().isdigit() and f[3].startswith("MGI:"):
            return "hmd"
        if len(f) >= 7 and f[4].startswith("MP:"):
            return "mgi-genepheno"
        if len(f) >= 6 and f[3].startswith("MP:"):
            return "mgi-phenogenomp"
        if len(f) >= 4 and f[0].startswith("HP:") and f[2].strip().isdigit():
            return "hpo-p2g"
    raise InputError(path, "unrecognised annotation format",
                     f"pass --annotation-format, one of {', '.join(PHENOTYPE_FORMATS)}")


def read_phenotype_annotations(path, fmt=None):
    fmt = fmt or detect_phenotype_format(path)
    readers = {"hpo-g2p": read_hpo_genes_to_phenotype, "hpo-p2g": read_hpo_phenotype_to_genes,
               "mgi-genepheno": read_mgi_genepheno, "mgi-phenogenomp": read_mgi_phenogenomp,
               "mgi-pairs": read_mgi_pairs, "hmd": lambda p: read_hmd(p)[0]}
    if fmt not in readers:
        raise InputError(path, f"unknown annotation format {fmt!r}", f"use one of {', '.join(readers)}")
    return readers[fmt](path)


def _read_hpo(path, fmt, header, gene_col, symbol_col, term_col):
    c = _Collector(path, fmt)
    for lineno, f in _rows(path):
        if f[0] == header:
            continue
        _check(path, lineno, f, max(gene_col, symbol_col, term_col) + 1, fmt)
        if not f[gene_col].strip().isdigit():
            raise InputError(f"{path}:{lineno}", f"gene ID {f[gene_col]!r} is not an NCBI Gene ID")
        c.add(normalize_gene_id(f[gene_col]), _term(path, lineno, f[term_col]), f[symbol_col].strip())
    return c.done()


def read_hpo_genes_to_phenotype(path):
    """HPO genes_to_phenotype.txt: gene ID, symbol, HPO ID in the first three columns (both layouts)."""
    return _read_hpo(path, "hpo-g2p", "ncbi_gene_id", gene_col=0, symbol_col=1, term_col=2)


def read_hpo_phenotype_to_genes(path):
    """HPO phenotype_to_genes.txt: HPO ID, label, gene ID, symbol first (2023+ and pre-2023)."""
    return _read_hpo(path, "hpo-p2g", "hpo_id", gene_col=2, symbol_col=3, term_col=0)


def _read_mgi_report(path, fmt, mp_col, marker_col):
    c = _Collector(path, fmt)
    for lineno, f in _rows(path):
        _check(path, lineno, f, marker_col + 1, fmt)
        markers = [m for m in re.split(r"[,|]", f[marker_col]) if m.strip()]
        if len(markers) != 1:
            c.ann.skipped += 1  # multi-gene (or marker-less) genotypes are not single knockouts
            continue
        if not markers[0].strip().startswith("MGI:"):
            raise InputError(f"{path}:{lineno}", f"column {marker_col + 1} {markers[0]!r} is not an MGI ID")
        c.add(markers[0].strip(), _term(path, lineno, f[mp_col]))
    return c.done()


def read_mgi_genepheno(path):
    return _read_mgi_report(path, "mgi-genepheno", mp_col=4, marker_col=6)


def read_mgi_phenogenomp(path):
    return _read_mgi_report(path, "mgi-phenogenomp", mp_col=3, marker_col=5)


def read_mgi_pairs(path):
    c = _Collector(path, "mgi-pairs")
    for lineno, f in _rows(path):
        _check(path, lineno, f, 2, "an MGI pair file")
        if not f[0].startswith("MGI:"):
            raise InputError(f"{path}:{lineno}", f"{f[0]!r} is not an MGI ID")
        c.add(f[0].strip(), _term(path, lineno, f[1]))
    return c.done()


def read_hmd(path):
    """MGI HMD_HumanPhenotype.rpt -> (coarse MP annotations of MGI markers, ortholog rows).

    Ortholog rows are dicts: human_symbol, human_gene_id (NCBIGene:…), mouse_symbol, mgi_id."""
    c = _Collector(path, "hmd")
    orthologs = []
    for lineno, f in _rows(path):
        _check(path, lineno, f, 4, "HMD_HumanPhenotype.rpt")
        mgi = f[3].strip()
        if not mgi.startswith("MGI:"):
            raise InputError(f"{path}:{lineno}", f"column 4 {mgi!r} is not an MGI ID")
        orthologs.append({"human_symbol": f[0].strip(), "human_gene_id": normalize_gene_id(f[1]),
                          "mouse_symbol": f[2].strip(), "mgi_id": mgi})
        c.ann.symbols.setdefault(mgi, f[2].strip())
        for mp in (f[4].split(",") if len(f) > 4 else []):
            if mp.strip():
                c.add(mgi, _term(path, lineno, mp))
    return c.done(), orthologs


def _evidence_ok(code, evidence):
    if evidence == "all":
        return True
    if evidence == "non-iea":
        return code != "IEA"
    if evidence == "experimental":
        return code in EXPERIMENTAL or code in CURATED
    raise ValueError(f"evidence filter {evidence!r}; use one of {EVIDENCE_FILTERS}")


def read_gaf(path, evidence="all"):
    """GO annotations in GAF 2.x. Gene IDs are the DB object IDs (column 2, e.g. UniProt
    accessions). Symbols come from column 3; ``synonyms`` maps IDs to column 11's names."""
    c = _Collector(path, "gaf")
    synonyms = {}
    with open_text(path) as fh:
        first = fh.readline()
    if not first.startswith("!gaf-version: 2"):
        raise InputError(path, "does not start with '!gaf-version: 2.x'", "is this a GAF 2 file?")
    for lineno, f in _rows(path):
        _check(path, lineno, f, 15, "GAF 2")
        if "NOT" in f[3].split("|"):
            c.ann.skipped += 1
            continue
        if not _evidence_ok(f[6], evidence):
            continue
        acc = f[1].strip()
        c.add(acc, _term(path, lineno, f[4]), f[2].strip())
        if f[10].strip():
            synonyms.setdefault(acc, set()).update(s for s in f[10].split("|") if s)
    ann = c.done()
    ann.synonyms = synonyms
    return ann


def read_gene2go(path, evidence="all"):
    """NCBI gene2go (``#tax_id GeneID GO_ID Evidence Qualifier GO_term PubMed Category``) or a
    headed ``entrez_id go_id evidence [aspect]`` table. NOT qualifiers are dropped."""
    c = _Collector(path, "gene2go")
    head = _first_lines(path, 1)[0].lstrip("#").split("\t")
    ncbi = len(head) >= 5 and head[0].strip() == "tax_id"
    gcol, tcol, ecol, qcol = (1, 2, 3, 4) if ncbi else (0, 1, 2, None)
    for lineno, f in _rows(path):
        if f[0] in ("entrez_id", "tax_id", "GeneID"):
            continue
        _check(path, lineno, f, 3 if not ncbi else 5, "gene2go")
        if qcol is not None and f[qcol].startswith("NOT"):
            c.ann.skipped += 1
            continue
        if not _evidence_ok(f[ecol].strip(), evidence):
            continue
        c.add(normalize_gene_id(f[gcol]), _term(path, lineno, f[tcol]))
    return c.done()


def read_go_annotations(path, evidence="all"):
    """GAF or gene2go, told apart by the GAF header line."""
    if _first_lines(path, 1)[0].startswith("!gaf-version"):
        return read_gaf(path, evidence)
    return read_gene2go(path, evidence)


def read_id_map(path):
    """Gene ID -> list of sequence accessions, in file order.

    Two columns (``entrez_id uniprot_acc``; a header line is skipped), or MGI MRK_SwissProt.rpt
    (MGI ID in column 1, space-separated accessions in the last column)."""
    out = {}
    for lineno, f in _rows(path):
        _check(path, lineno, f, 2, "an ID map")
        gene = f[0].strip()
        if not (gene.isdigit() or ":" in gene):
            if lineno == 1:
                continue  # header
            raise InputError(f"{path}:{lineno}", f"{gene!r} is not a gene ID (NCBI Gene number or MGI:…)")
        accs = f[-1].split() if gene.startswith("MGI:") and len(f) > 2 else [f[1].strip()]
        lst = out.setdefault(normalize_gene_id(gene), [])
        lst.extend(a for a in accs if a and a not in lst)
    if not out:
        raise InputError(path, "has no ID mapping rows")
    return out


def read_gene_symbols(path):
    """Gene ID -> symbol from a two-or-more column table (``entrez_id symbol …``, NCBI
    gene_info ``tax_id GeneID Symbol …``, or MGI ``MGI_id symbol``)."""
    out = {}
    for lineno, f in _rows(path):
        _check(path, lineno, f, 2, "a gene symbol table")
        if len(f) >= 3 and f[0].isdigit() and f[1].isdigit():  # NCBI gene_info
            gene, sym = f[1], f[2]
        else:
            gene, sym = f[0], f[1]
        gene = gene.strip()
        if not (gene.isdigit() or gene.startswith("MGI:") or gene.startswith("NCBIGene:")):
            continue  # header line
        out[normalize_gene_id(gene)] = sym.strip()
    if not out:
        raise InputError(path, "has no gene symbol rows")
    return out
