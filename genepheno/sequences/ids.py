"""Gene identifiers for ``genepheno fetch``: reading ID lists, detecting each ID's type, organisms.

Types: ``symbol`` (HGNC / MGI gene symbol), ``entrez`` (NCBI Gene ID), ``ensembl`` (Ensembl gene
ID, any species prefix), ``uniprot`` (UniProtKB accession), ``mgi`` (MGI marker ID).
"""

import re
from collections import Counter
from dataclasses import dataclass

from genepheno.errors import GenephenoError, InputError
from genepheno.io import open_text
from genepheno.log import logger

ID_TYPES = ("symbol", "entrez", "ensembl", "uniprot", "mgi")
TYPE_LABELS = {"symbol": "gene symbol", "entrez": "NCBI Gene ID", "ensembl": "Ensembl gene ID",
               "uniprot": "UniProt accession", "mgi": "MGI ID"}

ORGANISMS = {"human": 9606, "homo_sapiens": 9606, "homo sapiens": 9606, "hsa": 9606,
             "mouse": 10090, "mus_musculus": 10090, "mus musculus": 10090, "mmu": 10090,
             "rat": 10116, "rattus_norvegicus": 10116, "zebrafish": 7955, "danio_rerio": 7955}
SCIENTIFIC_NAMES = {9606: "Homo sapiens", 10090: "Mus musculus", 10116: "Rattus norvegicus",
                    7955: "Danio rerio"}
# Ensembl gene-ID prefix -> NCBI taxon; ENSG is human, ENSMUSG mouse, ...
ENSEMBL_PREFIX_TAXA = {"ENSG": 9606, "ENSMUSG": 10090, "ENSRNOG": 10116, "ENSDARG": 7955}

_UNIPROT = re.compile(r"^([OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9]([A-Z][A-Z0-9]{2}[0-9]){1,2})$")
_UNIPROT_ISOFORM = re.compile(r"^([OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9]([A-Z][A-Z0-9]{2}[0-9]){1,2})-\d+$")
_ENSEMBL_GENE = re.compile(r"^(ENS(?:[A-Z]{3,4})?G)(\d{11})(\.\d+)?$", re.I)
_ENSEMBL_OTHER = re.compile(r"^ENS(?:[A-Z]{3,4})?([TPE])\d{11}(\.\d+)?$", re.I)
_MGI = re.compile(r"^MGI:(\d+)$", re.I)
_ENTREZ = re.compile(r"^\d+$")
_HGNC = re.compile(r"^HGNC:\d+$", re.I)
# Symbols: letters, digits and . - _ / @ ' (HLA-A, C9orf72, Nkx2-5, 1700001C19Rik), at least one letter
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/@']*$")


@dataclass(frozen=True)
class Query:
    """One requested gene: what the user typed, its type, the normalised key, and its organism."""

    input_id: str
    id_type: str
    key: str  # normalised: versionless upper-case Ensembl ID, 'MGI:n', accession, symbol as typed
    taxid: int | None  # organism the answer must belong to; None = any (taken from the answer)
    where: str = ""

    @property
    def label(self):
        return TYPE_LABELS[self.id_type]


def parse_organism(text):
    """'human', 'mouse', a species name or an NCBI taxon ID -> taxon ID (int)."""
    if text is None:
        return None
    t = str(text).strip().lower()
    if t.isdigit():
        return int(t)
    if t in ORGANISMS:
        return ORGANISMS[t]
    raise GenephenoError(f"unknown organism {text!r} (use human, mouse, or an NCBI taxon ID such as 9606)")


def organism_name(taxid):
    return SCIENTIFIC_NAMES.get(taxid, f"taxon {taxid}" if taxid else "")


def detect_type(token):
    """The type an ID looks like, or None. The order matters: MGI and Ensembl IDs first, then
    numbers (Entrez), UniProt accessions, and anything else symbol-shaped is a symbol."""
    if _MGI.match(token):
        return "mgi"
    if _ENSEMBL_GENE.match(token):
        return "ensembl"
    if _ENTREZ.match(token):
        return "entrez"
    if _UNIPROT.match(token):
        return "uniprot"
    if _SYMBOL.match(token) and any(c.isalpha() for c in token) and not _looks_like_other(token):
        return "symbol"
    return None


def _looks_like_other(token):
    return bool(_ENSEMBL_OTHER.match(token) or _UNIPROT_ISOFORM.match(token) or _HGNC.match(token))


def a(id_type):
    """'an NCBI Gene ID', 'a gene symbol', ..."""
    return ("an " if id_type in ("entrez", "ensembl", "mgi") else "a ") + TYPE_LABELS[id_type]


def why_invalid(token, id_type=None):
    """A short reason an ID is not usable (as ``id_type`` when given)."""
    m = _ENSEMBL_OTHER.match(token)
    if m:
        kind = {"T": "transcript", "P": "protein", "E": "exon"}[m.group(1).upper()]
        return f"an Ensembl {kind} ID; give the gene ID (ENSG...)"
    if _UNIPROT_ISOFORM.match(token):
        return f"an isoform accession; fetch returns canonical sequences, give {token.rsplit('-', 1)[0]}"
    if _HGNC.match(token):
        return "an HGNC ID; give the HGNC symbol instead"
    if id_type:
        found = detect_type(token)
        return f"not {a(id_type)}" + (f" (looks like {a(found)})" if found else "")
    return "not a recognised gene symbol or database ID"


