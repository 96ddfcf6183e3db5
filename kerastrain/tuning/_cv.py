"""k-fold cross-validation for a trial (chapter 4.6, after cs231n).

Split the training data into ``k`` folds, train on ``k - 1`` and validate on
the remaining one, rotate through all ``k`` and average. For classification
the folds are stratified (each fold keeps the class proportions). The trial's
score is the mean of the per-fold scores; their standard deviation is
recorded next to it.
"""

from __future__ import annotations

import numpy as np

from kerastrain import _validation


def check_cv(cv):
    """``cv`` is 0 or 1 (hold-out validation) or an integer >= 2 (k folds)."""
    cv = _validation.check_integer("cv", cv)
    if cv == 0:
        return cv
    if cv < 2:
        raise _validation.argument_error(
            "cv", "be 0 (hold-out validation) or an integer >= 2 (number of folds)", cv)
    return cv


def is_classification_target(y):
    """Integer class labels (1-D, or a trailing axis of size 1)."""
    y = np.asarray(y)
    return np.issubdtype(y.dtype, np.integer) and (y.ndim == 1 or y.shape[-1] == 1)


def kfold_indices(y, cv, stratified=None, seed=0):
    """The ``(train_index, validation_index)`` pairs of ``cv`` folds.

    Args:
        y: targets (used for stratification and for the number of examples).
        cv: number of folds, >= 2.
        stratified: stratify by class; default: when ``y`` holds integer labels.
        seed: the shuffle seed, so every trial sees the same folds.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    cv = check_cv(cv)
    if cv == 0:
        raise _validation.argument_error("cv", "be >= 2 for k-fold indices", cv)
    y = np.asarray(y)
    if len(y) < cv:
        raise _validation.argument_error(
            "cv", f"be at most the number of training examples ({len(y)})", cv)
    if stratified is None:
        stratified = is_classification_target(y)
    labels = y.reshape(len(y), -1)[:, 0] if stratified else None
    if stratified:
        smallest = np.bincount(labels.astype(np.int64)).astype(float)
        smallest = int(smallest[smallest > 0].min())
        if smallest < cv:
            raise _validation.argument_error(
                "cv", f"be at most the size of the smallest class ({smallest}) for "
                "stratified folds", cv, "Use fewer folds or more data.")
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), labels))
    splitter = KFold(n_splits=cv, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y))))


def summarize_folds(values):
    """``(mean, std)`` of per-fold scores (population std, as numpy's default)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std())
