"""The per-character roto rig: every named shape's points, handles and feather from the landmarks.

Learned at train time from the artists' shapes (``learn_rig``), saved beside the landmark model
(``Rig.save``: ``rig.json`` + ``rig.npz``, schema ``SeamRotoRig.2``, no pickle; schema 1 rigs
still load) and applied to tracked landmarks on every frame (``Rig.apply``), so a shot's roto
follows the puppet with the few, stable points an artist would have drawn.

How one shape is rigged:

1. Its landmarks: those lying on or near it on the training frames (at least ``MIN_LANDMARKS``),
   so a shape only needs, and is only flagged for, landmarks of its own part of the face.
2. A face frame per frame: the similarity (scale, rotation, translation; no reflection) that
   best maps those landmarks onto their Procrustes mean. Head motion is removed; what remains is
   expression (a blink, a raised brow).
3. Targets, in that face frame, from one of two parametrisations, whichever cross-validates
   better on the curve itself: the artist's own points when every key already has the same
   points in the same order (an animated Nuke shape), or a re-vectorisation (``revec.py``) to
   the same ``K`` points every frame (real roto whose point count changes), with knots anchored
   on the landmarks that lie on the curve. With anchors the regression learns only the
   difference from a guide curve through those landmarks (``BASELINES``: Catmull-Rom, or a
   curve whose length between each pair of landmarks is predicted from the landmarks' chords,
   ``_ArcModel``: landmarks spaced evenly along the artist's contour say how far it bulges),
   in the face frame, in each knot's own frame along that curve, or in the frame of the chord
   between the landmarks around each knot (``ENCODINGS``). Where an open curve runs on past its
   end landmark (a seam's ends), that overshoot is measured along the curve's end direction in
   units of the face scale, so an artist's habit does not grow with a chord that happens to be
   long.
4. A ridge regression from the normalised landmarks to the flattened targets (positions,
   relative handles, relative feather): its strength chosen by cross-validation across
   annotations (shots) and never below what tracker noise of ``landmark_noise_px`` would imply,
   so a rig learned from exact ground truth does not amplify a tracker's jitter. Whatever the
   guide curve learns from the keys is learned again inside each fold, so no annotation is
   scored by a model that saw it, and all candidates (parametrisation, guide curve, encoding)
   are compared on their cross-validated curve distance.

Applying it reverses the steps; a frame on which a needed landmark is unknown is flagged for that
shape (the others are still fitted). Everything is ``_img`` space (origin top-left, y down).

This is the public entry point; each job lives in its own module:

* :mod:`seamroto.rig.model`: the data model (``ShapeRig``, ``Rig``, ``FittedShape``), applying a
  rig per frame (``Rig.apply``) and its files (``Rig.save``/``Rig.load``, schema migration).
* :mod:`seamroto.rig.learn`: learning a rig (``learn_rig``), from
  :mod:`seamroto.rig.samples` (training keys, validated, and each shape's landmarks and guide),
  :mod:`seamroto.rig.candidates` (native or re-vectorised parametrisations),
  :mod:`seamroto.rig.ridge` (ridge regression and its cross-validation).
* :mod:`seamroto.rig.frame`: face frames (similarity/affine, Procrustes mean).
* :mod:`seamroto.rig.guide`: guide curves (Catmull-Rom, gap-length model).
* :mod:`seamroto.rig.encode`: residual encodings (``ENCODINGS``).
* :mod:`seamroto.rig.smooth`: temporal smoothing of fitted shapes.
* :mod:`seamroto.rig.output`: fitted shapes as roto shapes, seam curves and seam bands.
"""

from __future__ import annotations

from seamroto.rig.encode import ENCODINGS
from seamroto.rig.learn import learn_rig
from seamroto.rig.model import (
    DEFAULT_LANDMARK_NOISE_PX,
    RIG_JSON,
    RIG_NPZ,
    RIG_SCHEMA,
    FittedShape,
    Rig,
    ShapeRig,
)
from seamroto.rig.output import fitted_to_roto_shapes, seam_band, seam_polylines, seam_shapes

__all__ = [
    "DEFAULT_LANDMARK_NOISE_PX",
    "ENCODINGS",
    "RIG_JSON",
    "RIG_NPZ",
    "RIG_SCHEMA",
    "FittedShape",
    "Rig",
    "ShapeRig",
    "fitted_to_roto_shapes",
    "learn_rig",
    "seam_band",
    "seam_polylines",
    "seam_shapes",
]
