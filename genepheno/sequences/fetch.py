"""``genepheno fetch``: gene IDs -> one canonical sequence per gene, from UniProt (default),
Ensembl, NCBI or a local UniProt FASTA, written as FASTA + manifest.tsv + missing.tsv.

Exit codes: 0 every ID resolved; 1 error (bad input/options; nothing written); 2 command-line usage
error; 3 some IDs not found or ambiguous (outputs hold the rest); 4 some IDs failed because a source
could not answer (network, server, offline cache miss; rerun later, the cache keeps what was fetched).
"""

import os
from dataclasses import dataclass
from pathlib import Path

from genepheno.errors import GenephenoError
from genepheno.io import atomic_write, write_tsv
from genepheno.log import logger, progress
from genepheno.sequences.fasta import sequence_sha256
from genepheno.sequences.http import HttpSettings, default_cache_dir
from genepheno.sequences.ids import TYPE_LABELS, build_queries, read_id_list
from genepheno.sequences.sources import AMBIGUOUS, NOT_FOUND, SOURCE_ERROR, Hit

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_MISSING, EXIT_SOURCE_ERROR = 0, 1, 2, 3, 4
EXIT_CODES = {
    EXIT_OK: "every ID resolved",
    EXIT_ERROR: "error a user can fix (bad input or options, unreadable file); nothing written",
    EXIT_USAGE: "command-line usage error (unknown option, missing value)",
    EXIT_MISSING: "some IDs not found or ambiguous; outputs hold the others, missing.tsv lists them",
    EXIT_SOURCE_ERROR: "some IDs failed because a source could not answer (network/server error, "
                       "malformed reply, --offline cache miss); rerun later",
}
MANIFEST_COLUMNS = ("input_id", "gene_id", "symbol", "source", "accession", "sequence_version", "length",
                    "sha256", "taxid", "organism", "note")
MISSING_COLUMNS = ("input_id", "id_type", "reason", "detail", "where")
SOURCES = ("uniprot", "ensembl", "ncbi")


@dataclass
class FetchResult:
    queries: list
    hits: list
    misses: list
    source: str
    requests: int = 0
    cache_hits: int = 0

    @property
    def exit_code(self):
        if any(m.reason == SOURCE_ERROR for m in self.misses):
            return EXIT_SOURCE_ERROR
        return EXIT_MISSING if self.misses else EXIT_OK

    def records(self):
        """One (gene_id, description, sequence) per distinct gene ID, in input order."""
        seen, out = {}, []
        for h in self.hits:
            if h.gene_id in seen:
                if seen[h.gene_id].sequence != h.sequence:
                    logger.warning(f"{h.query.input_id!r} and {seen[h.gene_id].query.input_id!r} both resolve "
                                   f"to {h.gene_id} with different sequences; keeping the first")
                continue
            seen[h.gene_id] = h
            out.append((h.gene_id, header_description(h), h.sequence))
        return out


def header_description(h: Hit):
    """``symbol=TP53 source=uniprot accession=P04637 version=4 taxid=9606 organism=Homo_sapiens``."""
    fields = [("symbol", h.symbol), ("source", h.source), ("accession", h.accession), ("version", h.version),
              ("taxid", h.taxid or ""), ("organism", (h.organism or "").replace(" ", "_"))]
    text = " ".join(f"{k}={v}" for k, v in fields if v not in ("", None))
    return text + (f" {h.note}" if h.note else "")


def make_source(source="uniprot", settings=None, molecule="protein", email=None, api_key=None, uniprot_url=None,
                ensembl_url=None, ncbi_url=None, id_map=None, **kw):
    """A Source object for ``source`` ('uniprot', 'ensembl', 'ncbi' or 'fasta:PATH')."""
    settings = settings or HttpSettings()
    if molecule not in ("protein", "dna"):
        raise GenephenoError(f"--molecule must be protein or dna, not {molecule!r}")
    if molecule == "dna" and source != "ensembl":
        raise GenephenoError("--molecule dna (coding sequence) is only available with --source ensembl")
    if id_map and not str(source).startswith("fasta:"):
        raise GenephenoError("--id-map only applies to --source fasta:PATH")
    if str(source).startswith("fasta:"):
        from genepheno.sequences.localfasta import LocalFastaSource
        path = str(source)[len("fasta:"):]
        if not path:
            raise GenephenoError("--source fasta: needs a path, e.g. fasta:uniprot_sprot_human.fasta.gz")
        return LocalFastaSource(path, id_map=id_map)
    if source == "uniprot":
        from genepheno.sequences.uniprot import UniProtSource
        return UniProtSource(settings, uniprot_url or os.environ.get("GENEPHENO_UNIPROT_URL"), **kw)
    if source == "ensembl":
        from genepheno.sequences.ensembl import EnsemblSource
        return EnsemblSource(settings, ensembl_url or os.environ.get("GENEPHENO_ENSEMBL_URL"), molecule=molecule,
                             **kw)
    if source == "ncbi":
        from genepheno.sequences.ncbi import NcbiSource
        if not settings.email:
            logger.warning("NCBI asks every E-utilities user for a contact e-mail: pass --email")
        return NcbiSource(settings, ncbi_url or os.environ.get("GENEPHENO_NCBI_URL"), email=settings.email,
                          api_key=api_key, **kw)
    raise GenephenoError(f"unknown source {source!r} (use uniprot, ensembl, ncbi or fasta:PATH)")


