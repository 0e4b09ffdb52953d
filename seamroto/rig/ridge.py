"""Ridge regression of a rig shape's targets on its landmarks, and its cross-validation.

The strength is chosen by cross-validation across annotations (shots) and never falls below
what the expected tracker noise would imply (noise injection is ridge).
"""

from __future__ import annotations

from typing import Callable, List, Sequence, Tuple

import numpy as np

#: Ridge strengths tried by cross-validation, relative to the number of training samples.
RIDGE_GRID = tuple(float(v) for v in np.logspace(-6, 2, 17))
CV_FOLDS = 5


def _cv_folds(groups: np.ndarray) -> List[np.ndarray]:
    """Test masks: one per annotation when there are several, else contiguous fifths."""
    uniq = np.unique(groups)
    n = len(groups)
    if len(uniq) >= 2:
        return [groups == g for g in uniq]
    fold_count = min(CV_FOLDS, n)
    if fold_count < 2:
        return []
    # Contiguous blocks, so neighbouring (near-identical) frames do not test each other.
    ids = np.arange(n) * fold_count // n
    return [ids == i for i in range(fold_count)]


def _cv_errors(
    feats: np.ndarray,
    fold_data: Sequence[Tuple[np.ndarray, Callable[[np.ndarray, np.ndarray], np.ndarray]]],
    folds: Sequence[np.ndarray],
    grid: Sequence[float],
    truth: np.ndarray,
    noise_var: float,
) -> Tuple[np.ndarray, np.ndarray]:
    """Cross-validated squared error (in face-frame target units) for each ridge strength.

    Args:
        feats: Features (S, D).
        fold_data: Per fold, what the regression predicts (S, T) in its own encoding and
            ``decode(predicted rows, test mask) -> face-frame target rows``.
        folds: Boolean test masks.
        grid: Relative ridge strengths.
        truth: Face-frame targets (S, T).
        noise_var: Expected landmark noise variance (px^2 per coordinate), see ``_ridge_fit``.

    Returns:
        Summed squared errors over all folds (G,), and the held-out predictions, decoded
        (G, S, T), NaN on rows no fold holds out.
    """
    errs = np.zeros(len(grid))
    preds = np.full((len(grid),) + truth.shape, np.nan)
    for test, (resid, decode) in zip(folds, fold_data):
        train = ~test
        if train.sum() < 2:
            continue
        x, y = feats[train], resid[train]
        xm, ym = x.mean(axis=0), y.mean(axis=0)
        u, sv, vt = np.linalg.svd(x - xm, full_matrices=False)
        uty = u.T @ (y - ym)
        xt = (feats[test] - xm) @ vt.T
        scale = _feature_scale(x)
        for i, rel in enumerate(grid):
            lam = len(x) * (rel * scale + noise_var)
            pred = decode(xt @ ((sv / (sv * sv + lam))[:, None] * uty) + ym, test)
            preds[i, test] = pred
            errs[i] += ((pred - truth[test]) ** 2).sum()
    return errs, preds


def _feature_scale(x: np.ndarray) -> float:
    """Mean feature variance, so ridge strengths are relative and unit-free."""
    return float(max(np.var(x, axis=0).mean(), 1e-12))


def _ridge_fit(
    feats: np.ndarray, targets: np.ndarray, rel: float, noise_var: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regression on centred data.

    The penalty is ``n * (rel * mean feature variance + noise_var)``: the first part is the
    cross-validated strength, the second is what training on landmarks with that much noise
    would add (noise injection is ridge), so a rig learned from exact ground truth does not
    amplify a tracker's jitter.
    """
    f_mean = feats.mean(axis=0)
    t_mean = targets.mean(axis=0)
    x = feats - f_mean
    lam = len(x) * (rel * _feature_scale(x) + noise_var)
    u, sv, vt = np.linalg.svd(x, full_matrices=False)
    w = vt.T @ ((sv / (sv * sv + lam))[:, None] * (u.T @ (targets - t_mean)))
    return w, f_mean, t_mean
