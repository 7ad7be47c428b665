"""Train/validation/test splits, stratified for multi-label data: iterative stratification
(Sechidis et al. 2011) into 20 folds through the iterative-stratification package, then whole
folds per split, so fractions are honoured to 5% and every split sees every label's share."""

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

N_FOLDS = 20


def _fold_of(Y, seed):
    """(fold number of every row, number of folds); fewer folds than N_FOLDS for tiny inputs."""
    n = Y.shape[0]
    k = min(N_FOLDS, n)
    fold = np.zeros(n, dtype=int)
    if k < 2:
        return fold, 1
    splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, part) in enumerate(splitter.split(np.zeros(n), Y)):
        fold[part] = f
    return fold, k


def stratified_split(Y, fractions=(0.8, 0.1, 0.1), seed=0, fixed_test=None):
    """Assign each row of the 0/1 label matrix ``Y`` to train, val or test.

    ``fixed_test``: boolean mask of rows that must be test (e.g. a temporal hold-out); the other
    rows are then split into train and val in the ratio of the first two fractions.
    Returns an array of "train"/"val"/"test" strings."""
    train_f, val_f, test_f = (f / sum(fractions) for f in fractions)
    Y = np.asarray(Y, dtype=np.int8)
    out = np.full(Y.shape[0], "train", dtype=object)
    if fixed_test is not None:
        fixed_test = np.asarray(fixed_test, dtype=bool)
        out[fixed_test] = "test"
        rest = np.flatnonzero(~fixed_test)
        test_f, val_f = 0.0, val_f / (train_f + val_f)
    else:
        rest = np.arange(Y.shape[0])
    fold, k = _fold_of(Y[rest], seed)
    n_test, n_val = round(test_f * k), round(val_f * k)
    out[rest[fold < n_test]] = "test"
    out[rest[(fold >= n_test) & (fold < n_test + n_val)]] = "val"
    return out
