"""Embedding runs: choose an encoder, clean and check sequences, fill a store resumably."""

import time
from collections import OrderedDict

import numpy as np

from genepheno.errors import GenephenoError, InputError
from genepheno.log import logger, progress
from genepheno.sequences.fasta import PROTEIN_LETTERS, read_fasta, sequence_sha256

from .store import StoreWriter, in_shard, parse_shard, shard_label


def load_encoder(model=None, weights=None, layer=None, device="auto", dtype="fp32"):
    """An encoder with ``spec``, ``dim``, ``iter_embed(seqs, toks_per_batch)`` and ``embed(seqs)``.

    ``model``: "kmer" (weight-free) or an ESM-2 name (default esm2_t33_650M_UR50D; with
    ``weights`` the file's stem). ``weights``: a local ESM-2 checkpoint in the released layout.
    ``layer``: representation layer (default last; negative counts from the end).
    """
    if model == "kmer":
        if weights is not None or layer is not None:
            raise GenephenoError("--weights and --layer do not apply to --model kmer")
        if dtype not in (None, "fp32"):
            logger.warning("--model kmer computes in fp32; --dtype %s ignored", dtype)
        from .kmer import KmerEncoder
        return KmerEncoder()
    from .esm2 import ESMEncoder, load_esm2
    net, alphabet, name = load_esm2(model, weights)
    return ESMEncoder(net, alphabet, name, layer=layer, device=device, dtype=dtype or "fp32")


def clean_sequence(seq):
    """Upper-case, drop whitespace and one terminal '*' (stop)."""
    seq = "".join(seq.split()).upper()
    return seq[:-1] if seq.endswith("*") else seq


def _check_letters(enc, items, where):
    """items: (label, sequence). One InputError naming the first offending records and the count."""
    bad = []
    for label, seq in items:
        letters = (set(seq) - PROTEIN_LETTERS) | enc.unsupported_letters(seq)
        if letters or not seq:
            bad.append((label, "".join(sorted(letters))))
    if bad:
        shown = ", ".join(f"{lab} ({let!r})" if let else f"{lab} (empty)" for lab, let in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise InputError(where, f"{len(bad)} sequence(s) with letters {enc.spec['model']} cannot encode: {shown}{more}",
                         "replace them (e.g. J by X) or drop those records")


def embed_sequences(enc, sequences, ids=None, toks_per_batch=None, show_progress=False):
    """Embed sequences in memory: float32 (n, dim) in input order; identical sequences run once."""
    seqs = [clean_sequence(s) for s in sequences]
    labels = list(ids) if ids is not None else [f"sequence {i + 1}" for i in range(len(seqs))]
    _check_letters(enc, zip(labels, seqs), "input")
    unique = list(dict.fromkeys(seqs))
    pos = {s: i for i, s in enumerate(unique)}
    vecs = np.empty((len(unique), enc.dim), dtype=np.float32)
    bar_cm = progress(total=sum(map(len, unique)), desc="embed", unit="res") if show_progress else _NoBar()
    with bar_cm as bar:
        for idx, v in enc.iter_embed(unique, toks_per_batch):
            vecs[idx] = v
            bar.update(sum(len(unique[i]) for i in idx))
    return vecs[[pos[s] for s in seqs]] if seqs else np.empty((0, enc.dim), dtype=np.float32)


def embed_fasta(fasta_path, store_path, enc, shard=None, toks_per_batch=None):
    """Embed the records of a FASTA file into a store; resumable, optionally one shard K/N.

    Sequences already in the store (by SHA-256) are skipped; each batch is committed as it
    completes. Returns counts and throughput.
    """
    t0 = time.time()
    shard = parse_shard(shard)
    records = read_fasta(fasta_path)
    _check_letters(enc, ((f"{r.id} (line {r.line})", r.sequence) for r in records), fasta_path)
    groups = OrderedDict()  # sha -> (sequence, [record ids])
    for r in records:
        groups.setdefault(sequence_sha256(r.sequence), (r.sequence, []))[1].append(r.id)
    selected = [(h, seq, ids) for h, (seq, ids) in groups.items() if in_shard(h, shard)]
    writer = StoreWriter(store_path, enc.spec, shard)
    try:
        done, linked = writer.done_hashes(), writer.record_hashes()
        writer.add(records=[(rid, h) for h, _, ids in selected if h in done for rid in ids if linked.get(rid) != h])
        todo = [(h, seq, ids) for h, seq, ids in selected if h not in done]
        total_res = sum(len(seq) for _, seq, _ in todo)
        label = f" (shard {shard_label(shard)})" if shard else ""
        logger.info("%s: %d records, %d distinct sequences%s; %d already in %s, %d to embed (%d residues) with %s",
                    fasta_path, len(records), len(selected), label, len(selected) - len(todo), store_path,
                    len(todo), total_res, _describe(enc))
        t1 = time.time()
        n_done = 0
        with (progress(total=total_res, desc="embed", unit="res") if todo else _NoBar()) as bar:
            for idx, vecs in enc.iter_embed([seq for _, seq, _ in todo], toks_per_batch):
                batch = [todo[i] for i in idx]
                writer.add(vectors=[(h, len(seq), v) for (h, seq, _), v in zip(batch, vecs)],
                           records=[(rid, h) for h, _, ids in batch for rid in ids])
                n_done += len(idx)
                bar.update(sum(len(seq) for _, seq, _ in batch))
                bar.set_postfix_str(f"{n_done}/{len(todo)} seq", refresh=False)
    finally:
        writer.close()
    seconds = time.time() - t1
    stats = dict(records=len(records), selected=len(selected), already=len(selected) - len(todo),
                 embedded=len(todo), residues=total_res, seconds=round(seconds, 3),
                 residues_per_s=round(total_res / seconds, 1) if seconds > 0 else None,
                 total_seconds=round(time.time() - t0, 3))
    logger.info("embedded %d sequences (%d residues) in %.1f s%s; %s is up to date for %s",
                len(todo), total_res, seconds,
                f", {stats['residues_per_s']:.0f} residues/s" if todo and stats["residues_per_s"] else "",
                store_path, f"shard {shard_label(shard)}" if shard else fasta_path)
    return stats


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass

    def set_postfix_str(self, *a, **k):
        pass


def _describe(enc):
    s = enc.spec
    if s["encoder"] == "kmer":
        return "the kmer encoder"
    return f"{s['model']} layer {s['layer']} on {enc.device} ({s['dtype']})"
