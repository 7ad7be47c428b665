"""What every sequence source returns: a Hit per resolved query, a Miss (with its reason) per
unresolved one. A source never raises for a bad batch; it turns the batch into source_error Misses,
so one failure never loses the other genes."""

from dataclasses import dataclass

from genepheno.log import logger
from genepheno.sequences.fasta import DNA_LETTERS, PROTEIN_LETTERS
from genepheno.sequences.http import SourceError
from genepheno.sequences.ids import Query

NOT_FOUND, AMBIGUOUS, SOURCE_ERROR = "not_found", "ambiguous", "source_error"


@dataclass
class Hit:
    query: Query
    gene_id: str  # record ID in the FASTA: the input ID in its source's canonical form
    symbol: str
    source: str
    accession: str  # of the returned sequence: UniProt accession, ENSP/ENST, NP_
    version: str  # sequence version when known
    taxid: int | None
    organism: str
    sequence: str
    note: str = ""  # extra 'key=value' for the header: Ensembl transcript=, NCBI select=


@dataclass
class Miss:
    query: Query
    reason: str  # NOT_FOUND | AMBIGUOUS | SOURCE_ERROR
    detail: str


class Source:
    """Base class. Subclasses set ``name`` and ``types`` and implement ``_resolve(queries, on_batch)``,
    returning ``(hits, misses)`` for the queries it was given."""

    name = "?"
    types = ()
    clients = ()

    def unsupported(self, queries):
        return [q for q in queries if q.id_type not in self.types]

    def resolve(self, queries, on_batch=None):
        """``on_batch(n)`` is called after each batch of n queries (for a progress bar)."""
        return self._resolve(queries, on_batch or (lambda n: None))

    def guarded(self, queries, fn, *args):
        """Run ``fn(*args)`` -> (hits, misses); if the source fails, every query becomes a source_error."""
        try:
            return fn(*args)
        except SourceError as e:
            logger.warning(f"{e} ({len(queries)} ID(s) affected)")
            return [], [Miss(q, SOURCE_ERROR, str(e)) for q in queries]

    def requests_made(self):
        return sum(c.requests_made for c in self.clients)

    def cache_hits(self):
        return sum(c.cache_hits for c in self.clients)


def chunks(items, size):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def clean_sequence(seq, molecule="protein"):
    """Upper-case, whitespace and one terminal stop removed; SourceError if letters are invalid."""
    s = "".join(str(seq).split()).upper()
    if s.endswith("*"):
        s = s[:-1]
    letters = PROTEIN_LETTERS if molecule == "protein" else DNA_LETTERS
    bad = set(s) - letters
    if not s or bad:
        raise ValueError(f"sequence has invalid letter(s) {''.join(sorted(bad))!r}" if bad else "empty sequence")
    return s
