"""The naive baseline: every gene gets each term's frequency among the training genes (CAFA)."""

import numpy as np


def term_frequencies(dataset):
    """Fraction of training genes annotated with each term (labels are propagated, so a parent's
    frequency is never below a child's)."""
    train = dataset.split_indices("train")
    return dataset.labels[train].mean(axis=0)


def naive_scores(dataset, split="test"):
    """(genes of ``split`` x terms): the training frequencies, the same row for every gene."""
    freq = term_frequencies(dataset).astype(np.float32)
    return np.tile(freq, (len(dataset.split_indices(split)), 1))
