"""Protein embeddings: ESM-2 (fair-esm, GPU or CPU) or the weight-free ``kmer`` encoder, written
to a resumable, shardable SQLite store keyed by record ID and sequence SHA-256.

    enc = load_encoder("esm2_t33_650M_UR50D", device="auto", dtype="bf16")
    embed_fasta("proteins.fa", "emb.sqlite", enc, shard=(1, 4))
    X = open_store("emb.sqlite").get(["NCBIGene:7157"])
    X = embed_sequences(load_encoder("kmer"), ["MEEPQSDPSV..."])
"""

from .esm2 import DEFAULT_MODEL, ESM2_MODELS, esm_weights_available, hub_checkpoint_dir
from .pipeline import clean_sequence, embed_fasta, embed_sequences, load_encoder
from .store import EmbeddingStore, merge_stores, open_store, parse_shard, spec_mismatch

__all__ = ["DEFAULT_MODEL", "ESM2_MODELS", "EmbeddingStore", "clean_sequence", "embed_fasta", "embed_sequences",
           "esm_weights_available", "hub_checkpoint_dir", "load_encoder", "merge_stores", "open_store",
           "parse_shard", "spec_mismatch"]
