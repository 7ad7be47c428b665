"""Baseline predictors the GenePheno model is compared with (``genepheno baseline NAME``).

Each module turns training data into a (genes x terms) score matrix in the same conventions as
:mod:`genepheno.metrics` (NaN = no prediction). ``blast``: max-BLAST and w-BLAST annotation transfer.
"""
