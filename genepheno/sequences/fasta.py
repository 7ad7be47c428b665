"""FASTA reading with validation that names file, line and record, and deterministic writing.

Accepted input: records start with ``>ID [description]``; sequence lines follow. Letters are
upper-cased, whitespace inside lines ignored, and one terminal ``*`` (stop) stripped. Anything
else that is not a letter of the alphabet, an empty record, or a repeated ID is an error.
"""

import hashlib
from dataclasses import dataclass

from genepheno.errors import InputError
from genepheno.io import atomic_write, open_text

# IUPAC one-letter codes. Protein includes U (Sec), O (Pyl) and the ambiguity codes B, Z, J, X.
PROTEIN_LETTERS = frozenset("ACDEFGHIKLMNPQRSTVWYUOBZJX")
DNA_LETTERS = frozenset("ACGTNRYSWKMBDHV")


@dataclass(frozen=True)
class FastaRecord:
    id: str
    description: str
    sequence: str
    line: int = 0  # line of the header in the source file

    @property
    def sha256(self):
        return sequence_sha256(self.sequence)


def sequence_sha256(sequence):
    return hashlib.sha256(sequence.encode("ascii")).hexdigest()


def read_fasta(path, molecule="protein", allow_duplicates=False):
    """Return the records of a FASTA file (plain or gzip; '-' for stdin) in file order."""
    letters = PROTEIN_LETTERS if molecule == "protein" else DNA_LETTERS
    records, seen = [], {}
    header, header_line, chunks = None, 0, []

    def finish():
        seq = "".join(chunks)
        if seq.endswith("*"):
            seq = seq[:-1]
        rid = header.split(None, 1)[0] if header.strip() else ""
        where = f"{path}:{header_line}"
        if not rid:
            raise InputError(where, "record header has no ID after '>'")
        if not seq:
            raise InputError(where, f"record {rid!r} has an empty sequence", "remove the record or add its sequence")
        bad = sorted(set(seq) - letters)
        if bad:
            raise InputError(where, f"record {rid!r} has letter(s) {''.join(bad)!r} that are not {molecule} "
                             "IUPAC codes", "fix the sequence or drop the record")
        if rid in seen and not allow_duplicates:
            raise InputError(where, f"duplicate record ID {rid!r} (first at line {seen[rid]})",
                             "IDs must be unique")
        seen.setdefault(rid, header_line)
        desc = header.split(None, 1)[1] if len(header.split(None, 1)) > 1 else ""
        records.append(FastaRecord(rid, desc.strip(), seq, header_line))

    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if line.startswith(">"):
                if header is not None:
                    finish()
                header, header_line, chunks = line[1:], lineno, []
            elif header is None:
                if line.strip() and not line.startswith(";"):
                    raise InputError(f"{path}:{lineno}", "text before the first '>' header", "is this a FASTA file?")
            else:
                chunks.append("".join(line.split()).upper())
        if header is not None:
            finish()
    if not records:
        raise InputError(path, "contains no FASTA records")
    return records


def write_fasta(path, records, width=60):
    """Write ``(id, description, sequence)`` tuples or FastaRecords atomically (.gz honoured)."""
    with atomic_write(path) as fh:
        for rec in records:
            rid, desc, seq = (rec.id, rec.description, rec.sequence) if isinstance(rec, FastaRecord) else rec
            fh.write(f">{rid} {desc}\n" if desc else f">{rid}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i:i + width] + "\n")
