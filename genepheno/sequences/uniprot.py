"""UniProt source: the canonical sequence of the reviewed (Swiss-Prot) entry of each gene.

Many genes per request: IDs of one type and organism are OR-ed into one query of the UniProtKB
search endpoint (``/uniprotkb/search``, JSON), ``size`` results a page, following the cursor in the
``Link: <...>; rel="next"`` header and checking the count against ``x-total-results``. Each entry's
``sequence`` is its canonical isoform (UniProt's choice; other isoforms are not returned).
"""

import json
from collections import defaultdict

from genepheno.sequences.http import HttpClient, SourceError
from genepheno.sequences.ids import ID_TYPES, organism_name
from genepheno.sequences.sources import AMBIGUOUS, NOT_FOUND, SOURCE_ERROR, Hit, Miss, Source, clean_sequence

DEFAULT_URL = "https://rest.uniprot.org"
FIELDS = ("accession,id,gene_names,organism_name,organism_id,sequence,sequence_version,"
          "xref_geneid,xref_mgi,xref_ensembl")


def term(q):
    """The search clause of one query. MGI IDs go bare (``xref:mgi-98834``): UniProt rejects the
    inner colon of ``MGI:98834`` with HTTP 400."""
    if q.id_type == "symbol":
        return f'gene_exact:"{q.key}"'
    if q.id_type == "entrez":
        return f"xref:geneid-{q.key}"
    if q.id_type == "mgi":
        return f"xref:mgi-{q.key.split(':', 1)[1]}"
    if q.id_type == "ensembl":
        return f"xref:ensembl-{q.key}"
    return f"accession:{q.key}"


def _entries(resp):
    results = json.loads(resp.body)["results"]
    if not isinstance(results, list):
        raise ValueError("'results' is not a list")
    return [Entry(e) for e in results]


class Entry:
    """The parts of a UniProtKB JSON entry that matching needs."""

    def __init__(self, e):
        self.accession = e["primaryAccession"]
        self.secondary = set(e.get("secondaryAccessions", []))
        self.reviewed = "unreviewed" not in e.get("entryType", "").lower()
        genes = e.get("genes") or []
        self.names = [g["geneName"]["value"] for g in genes if g.get("geneName")]
        self.synonyms = [s["value"] for g in genes for s in g.get("synonyms", [])]
        org = e.get("organism") or {}
        self.taxid = org.get("taxonId")
        self.organism = org.get("scientificName", "")
        xrefs = e.get("uniProtKBCrossReferences") or []
        self.geneids = {x["id"] for x in xrefs if x.get("database") == "GeneID"}
        self.mgis = {x["id"].upper() for x in xrefs if x.get("database") == "MGI"}
        self.ensembl_genes = {p["value"].split(".")[0].upper() for x in xrefs if x.get("database") == "Ensembl"
                              for p in x.get("properties", []) if p.get("key") == "GeneId"}
        try:
            self.sequence, self.problem = clean_sequence(e["sequence"]["value"]), None
        except ValueError as err:  # one odd entry fails its gene only, not the batch
            self.sequence, self.problem = None, f"{self.accession}: {err}"
        self.version = str((e.get("entryAudit") or {}).get("sequenceVersion", ""))

    def label(self):
        return f"{self.accession} ({'/'.join(self.names) or 'no gene name'})"


