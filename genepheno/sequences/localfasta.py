"""Offline source ``fasta:PATH``: genes matched in a local UniProt FASTA file (plain or gzip).

Headers ``>sp|P04637|P53_HUMAN Cellular tumor antigen p53 OS=Homo sapiens OX=9606 GN=TP53 PE=1 SV=4``
give the accession, organism (OX=), gene symbol (GN=) and sequence version (SV=); bare ``>P04637``
headers give the accession only. Isoform records (``P04637-2``) are skipped: canonical only.
Symbols match GN= (within OX= when present); UniProt accessions match directly; other IDs, or
symbols for headers without GN=, need an ID mapping table (``id_map``):

* UniProt's ``idmapping.dat`` layout, three columns ``accession  database  id`` with database
  ``GeneID``, ``MGI``, ``Ensembl`` or ``Gene_Name``; or
* two columns ``id  accession`` (a header line is skipped), e.g. ``entrez_id  uniprot_acc``.

When several matching records remain, reviewed (``sp|``) ones are preferred; more than one left
is reported as ambiguous.
"""

import re
from collections import defaultdict

from genepheno.errors import GenephenoError, InputError
from genepheno.io import open_text
from genepheno.log import logger
from genepheno.sequences.fasta import read_fasta
from genepheno.sequences.ids import normalise, organism_name
from genepheno.sequences.sources import AMBIGUOUS, NOT_FOUND, Hit, Miss, Source

_FIELD = re.compile(r"\b(OS|OX|GN|PE|SV)=(.*?)(?=\s+(?:OS|OX|GN|PE|SV)=|$)")
_ISOFORM = re.compile(r"-\d+$")
IDMAPPING_DB = {"GeneID": "entrez", "MGI": "mgi", "Ensembl": "ensembl", "Gene_Name": "symbol"}


class LocalRecord:
    def __init__(self, rec):
        parts = rec.id.split("|")
        self.reviewed = parts[0] == "sp" if len(parts) >= 3 else None
        self.accession = parts[1] if len(parts) >= 3 else rec.id
        fields = dict(_FIELD.findall(rec.description))
        self.symbol = fields.get("GN", "") if fields.get("GN", "-") != "-" else ""
        self.taxid = int(fields["OX"]) if fields.get("OX", "").isdigit() else None
        self.organism = fields.get("OS", "")
        self.version = fields.get("SV", "")
        self.sequence = rec.sequence


def read_id_map(path):
    """``{(id_type or None, normalised id): {accession, ...}}`` from a mapping table."""
    mapping = defaultdict(set)
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) >= 3 and _is_acc(fields[0]) and not _is_acc(fields[1]):  # idmapping.dat
                t = IDMAPPING_DB.get(fields[1].strip())
                key = t and (normalise(fields[2].strip(), t) if t != "symbol" else fields[2].strip())
                if key:
                    mapping[(t, key.upper())].add(fields[0].strip().upper())
            elif len(fields) >= 2:
                ident, acc = fields[0].strip(), fields[1].strip().upper()
                if not _is_acc(acc):
                    if lineno == 1:
                        continue  # header line
                    raise InputError(f"{path}:{lineno}", f"{fields[1]!r} is not a UniProt accession",
                                     "expected 'id<TAB>accession' lines")
                mapping[(None, ident.upper())].add(acc)
    if not mapping:
        raise InputError(path, "no ID mappings found", "expected 'accession<TAB>GeneID|MGI|Ensembl|Gene_Name<TAB>id' "
                         "(UniProt idmapping.dat) or 'id<TAB>accession' lines")
    return mapping


def _is_acc(text):
    return normalise(_ISOFORM.sub("", text.strip().upper()), "uniprot") is not None


class LocalFastaSource(Source):
    name = "fasta"

    def __init__(self, path, id_map=None):
        self.path = path
        records = [LocalRecord(r) for r in read_fasta(path, molecule="protein")]
        canonical = [r for r in records if not _ISOFORM.search(r.accession)]
        skipped = len(records) - len(canonical)
        if skipped:
            logger.info(f"{path}: skipped {skipped} isoform record(s); canonical sequences only")
        self.by_acc = {r.accession: r for r in canonical}
        self.by_symbol = defaultdict(list)
        for r in canonical:
            if r.symbol:
                self.by_symbol[r.symbol.upper()].append(r)
        self.id_map = read_id_map(id_map) if id_map else None
        self.types = ("uniprot",) + (("symbol",) if self.by_symbol or self.id_map else ()) + \
                     (("entrez", "mgi", "ensembl") if self.id_map else ())

    def check(self, queries):
        bad = self.unsupported(queries)
        if bad:
            kinds = sorted({q.label for q in bad})
            raise GenephenoError(f"fasta:{self.path} cannot match {', '.join(kinds)}s (e.g. {bad[0].input_id!r}): "
                                 "its headers carry no such field; give --id-map TABLE")

    def _resolve(self, queries, on_batch):
        hits, misses = [], []
        for q in queries:
            found = self._candidates(q)
            if len(found) > 1 and any(r.reviewed for r in found):
                found = [r for r in found if r.reviewed]
            if len(found) == 1:
                hits.append(self._hit(q, found[0]))
            elif not found:
                where = f" for {organism_name(q.taxid)}" if q.taxid and q.id_type == "symbol" else ""
                misses.append(Miss(q, NOT_FOUND, f"no record in {self.path} for {q.label} {q.key}{where}"))
            else:
                misses.append(Miss(q, AMBIGUOUS, f"{len(found)} records: "
                                   + ", ".join(f"{r.accession}" + (f" ({r.symbol})" if r.symbol else "")
                                               for r in found)))
        on_batch(len(queries))
        return hits, misses

    def _candidates(self, q):
        key = q.key.upper()
        if q.id_type == "uniprot":
            r = self.by_acc.get(key)
            return [r] if r else []
        found = []
        if q.id_type == "symbol":
            found = [r for r in self.by_symbol.get(key, []) if r.taxid is None or r.taxid == q.taxid]
        if not found and self.id_map is not None:
            accs = self.id_map.get((q.id_type, key), set()) | self.id_map.get((None, key), set())
            found = [self.by_acc[a] for a in sorted(accs) if a in self.by_acc]
            found = [r for r in found if r.taxid is None or not q.taxid or r.taxid == q.taxid]
        return found

    def _hit(self, q, r):
        symbol = r.symbol or (q.key if q.id_type == "symbol" else "")
        gene_id = r.accession if q.id_type == "uniprot" else (r.symbol or q.key) if q.id_type == "symbol" else q.key
        taxid = r.taxid or q.taxid
        return Hit(q, gene_id, symbol, self.name, r.accession, r.version, taxid,
                   r.organism or organism_name(taxid), r.sequence)
