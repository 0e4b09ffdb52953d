"""Light, robust temporal smoothing of a rig's fitted shapes along runs of consecutive frames.

A Gaussian-weighted local quadratic with a biweight on outliers: it removes a tracker's jitter,
follows steady motion without lag and keeps stop-motion's jumps sharp.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Temporal smoothing: window half-width in sigmas, and the shortest run of frames smoothed.
SMOOTH_WINDOW_SIGMAS = 2.5
SMOOTH_MIN_RUN = 4
#: Robust smoothing: biweight cut-off in multiples of the expected jitter, and re-fits.
SMOOTH_TUKEY = 4.685
SMOOTH_ROBUST_ITERATIONS = 2


def _smooth(
    pred: np.ndarray, ok: np.ndarray, frames: Sequence[int], sigma: float, noise_px: float
) -> np.ndarray:
    """Temporal smoothing along each run of consecutive, fitted frames.

    A local quadratic fit with Gaussian weights (a weighted Savitzky-Golay filter): unlike a
    plain Gaussian it follows steady motion and acceleration without lag, so it only removes
    frame-to-frame jitter.
    """
    out = pred.copy()
    f = np.asarray(frames)
    start = 0
    n = len(f)
    while start < n:
        if not ok[start]:
            start += 1
            continue
        end = start + 1
        while end < n and ok[end] and f[end] == f[end - 1] + 1:
            end += 1
        if end - start >= SMOOTH_MIN_RUN:
            out[start:end] = _local_quadratic(pred[start:end], sigma, noise_px)
        start = end
    return out


def _local_quadratic(run: np.ndarray, sigma: float, noise_px: float) -> np.ndarray:
    """Each frame replaced by a robust Gaussian-weighted quadratic fit over its neighbours.

    Stop-motion moves in steps (a replacement mouth, a blink, a held pose that jumps), so after
    a first fit, neighbours far off the local curve (Tukey biweight at ``SMOOTH_TUKEY`` times
    ``noise_px``) are down-weighted and the fit is redone: jumps stay sharp, jitter goes.

    Args:
        run: Consecutive frames (n, ...); column 0/1 of the last axis are not special.
        sigma: Gaussian sigma in frames.
        noise_px: Expected jitter in px (the biweight scale).

    Returns:
        The smoothed run, same shape.
    """
    n = len(run)
    half = max(1, int(np.ceil(SMOOTH_WINDOW_SIGMAS * sigma)))
    flat = run.reshape(n, -1)
    out = np.empty_like(flat)
    cutoff = SMOOTH_TUKEY * max(noise_px, 1e-6)
    for t in range(n):
        lo, hi = max(0, t - half), min(n, t + half + 1)
        dt = np.arange(lo, hi, dtype=np.float64) - t
        w = np.exp(-0.5 * (dt / sigma) ** 2)
        basis = np.stack([np.ones_like(dt), dt, dt * dt], axis=1)[:, : min(3, hi - lo)]
        y = flat[lo:hi]
        robust = np.ones_like(w)
        for _ in range(SMOOTH_ROBUST_ITERATIONS + 1):
            wb = basis * (w * robust)[:, None]
            coef = np.linalg.lstsq(wb.T @ basis, wb.T @ y, rcond=None)[0]
            resid = np.sqrt(((basis @ coef - y) ** 2).mean(axis=1))
            robust = np.clip(1.0 - (resid / cutoff) ** 2, 0.0, None) ** 2
            robust[t - lo] = 1.0  # the frame itself always counts
        out[t] = coef[0]
    return out.reshape(run.shape)
