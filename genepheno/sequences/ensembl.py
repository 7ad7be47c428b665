"""Ensembl source: the translation (or, with ``molecule="dna"``, the CDS) of each gene's Ensembl
canonical transcript (for human genes that is the MANE Select transcript).

Requests: ``POST /lookup/id`` (up to 1000 Ensembl gene IDs) and ``POST /lookup/symbol/:species``
(up to 1000 symbols) with ``expand=1``, which lists the transcripts with ``is_canonical`` and their
``Translation``; Entrez, MGI and UniProt IDs first go through ``GET /xrefs/symbol/:species/:id``
(one request each); then ``POST /sequence/id`` (up to 50 transcripts) with ``type=protein|cds``.
"""

import json

from genepheno.sequences.http import HttpClient, SourceError
from genepheno.sequences.ids import ID_TYPES, organism_name
from genepheno.sequences.sources import AMBIGUOUS, NOT_FOUND, SOURCE_ERROR, Hit, Miss, Source, chunks, clean_sequence

DEFAULT_URL = "https://rest.ensembl.org"
SPECIES = {9606: "homo_sapiens", 10090: "mus_musculus", 10116: "rattus_norvegicus", 7955: "danio_rerio"}
TAXA = {v: k for k, v in SPECIES.items()}
XREF_DB = {"entrez": "EntrezGene", "mgi": "MGI", "uniprot": "Uniprot/SWISSPROT"}
LOOKUP_MAX, SEQUENCE_MAX = 1000, 50  # the service's POST limits


def species_of(taxid):
    return SPECIES.get(taxid or 9606, str(taxid))


def canonical_transcript(gene):
    """The transcript flagged ``is_canonical`` (or named by ``canonical_transcript``), or None."""
    ts = gene.get("Transcript") or []
    canon = [t for t in ts if str(t.get("is_canonical", "0")) in ("1", "True", "true")]
    if not canon and gene.get("canonical_transcript"):
        cid = gene["canonical_transcript"].split(".")[0]
        canon = [t for t in ts if t.get("id") == cid]
    return canon[0] if canon else None


def _json(resp):
    return json.loads(resp.body)


