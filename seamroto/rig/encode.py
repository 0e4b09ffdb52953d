"""How an anchored rig shape's targets are encoded relative to its guide landmarks (``ENCODINGS``).

Offsets from the guide curve in the face frame (``"face"``), in each knot's own frame along that
curve (``"knot"``, and schema 1's ``"span"``), or in the frame of the chord between the
landmarks around each knot (``"chord"``); each encoding comes with its exact inverse, used when
a rig is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from seamroto import revec
from seamroto.rig.frame import MIN_LANDMARK_SPREAD_PX, POINT_COLS

#: How an anchored shape's targets are encoded: offsets from the guide curve in the face frame
#: ("face") or in each knot's frame along it ("knot"), or offsets in the frame of the chord
#: between the landmarks around each knot ("chord").
ENCODINGS = ("face", "knot", "chord")
#: Read from older rigs, never chosen when learning: ``"span"`` is ``"knot"`` with the knots
#: past an open curve's end landmarks measured in their own (degenerate) spans, as schema 1 did.
LEGACY_ENCODINGS = ("span",)
#: A chord between two guide landmarks is given this fraction of the face scale along its mean
#: direction, so a chord that collapses (a seam seen edge-on) still has a direction.
CHORD_PRIOR = 0.05


def _end_knots(plan: revec.RevecPlan) -> List[Tuple[List[int], int]]:
    """The knots an open curve runs on past its first / last guide landmark.

    Returns:
        ``[(knots, that landmark's knot), ...]``; empty for closed curves and plain ends.
    """
    if plan.closed or not plan.gaps:
        return []
    out = []
    if plan.ends[0]:
        out.append((list(range(plan.gaps[0])), plan.gaps[0]))
    if plan.ends[1]:
        last = plan.k - plan.gaps[-1]  # the last landmark's knot
        out.append((list(range(last + 1, plan.k)), last))
    return out


def _local_axes(
    base: np.ndarray, closed: bool, ends: Optional[Tuple[revec.RevecPlan, float]] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Per-knot tangent direction and length scale of a baseline curve.

    Args:
        base: Baseline keys (F, K, 8).
        closed: Whether the curve closes.
        ends: ``(plan, face scale)``: the knots an open curve runs on past its end landmarks
            then take the tangent of that landmark's knot and the face scale as their unit,
            because the baseline stops at the landmark (its end knots there have no length of
            their own) and an artist's overshoot has nothing to do with the nearest span.

    Returns:
        ``t`` (F, K, 2) unit tangents and ``s`` (F, K, 1) the mean length of the knot's spans.
    """
    p = base[..., 0:2]
    t = base[..., 4:6] - base[..., 2:4]
    if closed:
        nxt, prv = np.roll(p, -1, axis=1), np.roll(p, 1, axis=1)
    else:
        nxt = np.concatenate([p[:, 1:], 2 * p[:, -1:] - p[:, -2:-1]], axis=1)
        prv = np.concatenate([2 * p[:, :1] - p[:, 1:2], p[:, :-1]], axis=1)
    chord = nxt - prv
    tn = np.linalg.norm(t, axis=-1, keepdims=True)
    t = np.where(tn > 1e-9, t, chord)
    t = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
    span = 0.5 * (np.linalg.norm(nxt - p, axis=-1) + np.linalg.norm(p - prv, axis=-1))
    if ends is not None:
        for knots, anchor in _end_knots(ends[0]):
            t[:, knots] = t[:, anchor, None]
            span[:, knots] = ends[1]
    return t, np.maximum(span, 1e-9)[..., None]


def _to_local(
    keys: np.ndarray,
    base: np.ndarray,
    closed: bool,
    ends: Optional[Tuple[revec.RevecPlan, float]] = None,
) -> np.ndarray:
    """Keys (F, K, 8) as offsets from a baseline in each knot's own frame (along, across) / span.

    A lid that rotates as the eye closes carries its handles with it, so in these coordinates
    the artist's habits (how far a handle reaches past the landmarks) are nearly constant.
    ``ends``: see ``_local_axes``.
    """
    t, span = _local_axes(base, closed, ends)
    n = np.stack([-t[..., 1], t[..., 0]], axis=-1)
    out = np.empty_like(keys)
    for c in range(0, POINT_COLS, 2):
        v = keys[..., c : c + 2] - (base[..., 0:2] if c == 0 else 0.0)
        out[..., c] = (v * t).sum(-1) / span[..., 0]
        out[..., c + 1] = (v * n).sum(-1) / span[..., 0]
    return out


def _from_local(
    local: np.ndarray,
    base: np.ndarray,
    closed: bool,
    ends: Optional[Tuple[revec.RevecPlan, float]] = None,
) -> np.ndarray:
    """Inverse of ``_to_local``."""
    t, span = _local_axes(base, closed, ends)
    n = np.stack([-t[..., 1], t[..., 0]], axis=-1)
    out = np.empty_like(local)
    for c in range(0, POINT_COLS, 2):
        v = span * (local[..., c : c + 1] * t + local[..., c + 1 : c + 2] * n)
        out[..., c : c + 2] = v + (base[..., 0:2] if c == 0 else 0.0)
    return out


@dataclass(frozen=True, eq=False)
class _ChordRef:
    """What the chord encoding needs besides the anchors: the plan and the mean guide.

    ``mean_guide`` (g, 2): the guide landmarks of the Procrustes mean configuration (face frame);
    ``face_scale``: that configuration's RMS radius (face-frame px).
    """

    plan: revec.RevecPlan
    mean_guide: np.ndarray
    face_scale: float

    @classmethod
    def of(cls, mean_landmarks: np.ndarray, cols: Sequence[int], plan: revec.RevecPlan) -> _ChordRef:
        """From a shape's mean landmarks, the guide's columns in them, and the anchored plan."""
        centred = mean_landmarks - mean_landmarks.mean(axis=0)
        scale = float(np.sqrt((centred**2).sum(axis=1).mean()))
        return cls(plan, np.asarray(mean_landmarks)[list(cols)], max(scale, MIN_LANDMARK_SPREAD_PX))


def _chord_frames(
    anchors: np.ndarray, ref: _ChordRef
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each knot's own frame from the anchors around it (see ``_to_chord``).

    A knot between two anchors is measured from the first along their chord, in chord lengths;
    an anchor's own knot from the anchor along the mean direction of its chords; a knot beyond
    the last (or before the first) anchor of an open curve from that anchor, along the outward
    chord, in units of the face scale (the end of a seam runs on past its landmark by an amount
    that has nothing to do with the length of the seam's last chord).

    Args:
        anchors: Guide landmarks per frame (F, g, 2), curve order, face frame.
        ref: The plan and mean guide.

    Returns:
        ``origin`` (F, K, 2), unit ``axis`` (F, K, 2) and ``scale`` (F, K, 1).
    """
    plan = ref.plan
    closed = plan.closed
    n_frames, g = anchors.shape[:2]
    mg = ref.mean_guide
    if closed:
        chord, mean_chord = np.roll(anchors, -1, axis=1) - anchors, np.roll(mg, -1, axis=0) - mg
    else:
        chord, mean_chord = anchors[:, 1:] - anchors[:, :-1], mg[1:] - mg[:-1]
    # A chord that collapses (a seam seen edge-on) keeps a direction: a little of the mean one.
    mean_dir = mean_chord / np.maximum(np.linalg.norm(mean_chord, axis=-1, keepdims=True), 1e-12)
    chord = chord + CHORD_PRIOR * ref.face_scale * mean_dir[None]
    length = np.linalg.norm(chord, axis=-1, keepdims=True)
    unit = chord / length
    n_chords = chord.shape[1]
    origin = np.empty((n_frames, plan.k, 2))
    axis = np.empty((n_frames, plan.k, 2))
    scale = np.empty((n_frames, plan.k, 1))

    def outward(a: int) -> Tuple[np.ndarray, np.ndarray]:
        """Origin and direction past an open curve's first (a < 0) or last landmark."""
        if a < 0:
            return anchors[:, 0], -unit[:, 0]
        return anchors[:, g - 1], unit[:, n_chords - 1]

    starts = np.concatenate([[0], np.cumsum(plan.gaps)]).astype(int)
    lead = 0 if closed else int(plan.ends[0])
    # Knots inside each gap (after the gap's first, fixed knot).
    for f, count in enumerate(plan.gaps):
        a = f - lead  # the landmark at the start of this gap; -1 before the first one
        knots = slice(starts[f] + 1, starts[f] + count)
        if 0 <= a < n_chords:
            origin[:, knots], axis[:, knots] = anchors[:, a, None], unit[:, a, None]
            scale[:, knots] = length[:, a, None]
        else:
            o, u = outward(a)
            origin[:, knots], axis[:, knots], scale[:, knots] = o[:, None], u[:, None], ref.face_scale
    # The fixed knots: on a landmark, or an open curve's ends past its first / last landmark.
    n_fixed = len(plan.gaps) + (0 if closed else 1)
    for f in range(n_fixed):
        i = int(starts[f]) if f < len(plan.gaps) else plan.k - 1
        a = f - lead
        if not 0 <= a < g:
            origin[:, i], axis[:, i] = outward(a)
            scale[:, i] = ref.face_scale
            continue
        near = [(a - 1) % n_chords, a] if closed else [c for c in (a - 1, a) if 0 <= c < n_chords]
        direction = unit[:, near].sum(axis=1)
        origin[:, i] = anchors[:, a]
        axis[:, i] = direction / np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-12)
        scale[:, i] = length[:, near].mean(axis=1)
    return origin, axis, scale


def _to_chord(keys: np.ndarray, anchors: np.ndarray, ref: _ChordRef) -> np.ndarray:
    """Keys (F, K, 8), face frame, as offsets in each knot's chord frame (``_chord_frames``).

    Between two landmarks on the curve an artist's curve keeps its shape relative to their
    chord, however the face stretches: a sideburn drawn twice as long keeps its U-shaped bottom.
    """
    origin, t, span = _chord_frames(anchors, ref)
    n = np.stack([-t[..., 1], t[..., 0]], axis=-1)
    out = np.empty_like(keys)
    for c in range(0, POINT_COLS, 2):
        v = keys[..., c : c + 2] - (origin if c == 0 else 0.0)
        out[..., c] = (v * t).sum(-1) / span[..., 0]
        out[..., c + 1] = (v * n).sum(-1) / span[..., 0]
    return out


def _from_chord(enc: np.ndarray, anchors: np.ndarray, ref: _ChordRef) -> np.ndarray:
    """Inverse of ``_to_chord``."""
    origin, t, span = _chord_frames(anchors, ref)
    n = np.stack([-t[..., 1], t[..., 0]], axis=-1)
    out = np.empty_like(enc)
    for c in range(0, POINT_COLS, 2):
        v = span * (enc[..., c : c + 1] * t + enc[..., c + 1 : c + 2] * n)
        out[..., c : c + 2] = v + (origin if c == 0 else 0.0)
    return out