def check_supported(source, queries):
    if hasattr(source, "check"):
        return source.check(queries)
    bad = source.unsupported(queries)
    if bad:
        kinds = sorted({q.label for q in bad})
        raise GenephenoError(f"source {source.name} does not take {', '.join(kinds)}s (e.g. {bad[0].input_id!r}); "
                             f"it takes {', '.join(TYPE_LABELS[t] + 's' for t in source.types)}; "
                             "use --source uniprot or ensembl")


def fetch(queries, source):
    """Resolve every query with ``source``; hits and misses come back in input order."""
    check_supported(source, queries)
    bar = progress(total=len(queries), desc=f"fetch ({source.name})", unit="gene")
    try:
        hits, misses = source.resolve(queries, on_batch=bar.update)
    finally:
        bar.close()
    order = {q: i for i, q in enumerate(queries)}
    hits.sort(key=lambda h: order[h.query])
    misses.sort(key=lambda m: order[m.query])
    lost = set(queries) - {h.query for h in hits} - {m.query for m in misses}
    assert not lost, f"source {source.name} dropped {len(lost)} queries"
    return FetchResult(queries, hits, misses, source.name,
                       requests=source.requests_made(), cache_hits=source.cache_hits())


def side_paths(output, manifest=None, missing=None):
    """Default manifest/missing paths beside the FASTA: genes.fa(.gz) -> genes.manifest.tsv, ..."""
    if str(output) == "-":
        return manifest, missing
    out = Path(output)
    stem = out.name[:-3] if out.name.endswith(".gz") else out.name
    for ext in (".fasta", ".fa", ".faa", ".fna", ".fas"):
        if stem.endswith(ext):
            stem = stem[:-len(ext)]
            break
    return (manifest or out.with_name(f"{stem}.manifest.tsv"), missing or out.with_name(f"{stem}.missing.tsv"))


def write_outputs(result, output="-", manifest=None, missing=None, width=60):
    """FASTA (atomic; '-' = stdout), then manifest and missing TSVs (when they have a path)."""
    with atomic_write(output) as fh:
        for rid, desc, seq in result.records():
            fh.write(f">{rid} {desc}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i:i + width] + "\n")
    manifest, missing = side_paths(output, manifest, missing)
    if manifest:
        write_tsv(manifest, MANIFEST_COLUMNS, (
            (h.query.input_id, h.gene_id, h.symbol, h.source, h.accession, h.version, len(h.sequence),
             sequence_sha256(h.sequence), h.taxid or "", h.organism, h.note) for h in result.hits))
    if missing:
        write_tsv(missing, MISSING_COLUMNS, ((m.query.input_id, m.query.id_type, m.reason, m.detail, m.query.where)
                                             for m in result.misses))
    return manifest, missing


def report(result, manifest_path, missing_path):
    n, ok = len(result.queries), len(result.hits)
    logger.info(f"fetched {ok} of {n} gene(s) from {result.source} ({result.requests} request(s), "
                f"{result.cache_hits} answered from the cache)")
    if result.misses:
        counts = {r: sum(m.reason == r for m in result.misses) for r in (NOT_FOUND, AMBIGUOUS, SOURCE_ERROR)}
        summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
        logger.warning(f"{len(result.misses)} ID(s) unresolved ({summary})"
                       + (f": see {missing_path}" if missing_path else ""))
        if not missing_path:
            for m in result.misses[:20]:
                logger.warning(f"  {m.query.input_id}\t{m.reason}\t{m.detail}")
            if len(result.misses) > 20:
                logger.warning(f"  ... and {len(result.misses) - 20} more (write them with --missing FILE)")


def run_fetch(ids=(), input_path=None, column=None, id_type=None, organism=None, source="uniprot",
              molecule="protein", output="-", manifest=None, missing=None, id_map=None, email=None, api_key=None,
              uniprot_url=None, ensembl_url=None, ncbi_url=None, cache_dir=None, no_cache=False, offline=False,
              refresh=False, timeout=30.0, retries=4, backoff=1.0, **source_kw):
    """The whole command; returns the exit code (see EXIT_CODES)."""
    if offline and refresh:
        raise GenephenoError("--offline and --refresh contradict each other (one reads only the cache, "
                             "the other ignores it)")
    if offline and no_cache:
        raise GenephenoError("--offline needs the cache; drop --no-cache")
    queries = build_queries(read_id_list(ids, input_path, column), id_type=id_type, organism=organism)
    settings = HttpSettings(timeout=timeout, retries=retries, backoff=backoff, offline=offline, refresh=refresh,
                            email=email or os.environ.get("GENEPHENO_EMAIL"),
                            cache_dir=None if no_cache else Path(cache_dir or default_cache_dir()))
    src = make_source(source, settings, molecule=molecule, api_key=api_key, uniprot_url=uniprot_url,
                      ensembl_url=ensembl_url, ncbi_url=ncbi_url, id_map=id_map, **source_kw)
    result = fetch(queries, src)
    manifest_path, missing_path = write_outputs(result, output, manifest, missing)
    report(result, manifest_path, missing_path)
    return result.exit_code