class EnsemblSource(Source):
    name = "ensembl"
    types = ID_TYPES

    def __init__(self, settings, base_url=None, molecule="protein", rate=15.0, sleep=None):
        kw = {} if sleep is None else {"sleep": sleep}
        self.client = HttpClient("ensembl", base_url or DEFAULT_URL, settings, rate,
                                 headers={"Accept": "application/json"}, **kw)
        self.clients = (self.client,)
        self.molecule = molecule

    def _resolve(self, queries, on_batch):
        genes, misses = {}, []  # query -> expanded gene object
        ens = [q for q in queries if q.id_type == "ensembl"]
        for batch in chunks(ens, LOOKUP_MAX):
            found, m = self._step(batch, self._lookup_ids, batch, {q: q.key for q in batch})
            genes.update(found)
            misses += m
        by_species = {}
        for q in queries:
            if q.id_type == "symbol":
                by_species.setdefault(species_of(q.taxid), []).append(q)
        for species, qs in by_species.items():
            for batch in chunks(qs, LOOKUP_MAX):
                found, m = self._step(batch, self._lookup_symbols, species, batch)
                genes.update(found)
                misses += m
        via_xref = {}
        for q in queries:
            if q.id_type in XREF_DB:
                found, m = self._step([q], self._xref, q)
                via_xref.update(found)
                misses += m
        for batch in chunks(list(via_xref), LOOKUP_MAX):
            found, m = self._step(batch, self._lookup_ids, batch, {q: via_xref[q] for q in batch})
            genes.update(found)
            misses += m
        hits = []
        for batch in chunks(list(genes), SEQUENCE_MAX):
            h, m = self.guarded(batch, self._sequences, {q: genes[q] for q in batch})
            hits += h
            misses += m
            on_batch(len(batch))
        return hits, misses

    def _step(self, batch, fn, *args):
        """Like ``guarded`` for a step that returns ``(found: dict, misses: list)``."""
        found, misses = self.guarded(batch, fn, *args)
        return (found or {}), misses

    def _post(self, path, body):
        resp, data = self.client.post(path, params={"expand": 1} if "lookup" in path else None,
                                      json_body=body, headers={"Content-Type": "application/json"}, parse=_json)
        if resp.status == 404 and path == "sequence/id":
            return []  # "No results found": none of the IDs had a sequence of that type
        if resp.status != 200:
            raise SourceError(f"ensembl: HTTP {resp.status} for {path}: {_error(resp)}")
        return data

    def _lookup_ids(self, batch, ids):
        data = self._post("lookup/id", {"ids": sorted(set(ids.values()))})
        found, misses = {}, []
        for q in batch:
            gene = data.get(ids[q])
            if not gene:
                misses.append(Miss(q, NOT_FOUND, f"Ensembl has no gene {ids[q]}"))
            elif gene.get("object_type", "Gene") != "Gene":
                misses.append(Miss(q, NOT_FOUND, f"{ids[q]} is a {gene.get('object_type')}, not a gene"))
            else:
                found[q] = gene
        return found, misses

    def _lookup_symbols(self, species, batch):
        data = self._post(f"lookup/symbol/{species}", {"symbols": [q.key for q in batch]})
        lower = {k.lower(): v for k, v in data.items() if v}
        found, misses = {}, []
        for q in batch:
            gene = data.get(q.key) or lower.get(q.key.lower())
            if gene:
                found[q] = gene
            else:
                misses.append(Miss(q, NOT_FOUND, f"Ensembl has no gene symbol {q.key} in {species}"))
        return found, misses

    def _xref(self, q):
        species = species_of(q.taxid)
        resp, data = self.client.get(f"xrefs/symbol/{species}/{q.key}",
                                     params={"external_db": XREF_DB[q.id_type]}, parse=_json)
        if resp.status == 400 and "species" not in _error(resp).lower():
            data = []  # "not found" answers
        elif resp.status != 200:
            raise SourceError(f"ensembl: HTTP {resp.status} for xrefs of {q.key}: {_error(resp)}")
        gene_ids = sorted({x["id"] for x in data if x.get("type") == "gene"})
        if len(gene_ids) == 1:
            return {q: gene_ids[0]}, []
        if not gene_ids:
            return {}, [Miss(q, NOT_FOUND, f"no Ensembl gene linked to {q.label} {q.key} in {species}")]
        return {}, [Miss(q, AMBIGUOUS, f"{len(gene_ids)} Ensembl genes: {', '.join(gene_ids)}")]

    def _sequences(self, genes):
        hits, misses, wanted = [], [], {}
        for q, gene in genes.items():
            t = canonical_transcript(gene)
            if t is None:
                misses.append(Miss(q, NOT_FOUND, f"{gene['id']} has no canonical transcript"))
            elif not t.get("Translation"):
                misses.append(Miss(q, NOT_FOUND, f"canonical transcript {t['id']} of {gene['id']} is "
                                   f"{t.get('biotype', 'non-coding')} (no translation)"))
            else:
                wanted[q] = (gene, t)
        if not wanted:
            return hits, misses
        kind = "protein" if self.molecule == "protein" else "cds"
        data = self._post("sequence/id", {"ids": sorted({t["id"] for _, t in wanted.values()}), "type": kind})
        by_query = {}
        for item in data:
            by_query.setdefault(item.get("query") or item.get("id"), []).append(item)
        for q, (gene, t) in wanted.items():
            items = by_query.get(t["id"], [])
            if kind == "protein":  # a transcript may carry alternative translations; keep the main one
                items = [i for i in items if i.get("id") == t["Translation"]["id"]] or items[:1]
            if not items:
                misses.append(Miss(q, NOT_FOUND, f"Ensembl returned no {kind} sequence for {t['id']}"))
                continue
            try:
                seq = clean_sequence(items[0]["seq"], self.molecule)
            except (KeyError, ValueError) as e:
                misses.append(Miss(q, SOURCE_ERROR, f"ensembl: bad sequence for {t['id']}: {e}"))
                continue
            hits.append(self._hit(q, gene, t, items[0], seq))
        return hits, misses

    def _hit(self, q, gene, t, item, seq):
        species = gene.get("species", "")
        taxid = TAXA.get(species, q.taxid)
        symbol = gene.get("display_name") or ""
        gene_id = {"ensembl": q.key, "symbol": symbol or q.key}.get(q.id_type, q.key)
        version = item.get("version", t.get("Translation", {}).get("version") if self.molecule == "protein"
                           else t.get("version"))
        note = f"transcript={t['id']}" + (f".{t['version']}" if t.get("version") else "")
        organism = organism_name(taxid) if taxid in SPECIES else species.replace("_", " ").capitalize()
        return Hit(q, gene_id, symbol, self.name, item.get("id", ""), "" if version is None else str(version),
                   taxid, organism, seq, note)


def _error(resp):
    try:
        return str(_json(resp).get("error", ""))[:200] or resp.text()[:200]
    except (ValueError, AttributeError):
        return resp.body[:200].decode("utf-8", "replace")