def normalise(token, id_type):
    """The lookup key of ``token`` read as ``id_type``, or None when it cannot be that type."""
    if id_type == "mgi":
        m = _MGI.match(token)
        return f"MGI:{m.group(1)}" if m else None
    if id_type == "ensembl":
        m = _ENSEMBL_GENE.match(token)
        return (m.group(1) + m.group(2)).upper() if m else None
    if id_type == "entrez":
        return str(int(token)) if _ENTREZ.match(token) else None
    if id_type == "uniprot":
        t = token.upper()
        return t if _UNIPROT.match(t) else None
    if id_type == "symbol":
        ok = _SYMBOL.match(token) and any(c.isalpha() for c in token) and not _looks_like_other(token)
        return token if ok else None
    raise ValueError(id_type)


def implied_taxid(id_type, key):
    """The organism an ID itself names (MGI -> mouse, ENSMUSG -> mouse), else None."""
    if id_type == "mgi":
        return 10090
    if id_type == "ensembl":
        return ENSEMBL_PREFIX_TAXA.get(re.match(r"^(ENS[A-Z]*G)", key).group(1))
    return None


def read_id_list(ids=(), input_path=None, column=None):
    """Collect ``(token, where)`` pairs from command-line IDs and/or a file ('-' = stdin).

    File: one ID per line (or a tab/whitespace-separated table, first column by default; with
    ``column`` a 1-based number or a header name, the first non-comment line being the header).
    Lines starting with '#' and blank lines are skipped.
    """
    items = []
    for i, tok in enumerate(ids, 1):
        if tok == "-":
            items += _read_file("-", column)
        else:
            for part in tok.split(","):
                if part.strip():
                    items.append((part.strip(), f"argument {i}"))
    if input_path is not None:
        items += _read_file(input_path, column)
    return items


def _read_file(path, column):
    name = "<stdin>" if str(path) == "-" else str(path)
    items, col, header_pending = [], 0, False
    if column is not None:
        col_text = str(column)
        if col_text.isdigit():
            col = int(col_text) - 1
            if col < 0:
                raise GenephenoError("--column counts from 1")
        else:
            header_pending = True
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            if header_pending:
                if column not in fields:
                    raise InputError(f"{name}:{lineno}", f"header has no column {column!r}",
                                     f"columns: {', '.join(fields)}")
                col, header_pending = fields.index(column), False
                continue
            if col >= len(fields):
                raise InputError(f"{name}:{lineno}", f"line has {len(fields)} column(s), --column asks for {col + 1}")
            tok = fields[col].strip()
            if tok:
                items.append((tok, f"{name}:{lineno}"))
    return items


def build_queries(items, id_type=None, organism=None):
    """Turn ``(token, where)`` pairs into Queries: detect or check each type, normalise, drop
    duplicates (warning), and check organisms. Raises GenephenoError on unusable input."""
    if not items:
        raise GenephenoError("no gene IDs given (pass IDs as arguments, -i FILE, or '-' for stdin)")
    taxid_opt = parse_organism(organism)
    bad, queries, seen, dups = [], [], {}, []
    for tok, where in items:
        t = detect_type(tok) if id_type is None else id_type
        key = normalise(tok, t) if t else None
        if key is None:
            bad.append(f"{tok!r} ({where}): {why_invalid(tok, id_type)}")
            continue
        implied = implied_taxid(t, key)
        if implied and taxid_opt and implied != taxid_opt:
            bad.append(f"{tok!r} ({where}): a {organism_name(implied)} ID, but --organism is {organism}")
            continue
        if t == "symbol":
            taxid = taxid_opt or 9606
        elif t in ("entrez", "uniprot"):
            taxid = taxid_opt  # the ID names one gene/protein; only an explicit --organism filters
        else:
            taxid = implied or taxid_opt
        q = Query(tok, t, key, taxid, where)
        dedup = (t, key.upper() if t == "symbol" else key, taxid)
        if dedup in seen:
            dups.append((tok, where, seen[dedup]))
            continue
        seen[dedup] = q
        queries.append(q)
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        hint = "" if id_type else "; pass --id-type to force a type"
        raise GenephenoError(f"{len(bad)} unusable ID(s): " + "; ".join(bad[:5]) + more + hint)
    if dups:
        first = dups[0]
        logger.warning(f"{len(dups)} duplicate ID(s) ignored, e.g. {first[0]!r} at {first[1]} repeats "
                       f"{first[2].input_id!r} at {first[2].where}")
    counts = Counter(q.id_type for q in queries)
    if len(counts) > 1:
        logger.warning("mixed ID types: " + ", ".join(f"{n} {TYPE_LABELS[t]}(s)" for t, n in counts.most_common())
                       + "; each ID's type was detected separately (force one with --id-type)")
    return queries
