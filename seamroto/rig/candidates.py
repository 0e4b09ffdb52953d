"""Ways to parametrise a rig shape's targets, each fitted by cross-validation for comparison.

The artist's own points when every key already corresponds, or re-vectorisations (``revec``)
to the same ``K`` points every frame, anchored on the landmarks on the curve and measured from
each guide curve (``rigguide``) in each encoding (``rigencode``).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from seamroto import revec
from seamroto.errors import AnnotationError
from seamroto.rig.encode import ENCODINGS, _ChordRef, _from_chord, _from_local, _to_chord, _to_local
from seamroto.rig.frame import POINT_COLS, _Frames
from seamroto.rig.guide import _ArcModel, _baseline, _gap_chords, _gap_lengths
from seamroto.rig.ridge import _cv_errors
from seamroto.rig.samples import _choose_guide

#: The artist's own points are kept when at least this share of keys lines up with the median
#: key as numbered (rather than shifted or reversed).
NATIVE_AGREEMENT = 0.95
#: Keys looked at to find the order of the landmarks along a curve.
GUIDE_SAMPLE_KEYS = 32


@dataclass(frozen=True, eq=False)
class _Candidate:
    """One way to parametrise a shape's targets: native points, or re-vectorised ones.

    ``targets``/``base``: (S, 8K) face-frame keys and the guide curve's keys (zeros without a
    guide); the regression learns ``targets - base`` (or the local encoding of it).
    """

    plan: Optional[revec.RevecPlan]
    guide: Tuple[int, ...]
    targets: np.ndarray
    base: np.ndarray
    fit_errors: Tuple[float, ...] = ()
    anchors: Optional[np.ndarray] = None  # (S, g, 2) guide landmarks, face frame
    chord_ref: Optional[_ChordRef] = None
    arc: Optional[_ArcModel] = None  # the guide curve's gap lengths (None: Catmull-Rom)
    arc_inputs: Optional[_ArcInputs] = None

    def for_fold(self, train: np.ndarray) -> _Candidate:
        """This candidate with its gap-length model learned from the ``train`` rows only."""
        if self.arc is None or self.arc_inputs is None:
            return self
        inputs = self.arc_inputs
        arc = _ArcModel.learn(inputs.lengths[train], inputs.chords[train])
        assert self.plan is not None
        base = _baseline(inputs.guide, self.plan, inputs.frames, arc)
        return dataclasses.replace(self, arc=arc, base=base)

    @property
    def encodings(self) -> Tuple[str, ...]:
        """The encodings this candidate can be learned in."""
        if not self.guide:
            return ("face",)
        if self.chord_ref is None or self.arc is not None:
            return ("face", "knot")  # the chord encoding ignores the guide curve
        return ENCODINGS

    def encode(self, encoding: str, closed: bool) -> np.ndarray:
        """What the regression predicts, per row."""
        shape3 = (len(self.targets), -1, POINT_COLS)
        if encoding == "chord":
            assert self.anchors is not None and self.chord_ref is not None
            enc = _to_chord(self.targets.reshape(shape3), self.anchors, self.chord_ref)
            return enc.reshape(len(self.targets), -1)
        if encoding == "face":
            return self.targets - self.base
        b = self.base.reshape(shape3)
        return _to_local(self.targets.reshape(shape3), b, closed, self._ends).reshape(len(b), -1)

    def decode(
        self, encoding: str, closed: bool, rows: np.ndarray, sel: Union[np.ndarray, slice]
    ) -> np.ndarray:
        """Face-frame keys (rows of 8K) from predictions for the rows ``sel``."""
        if encoding == "chord":
            assert self.anchors is not None and self.chord_ref is not None
            anchors = self.anchors[sel]
            out = _from_chord(rows.reshape(len(anchors), -1, POINT_COLS), anchors, self.chord_ref)
            return out.reshape(len(anchors), -1)
        base = self.base[sel]
        if encoding == "face":
            return rows + base
        b = base.reshape(len(base), -1, POINT_COLS)
        return _from_local(rows.reshape(b.shape), b, closed, self._ends).reshape(len(b), -1)

    @property
    def _ends(self) -> Optional[Tuple[revec.RevecPlan, float]]:
        if self.plan is None or self.chord_ref is None:
            return None
        return (self.plan, self.chord_ref.face_scale)


@dataclass(frozen=True, eq=False)
class _ArcInputs:
    """What a gap-length model is learned from, kept so cross-validation can relearn it."""

    lengths: np.ndarray  # (S, G) artist's curve between guide landmarks
    chords: np.ndarray  # (S, G)
    guide: np.ndarray  # (S, g, 2) guide landmarks, _img space
    frames: _Frames


@dataclass(frozen=True, eq=False)
class _Fit:
    """A candidate with its chosen encoding and ridge, and its cross-validated predictions."""

    candidate: _Candidate
    encoding: str
    ridge: float
    cv_pred: np.ndarray  # (S, 8K) face frame; NaN rows never held out


def _revec_candidates(
    name: str,
    closed: bool,
    keys: Sequence[np.ndarray],
    face_keys: Sequence[np.ndarray],
    x: np.ndarray,
    idx: Sequence[int],
    dist: np.ndarray,
    frames: _Frames,
    mean: np.ndarray,
    k: Optional[int],
    native: bool,
) -> List[_Candidate]:
    """Targets re-vectorised, anchored on the landmarks that lie on the curve when there are any.

    With anchors there are two candidates, one per guide curve (``BASELINES``): Catmull-Rom
    through the landmarks, and the curve whose gaps have their predicted lengths. Empty when
    the artist's points already correspond (``native``) and no landmark lies on the curve: a
    plain re-vectorisation cannot beat consistent artist points.
    """
    plan = revec.plan_shape(face_keys, closed, k)
    # Re-vectorise in _img space (so fit errors are image pixels) with the face frame's axis
    # turned into each frame; first plainly (a sample of keys is enough), to see the
    # landmarks' order along the curve.
    some = np.unique(np.linspace(0, len(keys) - 1, GUIDE_SAMPLE_KEYS).astype(int))
    plain = revec.revectorise_many(
        [keys[j] for j in some], frames.take(some).plans_in_frames(plan), measure=False
    )
    oriented = [frames.take(some).key_to_face(rv.points, j) for j, rv in enumerate(plain)]
    face_lms = frames.points(x)
    guide = _choose_guide(name, closed, idx, dist[some], face_lms[some], oriented)
    if native and not guide:
        return []
    gcols = [list(idx).index(g) for g in guide]
    if guide:
        plan = revec.plan_anchored(plan, face_keys, list(face_lms[:, gcols]), k)
    fitted = revec.revectorise_many(
        keys, frames.plans_in_frames(plan), list(x[:, gcols]) if guide else None
    )
    targets = np.stack([frames.key_to_face(rv.points, j).reshape(-1) for j, rv in enumerate(fitted)])
    base = _baseline(x[:, gcols], plan, frames) if guide else np.zeros_like(targets)
    errors = tuple(rv.fit_error_px for rv in fitted)
    if not guide:
        return [_Candidate(plan, guide, targets, base, errors)]
    ref = _ChordRef.of(mean, gcols, plan)
    plain_cand = _Candidate(plan, guide, targets, base, errors, face_lms[:, gcols], ref)
    chords = np.linalg.norm(_gap_chords(x[:, gcols], closed), axis=-1)
    inputs = _ArcInputs(_gap_lengths([rv.points for rv in fitted], plan), chords, x[:, gcols], frames)
    arc = _ArcModel.learn(inputs.lengths, inputs.chords)
    arc_base = _baseline(inputs.guide, plan, frames, arc)
    return [plain_cand, dataclasses.replace(plain_cand, base=arc_base, arc=arc, arc_inputs=inputs)]


def _fit_candidate(
    cand: _Candidate,
    feats: np.ndarray,
    folds: Sequence[np.ndarray],
    grid: Sequence[float],
    closed: bool,
    noise_var: float,
) -> List[_Fit]:
    """One fit per residual encoding, its ridge strength chosen by cross-validation.

    Whatever the candidate learned from its keys (the gap lengths of its guide curve) is
    learned again without each fold's keys, so no fold is scored by a model that saw it.
    The encodings are compared afterwards on the curve itself (their squared errors mix
    positions with handles in different units).
    """
    out = []
    per_fold = [cand.for_fold(~test) for test in folds]
    for encoding in cand.encodings:
        fold_data = [
            (c.encode(encoding, closed), functools.partial(c.decode, encoding, closed))
            for c in per_fold
        ]
        errs, preds = _cv_errors(feats, fold_data, folds, grid, cand.targets, noise_var)
        i = int(np.argmin(errs))
        out.append(_Fit(cand, encoding, grid[i], preds[i]))
    return out


def _natively_consistent(
    name: str, face_keys: Sequence[np.ndarray], k: Optional[int], mode: str
) -> bool:
    """Whether the artist's own points already correspond from key to key (count and order).

    Every key has the same count, and in the face frame each key lies closest to the median key
    with its points as numbered, not with a different start point or direction (however much
    the shape itself changes: a replacement mouth).

    Raises:
        AnnotationError: They do not, and ``mode`` is ``"never"`` (no re-vectorising allowed).
    """
    counts = {len(fk) for fk in face_keys}
    ok = len(counts) == 1 and (k is None or k == len(face_keys[0]))
    why = f"point counts differ between keys ({sorted(counts)})"
    if ok:
        stack = np.stack([fk[:, :2] for fk in face_keys])  # (S, N, 2)
        ref = np.median(stack, axis=0)
        n = stack.shape[1]
        closed_like = [np.roll(ref, s, axis=0) for s in range(n)]
        alternatives = closed_like[1:] + [ref[::-1]] + [np.roll(ref[::-1], s, axis=0) for s in range(1, n)]
        own = ((stack - ref) ** 2).sum(axis=(1, 2))
        other = np.min([((stack - alt) ** 2).sum(axis=(1, 2)) for alt in alternatives], axis=0)
        agree = float(np.mean(own < other))
        ok = agree >= NATIVE_AGREEMENT
        why = (
            "the artists' points do not correspond between keys (start or direction differs on "
            f"{100 * (1 - agree):.0f}% of keys)"
        )
    if not ok and mode == "never":
        raise AnnotationError(f"shape '{name}': {why}; use revectorise='auto'")
    return ok
