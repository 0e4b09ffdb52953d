"""Print library: rigged replacement pieces snapped onto each frame's own edges, stored without pickle."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence, Tuple

import cv2
import numpy as np
import pytest
from mouths import almond, ellipse

import seamroto.printlib as printlib
from seamroto.curves import rasterise
from seamroto.datamodel import ControlPoint
from seamroto.detection import GrayRegion
from seamroto.errors import CancelledError, ModelChecksumError, ModelError, ModelSchemaError
from seamroto.models import file_sha256
from seamroto.printlib import (
    LIBRARY_SNAP,
    PRINTS_FILE,
    Print,
    PrintLibrary,
    PrintSnapper,
    ShapePrints,
    face_radius_px,
    load_print_library,
    packed_from_rows,
    rows_from_packed,
    snap_fitted,
    working_scale,
    write_print_library,
)
from seamroto.propagate import pack_points
from seamroto.rig import FittedShape
from seamroto.snap import ProfileRanker, make_edge_model, start_cost

# Tolerances, in px unless named otherwise.
TOL = {
    "points": 0.5,  # mean control-point error of a snapped rigged piece (clean synthetic frame)
    "exact": 1e-9,
    "stored": 1e-3,  # templates are stored to 3 decimals
}
W, H = 240, 160
SKIN, LIP = 0.62, 0.32
RADIUS = 100.0  # face size the test library is made at
FEATHER = (1.0, 1.0)  # every test shape is feathered, so the feather is seen to move along


def _frame(lips: Sequence[ControlPoint], scale: float = 1.0) -> np.ndarray:
    """Grey uint8 frame (``scale`` x the key's resolution): skin, a lip shape, soft focus."""
    packed = pack_points(lips) * scale
    rows = np.hstack([packed[:, 0], packed[:, 1] - packed[:, 0], packed[:, 2] - packed[:, 0]])
    w, h = int(W * scale), int(H * scale)
    cov = rasterise(rows, True, w, h)
    img = np.full((h, w), SKIN, np.float32) * (1.0 - cov) + LIP * cov
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    return np.clip(255.0 * img, 0, 255).astype(np.uint8)


def _library(keys: Sequence[Tuple[ControlPoint, ...]]) -> PrintLibrary:
    prints = []
    for i, key in enumerate(keys):
        model = make_edge_model(_frame(key), pack_points(key), True, (1.0, 1.0))
        assert model is not None
        prints.append(Print("train.nk", 1001 + i, model))
    return PrintLibrary(("a", "b"), RADIUS, (ShapePrints("mouth", True, 4, tuple(prints)),), {"sources": ["train.nk"]})


def _error(packed: np.ndarray, truth: Sequence[ControlPoint], scale: float = 1.0) -> float:
    return float(np.linalg.norm(packed[:, 0] - pack_points(truth)[:, 0] * scale, axis=1).mean())


KEYS = (ellipse(120.0, 80.0, 40.0, 14.0, feather=FEATHER), ellipse(120.0, 80.0, 26.0, 22.0, feather=FEATHER))
TRUTH = ellipse(121.0, 79.0, 36.0, 17.0, feather=FEATHER)  # this frame's print: like neither key exactly
RIGGED = ellipse(120.0, 80.0, 34.0, 15.5, feather=FEATHER)  # where the rig put it from the landmarks


def test_a_rigged_piece_snaps_onto_the_frames_print() -> None:
    snapper = PrintSnapper(_library(KEYS))
    start = pack_points(RIGGED)
    assert _error(start, TRUTH) > 1.5
    out = snapper.snap("mouth", start, GrayRegion((0, 0), _frame(TRUTH)), RADIUS)
    assert out is not None and out.shape == start.shape
    assert _error(out, TRUTH) <= TOL["points"]
    moved = out[:, 0] - start[:, 0]
    for slot in (3, 4, 5):  # the feather keeps its place relative to its point
        assert np.abs(out[:, slot] - start[:, slot] - moved).max() <= TOL["exact"]


def test_a_plate_at_twice_the_resolution_is_seen_at_the_librarys_face_size() -> None:
    assert working_scale(2 * RADIUS, RADIUS) == 0.5
    snapper = PrintSnapper(_library(KEYS))
    start = pack_points(RIGGED) * 2.0
    out = snapper.snap("mouth", start, GrayRegion((0, 0), _frame(TRUTH, 2.0)), 2 * RADIUS)
    assert out is not None
    assert _error(out, TRUTH, 2.0) <= 2 * TOL["points"]


def test_ranking_every_print_at_once_matches_one_at_a_time() -> None:
    lib = _library(KEYS + (almond(118.0, 82.0, 34.0, 10.0, 12.0), ellipse(118.0, 82.0, 30.0, 12.0, feather=FEATHER)))
    models = [p.model for p in lib.shapes[0].prints]
    assert len(models[2].corners) == 2  # the cusps' own profiles are ranked too
    gray = _frame(TRUTH, 1.0).astype(np.float32)
    for start in (pack_points(RIGGED), pack_points(TRUTH) + 0.7):
        alone = [start_cost(m, gray, start, (1.0, 1.0), LIBRARY_SNAP) for m in models]
        together = ProfileRanker(models, LIBRARY_SNAP).costs(gray, start, (1.0, 1.0))
        np.testing.assert_allclose(together, alone, rtol=1e-9, atol=1e-12)


def test_collapsed_landmarks_or_a_shape_off_the_grey_region_are_not_snapped() -> None:
    snapper = PrintSnapper(_library(KEYS))
    gray = GrayRegion((0, 0), _frame(TRUTH))
    assert snapper.snap("mouth", pack_points(RIGGED), gray, RADIUS / 100.0) is None  # a face 100x too small
    assert snapper.snap("mouth", pack_points(RIGGED) + 1000.0, gray, RADIUS) is None  # nowhere near the face
    assert snapper.snap("mouth", pack_points(RIGGED), GrayRegion((0, 0), np.zeros((H, W), np.uint8)), RADIUS) is None


def test_the_grey_region_may_start_anywhere_on_the_plate() -> None:
    snapper = PrintSnapper(_library(KEYS))
    whole = _frame(TRUTH)
    region = GrayRegion((40, 30), whole[30:, 40:])  # what detection keeps: the face's region only
    a = snapper.snap("mouth", pack_points(RIGGED), GrayRegion((0, 0), whole), RADIUS)
    b = snapper.snap("mouth", pack_points(RIGGED), region, RADIUS)
    assert a is not None and b is not None
    assert np.abs(a - b).max() <= 1e-6


def _fitted(rows: np.ndarray, frames: int) -> FittedShape:
    points = np.repeat(rows[None], frames, axis=0)
    flagged = np.zeros(frames, bool)
    flagged[-1] = True
    points[-1] = np.nan
    return FittedShape("mouth", True, ("mouths",), tuple(range(1001, 1001 + frames)), points, flagged, 2.0)


def _landmarks(frames: int) -> np.ndarray:
    """Two face landmarks RADIUS from their centre."""
    return np.repeat(np.array([[[20.0, 80.0], [220.0, 80.0]]]), frames, axis=0)


def test_snap_fitted_replaces_the_piece_frame_by_frame_and_leaves_the_rest() -> None:
    rows = rows_from_packed(pack_points(RIGGED))
    fitted = {"mouth": _fitted(rows, 3), "nose": _fitted(rows, 3)}
    grays = [GrayRegion((0, 0), _frame(TRUTH)), None, GrayRegion((0, 0), _frame(TRUTH))]
    out, outcome = snap_fitted(fitted, _landmarks(3), ["a", "b"], grays, _library(KEYS))
    assert out["nose"] is fitted["nose"]
    mouth = out["mouth"]
    assert _error(packed_from_rows(mouth.points[0]), TRUTH) <= TOL["points"]
    np.testing.assert_array_equal(mouth.points[1], rows)  # no grey: as rigged
    assert np.isnan(mouth.points[2]).all() and mouth.flagged[2]  # flagged: left flagged
    assert outcome["mouth"] == printlib.SnapOutcome(snapped=1, kept=0, skipped=2, snapped_frames=(1001,))
    assert mouth.feather == 2.0 and mouth.layer == ("mouths",)


def test_a_snap_that_moves_too_far_keeps_the_rigged_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(printlib, "MAX_MOVE_SHARE", 0.0)
    rows = rows_from_packed(pack_points(RIGGED))
    out, outcome = snap_fitted(
        {"mouth": _fitted(rows, 2)}, _landmarks(2), ["a", "b"], [GrayRegion((0, 0), _frame(TRUTH))] * 2, _library(KEYS)
    )
    np.testing.assert_array_equal(out["mouth"].points[0], rows)
    assert outcome["mouth"].kept == 1


def test_without_the_face_landmarks_nothing_is_snapped() -> None:
    rows = rows_from_packed(pack_points(RIGGED))
    out, outcome = snap_fitted(
        {"mouth": _fitted(rows, 2)}, _landmarks(2), ["a", "other"], [GrayRegion((0, 0), _frame(TRUTH))] * 2,
        _library(KEYS),
    )
    np.testing.assert_array_equal(out["mouth"].points[0], rows)
    assert outcome["mouth"].snapped == 0


def test_snapping_stops_when_cancelled() -> None:
    class Cancelled:
        cancelled = True

        def update(self, done: int, total: int, message: str = "") -> None:
            pass

    rows = rows_from_packed(pack_points(RIGGED))
    with pytest.raises(CancelledError, match="snapping the replacement pieces cancelled"):
        snap_fitted({"mouth": _fitted(rows, 2)}, _landmarks(2), ["a", "b"], [None, None], _library(KEYS),
                    progress=Cancelled())


def test_rows_and_packed_points_convert_both_ways() -> None:
    rows = np.random.default_rng(0).normal(size=(5, 8))
    assert packed_from_rows(rows).shape == (5, 6, 2)
    np.testing.assert_allclose(rows_from_packed(packed_from_rows(rows)), rows, atol=TOL["exact"])
    points = ellipse(10.0, 20.0, 5.0, 3.0, feather=FEATHER)
    np.testing.assert_allclose(packed_from_rows(rows_from_packed(pack_points(points))), pack_points(points))


def test_face_radius_and_working_scale() -> None:
    assert face_radius_px(np.array([[0.0, 0.0], [2.0, 0.0]])) == pytest.approx(1.0)
    assert np.isnan(face_radius_px(np.array([[0.0, 0.0], [np.nan, 0.0]])))
    assert working_scale(105.0, 100.0) == 1.0  # a puppet a little closer: looked at as it is
    assert working_scale(50.0, 100.0) == 2.0


# -------------------------------------------------------------------- the file


def _model_folder(tmp_path: Path, library: PrintLibrary) -> Path:
    path = write_print_library(tmp_path, library)
    (tmp_path / "card.json").write_text(json.dumps({"files": {PRINTS_FILE: file_sha256(path)}}))
    return tmp_path


def test_the_library_round_trips_through_its_json_file(tmp_path: Path) -> None:
    lib = _library(KEYS)
    back = load_print_library(_model_folder(tmp_path, lib))
    assert back is not None
    assert back.shape_names == ("mouth",) and back.face_landmarks == ("a", "b")
    assert back.reference_radius_px == RADIUS
    for a, b in zip(lib.shapes[0].prints, back.shapes[0].prints):
        assert (a.source, a.frame) == (b.source, b.frame)
        np.testing.assert_allclose(b.model.template, a.model.template, atol=TOL["stored"])
        np.testing.assert_allclose(b.model.position, a.model.position, atol=1e-5)
        np.testing.assert_array_equal(b.model.corners, a.model.corners)
    text = (tmp_path / PRINTS_FILE).read_text()
    assert json.loads(text)["schema"] == "SeamRotoPrints.1"
    start = pack_points(RIGGED)
    gray = GrayRegion((0, 0), _frame(TRUTH))
    a_out = PrintSnapper(lib).snap("mouth", start, gray, RADIUS)
    b_out = PrintSnapper(back).snap("mouth", start, gray, RADIUS)
    assert a_out is not None and b_out is not None and np.abs(a_out - b_out).max() <= 0.01


def test_a_library_the_card_does_not_list_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_print_library(tmp_path, _library(KEYS))
    (tmp_path / "card.json").write_text(json.dumps({"files": {}}))
    with caplog.at_level(logging.WARNING):
        assert load_print_library(tmp_path) is None
    assert "not listed" in caplog.text
    assert load_print_library(tmp_path / "none") is None


def test_an_edited_library_is_refused(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path, _library(KEYS))
    path = folder / PRINTS_FILE
    path.write_text(path.read_text().replace('"frame": 1001', '"frame": 1002'))
    with pytest.raises(ModelChecksumError, match="does not match its card"):
        load_print_library(folder)


def test_another_schema_and_damaged_fields_are_named(tmp_path: Path) -> None:
    doc = _library(KEYS).to_dict()
    with pytest.raises(ModelSchemaError, match="SeamRotoPrints.1"):
        PrintLibrary.from_dict({**doc, "schema": "SeamRotoPrints.9"})
    broken = json.loads(json.dumps(doc))
    broken["shapes"][0]["prints"][0]["segment"] = [7, 9]
    with pytest.raises(ModelError, match="damaged print library"):
        PrintLibrary.from_dict(broken)


def test_a_library_carries_its_readout_and_older_ones_load_without(tmp_path: Path) -> None:
    from seamroto.piecepoints import PieceGroup, PieceReadout

    template = np.array([[-1.0, 0.0], [1.0, 0.0]])
    group = PieceGroup("mouth", ("m",), (2,), np.diag([0.5, 0.9]))
    readout = PieceReadout(("a", "b"), template, (group,), {"in_sample": True})
    lib = _library(KEYS).with_readout(readout)
    (tmp_path / "new").mkdir()
    back = load_print_library(_model_folder(tmp_path / "new", lib))
    assert back is not None and back.readout is not None
    assert [(g.shape, g.landmarks, g.indices) for g in back.readout.groups] == [("mouth", ("m",), (2,))]
    np.testing.assert_allclose(back.readout.groups[0].gain, np.diag([0.5, 0.9]))
    assert "readout" not in _library(KEYS).to_dict()  # nothing measured: nothing read back
    assert PrintLibrary.from_dict(_library(KEYS).to_dict()).readout is None
    broken = lib.to_dict()
    broken["readout"]["groups"][0]["gain"] = [[1.0]]
    with pytest.raises(ModelError, match="damaged print library"):
        PrintLibrary.from_dict(broken)


def test_the_frames_piece_is_the_cost_weighted_blend_of_the_best_prints_snaps(monkeypatch: pytest.MonkeyPatch) -> None:
    from seamroto.snap import SnapResult

    # two prints snap 0.4 px apart; the better match (cost 0.1 against 0.2) counts 2^3 = 8 times as much
    shifts, costs = iter([0.0, 0.4]), iter([0.1, 0.2])

    def fake_snap(model, work, local, scale, params, fitter):  # type: ignore[no-untyped-def]
        return SnapResult(local + [next(shifts), 0.0], next(costs))

    monkeypatch.setattr(printlib, "snap_shape", fake_snap)
    start = pack_points(RIGGED)
    out = PrintSnapper(_library(KEYS)).snap("mouth", start, GrayRegion((0, 0), _frame(TRUTH)), RADIUS)
    assert out is not None
    np.testing.assert_allclose(out - start, np.broadcast_to([0.4 / 9.0, 0.0], start.shape), atol=1e-9)
