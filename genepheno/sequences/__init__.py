"""Sequences: FASTA reading/validation and fetching canonical sequences from public services."""