class UniProtSource(Source):
    name = "uniprot"
    types = ID_TYPES

    def __init__(self, settings, base_url=None, rate=10.0, page_size=500, max_terms=150, max_query_chars=5000,
                 sleep=None):
        kw = {} if sleep is None else {"sleep": sleep}
        self.client = HttpClient("uniprot", base_url or DEFAULT_URL, settings, rate,
                                 headers={"Accept": "application/json"}, **kw)
        self.clients = (self.client,)
        self.page_size, self.max_terms, self.max_query_chars = page_size, max_terms, max_query_chars

    def batches(self, queries):
        """Groups of queries sharing type and organism, each small enough for one URL."""
        groups = defaultdict(list)
        for q in queries:
            groups[(q.id_type, q.taxid)].append(q)
        for (id_type, taxid), qs in groups.items():
            batch, size = [], 0
            for q in qs:
                n = len(term(q)) + 4
                if batch and (len(batch) >= self.max_terms or size + n > self.max_query_chars):
                    yield id_type, taxid, batch
                    batch, size = [], 0
                batch.append(q)
                size += n
            if batch:
                yield id_type, taxid, batch

    def _resolve(self, queries, on_batch):
        hits, misses = [], []
        for id_type, taxid, batch in self.batches(queries):
            h, m = self.guarded(batch, self._batch, id_type, taxid, batch)
            hits += h
            misses += m
            on_batch(len(batch))
        return hits, misses

    def _batch(self, id_type, taxid, batch):
        query = "(" + " OR ".join(term(q) for q in batch) + ")"
        if id_type != "uniprot":
            query += " AND reviewed:true"
        if taxid:
            query += f" AND organism_id:{taxid}"
        entries = self.search(query)
        found = {q: _match(q, entries) for q in batch}
        claimed = {e.accession for f in found.values() for e in f}
        if id_type == "uniprot" and any(e.accession not in claimed for e in entries):
            for q in batch:  # e.g. a secondary accession that the reply does not list
                if not found[q]:
                    found[q] = self._alone(q)
        hits, misses = [], []
        for q in batch:
            f = found[q]
            if len(f) == 1 and f[0].sequence is None:
                misses.append(Miss(q, SOURCE_ERROR, f[0].problem))
            elif len(f) == 1:
                hits.append(self._hit(q, f[0]))
            elif not f:
                where = f" in {organism_name(q.taxid)}" if q.taxid else ""
                kind = "UniProtKB entry" if id_type == "uniprot" else "reviewed UniProtKB entry"
                misses.append(Miss(q, NOT_FOUND, f"no {kind} for {q.label} {q.key}{where}"))
            else:
                misses.append(Miss(q, AMBIGUOUS, f"{len(f)} reviewed entries: " + ", ".join(e.label() for e in f)))
        return hits, misses

    def _alone(self, q):
        """Ask for one accession on its own: whatever single entry comes back is its answer."""
        found = self.search(f"accession:{q.key}")
        return found if len(found) == 1 else []

    def search(self, query):
        """All entries of a search, page after page."""
        params = {"query": query, "format": "json", "fields": FIELDS, "size": self.page_size}
        url, entries, total = "uniprotkb/search", [], None
        while url:
            resp, results = self.client.get(url, params=params, parse=_entries)
            if resp.status != 200:
                raise SourceError(f"uniprot: HTTP {resp.status}: {_messages(resp)}")
            entries += results
            if total is None and resp.headers.get("x-total-results", "").isdigit():
                total = int(resp.headers["x-total-results"])
            url, params = resp.link_next(), None  # the next link carries every parameter
        if total is not None and len(entries) != total:
            raise SourceError(f"uniprot: got {len(entries)} of {total} results (x-total-results)")
        return entries

    def _hit(self, q, e):
        if q.id_type == "symbol":
            symbol = next((n for n in e.names if n.upper() == q.key.upper()), None) or e.names[0]
            gene_id = symbol
        else:
            symbol = e.names[0] if e.names else ""
            gene_id = e.accession if q.id_type == "uniprot" else q.key
        return Hit(q, gene_id, symbol, self.name, e.accession, e.version, e.taxid, e.organism, e.sequence)


def _match(q, entries):
    key = q.key.upper()
    pool = [e for e in entries if not q.taxid or e.taxid == q.taxid]
    if q.id_type == "symbol":
        pool = [e for e in pool if e.reviewed]
        found = [e for e in pool if key in (n.upper() for n in e.names)]
        return found or [e for e in pool if key in (s.upper() for s in e.synonyms)]
    if q.id_type == "uniprot":
        exact = [e for e in pool if e.accession == key]
        return exact or [e for e in pool if key in e.secondary]
    pool = [e for e in pool if e.reviewed]
    if q.id_type == "entrez":
        return [e for e in pool if key in e.geneids]
    if q.id_type == "mgi":
        return [e for e in pool if key in e.mgis]
    return [e for e in pool if key in e.ensembl_genes]


def _messages(resp):
    try:
        return "; ".join(json.loads(resp.body).get("messages", [])) or resp.text()[:200]
    except (ValueError, AttributeError):
        return resp.body[:200].decode("utf-8", "replace")
