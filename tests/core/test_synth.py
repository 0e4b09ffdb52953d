"""Synthetic puppet shots: determinism, ground truth on the rendered pixels, files on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np
import pytest

from seamroto.datamodel import ControlPoint, RotoShape
from seamroto.errors import OutputExistsError, SynthError
from seamroto.synth import (
    CHARACTERS,
    iter_frames,
    read_gt,
    render_shot,
    rendered_mattes,
    synth_command,
    synth_truth,
    write_shot,
)
from seamroto.synth.bezier import circle
from seamroto.synth.render import Region, coverage

# Tolerances, in one place.
TOL = {
    "eye_iou": 0.97,  # soft IoU, shape rasterised here vs the renderer's matte (eyes, brows)
    "face_iou": 0.98,  # the same for face, nose and mouth (measured 0.99+)
    "edge_coverage": 0.15,  # |coverage - 0.5| at a landmark on a smooth edge
    "seam_darker": 0.08,  # relative: luminance on the seam vs 4 px either side
    "nk_px": 1e-3,  # landmarks/shapes read back from gt.nk
    "json_px": 1e-9,
    "exr_rel": 2e-3,  # half float
    "coverage_area": 4e-3,  # relative area error of the 8x fill (r = 17 px: 0.035 px of edge)
    "coverage_centroid_px": 0.02,
    "centroid_px": 0.03,  # drawn pupil centroid vs the pupil landmark
}
SMALL = {"width": 320, "height": 180}
SEAM_PROBE_PX = 4.0


def _bezier_polygon(points: Sequence[ControlPoint], closed: bool, steps: int = 64) -> np.ndarray:
    """Independent flattening of a roto key (absolute handles from the relative ones)."""
    out = []
    n = len(points)
    segs = n if closed else n - 1
    t = np.linspace(0.0, 1.0, steps, endpoint=False)[:, None]
    for i in range(segs):
        a, b = points[i], points[(i + 1) % n]
        p0, p1 = np.array([a.x, a.y]), np.array(a.right_abs)
        p2, p3 = np.array(b.left_abs), np.array([b.x, b.y])
        out.append(
            (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
        )
    return np.concatenate(out)


def _raster(shape: RotoShape, frame: int, width: int, height: int, ss: int = 16) -> np.ndarray:
    """Coverage of a closed shape at 16x, inset by the half sub-pixel cv2.fillPoly grows."""
    poly = _bezier_polygon(shape.keys[frame], shape.closed)
    edge = np.roll(poly, -1, axis=0) - poly
    normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    signed = np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - poly[:, 1] * np.roll(poly[:, 0], -1))
    normal *= np.sign(signed)
    vnormal = normal + np.roll(normal, 1, axis=0)
    vnormal /= np.linalg.norm(vnormal, axis=1, keepdims=True)
    poly = poly - vnormal * (0.5 / ss)
    big = np.zeros((height * ss, width * ss), np.uint8)
    pts = np.round((poly * ss - 0.5) * 256).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(big, [pts], 255, cv2.LINE_8, 8)
    return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA) / 255.0


def _soft_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.minimum(a, b).sum() / np.maximum(a, b).sum())


def _bilinear(img: np.ndarray, x: float, y: float) -> np.ndarray:
    """Sample at an _img position (pixel centres at +0.5)."""
    u, v = x - 0.5, y - 0.5
    x0, y0 = int(np.floor(u)), int(np.floor(v))
    fx, fy = u - x0, v - y0
    return (
        img[y0, x0] * (1 - fx) * (1 - fy)
        + img[y0, x0 + 1] * fx * (1 - fy)
        + img[y0 + 1, x0] * (1 - fx) * fy
        + img[y0 + 1, x0 + 1] * fx * fy
    )


def _shape(shot, name: str) -> RotoShape:  # type: ignore[no-untyped-def]
    return next(s for s in shot.shapes if s.name == name)


@pytest.fixture(scope="module")
def small_shot():  # type: ignore[no-untyped-def]
    return render_shot("mara", 7, frames=6, **SMALL)


@pytest.fixture(scope="module")
def still_shot():  # type: ignore[no-untyped-def]
    """A locked-off head at a size where an eye is about 40 px wide."""
    return render_shot("pip", 3, frames=3, width=640, height=360, motion=0.0)


# ---------------------------------------------------------------- raster primitive


def test_coverage_is_unbiased_for_a_circle() -> None:
    path = circle((40.3, 31.7), 17.0)
    cov = coverage([path.flatten(0.25)], Region(0, 0, 80, 64), 8)
    ys, xs = np.mgrid[0:64, 0:80] + 0.5
    assert abs(cov.sum() / (np.pi * 17.0**2) - 1.0) < TOL["coverage_area"]
    cx, cy = (cov * xs).sum() / cov.sum(), (cov * ys).sum() / cov.sum()
    assert abs(cx - 40.3) < TOL["coverage_centroid_px"]
    assert abs(cy - 31.7) < TOL["coverage_centroid_px"]


# ---------------------------------------------------------------- determinism


def test_same_seed_same_pixels_and_truth(small_shot) -> None:  # type: ignore[no-untyped-def]
    again = render_shot("mara", 7, frames=6, **SMALL)
    for a, b in zip(small_shot.images, again.images):
        assert a.dtype == np.float32 and a.shape == (180, 320, 3)
        assert np.array_equal(a, b)
    assert small_shot.tracks == again.tracks
    for s1, s2 in zip(small_shot.shapes, again.shapes):
        for f in s1.keys:
            assert np.array_equal(s1.points_array(f), s2.points_array(f))
    assert small_shot.face_boxes == again.face_boxes


def test_other_seed_differs(small_shot) -> None:  # type: ignore[no-untyped-def]
    other = render_shot("mara", 8, frames=6, **SMALL)
    assert not np.array_equal(small_shot.images[0], other.images[0])
    assert small_shot.tracks[0].samples != other.tracks[0].samples


def test_iter_frames_and_on_demand_render_match(small_shot) -> None:  # type: ignore[no-untyped-def]
    streamed = dict(iter_frames("mara", 7, frames=6, **SMALL))
    assert sorted(streamed) == list(small_shot.shot.frames)
    truth = synth_truth("mara", 7, frames=6, **SMALL)
    assert truth.images == ()
    assert truth.tracks == small_shot.tracks
    for f in (1001, 1004):
        assert np.array_equal(streamed[f], small_shot.image(f))
        assert np.array_equal(truth.image(f), small_shot.image(f))


# ---------------------------------------------------------------- the character model


@pytest.mark.parametrize("name", sorted(CHARACTERS))
def test_every_character_renders_with_consistent_truth(name: str) -> None:
    shot = render_shot(name, 1, frames=2, width=240, height=136)
    ch = shot.character
    assert len(CHARACTERS) >= 4 and ch.name == name
    assert 30 <= len(ch.landmarks) <= 40 and len(set(ch.landmarks)) == len(ch.landmarks)
    assert [t.name for t in shot.tracks] == list(ch.landmarks)
    for seam in ch.seams:
        assert set(seam.landmarks) <= set(ch.landmarks)
    assert {s.name for s in ch.shapes} == {s.name for s in shot.shapes}
    specs = {s.name: s for s in ch.shapes}
    for shape in shot.shapes:
        assert specs[shape.name].closed == shape.closed
        assert specs[shape.name].layer == shape.layer
        assert shape.point_count == specs[shape.name].point_count
        assert {len(k) for k in shape.keys.values()} == {shape.point_count}
        assert shape.key_frames == [1001, 1002]
    assert np.isfinite(shot.images[0]).all() and shot.images[0].min() >= 0.0
    # every landmark and shape key is inside the frame on an ordinary shot
    for t in shot.tracks:
        assert t.frames == [1001, 1002]


def test_seam_landmarks_are_the_seam_curve_and_end_on_the_outline(small_shot) -> None:  # type: ignore[no-untyped-def]
    seam, face = _shape(small_shot, "seam"), _shape(small_shot, "face")
    names = small_shot.character.seams[0].landmarks
    by = {t.name: t for t in small_shot.tracks}
    for f in small_shot.shot.frames:
        pts = seam.keys[f]
        assert len(pts) == len(names)
        for p, n in zip(pts, names):
            assert by[n].xy(f) == pytest.approx((p.x, p.y), abs=TOL["json_px"])
        outline = {(round(p.x, 9), round(p.y, 9)) for p in face.keys[f]}
        assert (round(pts[0].x, 9), round(pts[0].y, 9)) in outline
        assert (round(pts[-1].x, 9), round(pts[-1].y, 9)) in outline
    assert not seam.closed and _shape(small_shot, "seam_band").closed
    assert _shape(small_shot, "seam_band").feather > 0


def test_mouth_changes_every_frame() -> None:
    shot = render_shot("otto", 2, frames=8, width=160, height=90, motion=0.0)
    mouth = _shape(shot, "mouth")
    frames = list(shot.shot.frames)
    for a, b in zip(frames, frames[1:]):
        assert shot.mouths[a] != shot.mouths[b]
        assert np.abs(mouth.points_array(a) - mouth.points_array(b)).max() > 0.3


# ---------------------------------------------------------------- truth on the pixels


def test_shapes_match_the_rendered_mattes(still_shot) -> None:  # type: ignore[no-untyped-def]
    f = 1002
    _img, mattes = rendered_mattes(still_shot, f)
    w, h = still_shot.shot.width, still_shot.shot.height
    for name in ("eye_L", "eye_R", "lid_L", "brow_L", "brow_R"):
        rast = _raster(_shape(still_shot, name), f, w, h)
        assert _soft_iou(rast, mattes[name]) > TOL["eye_iou"], name
    for name in ("face", "mouth", "nose"):
        rast = _raster(_shape(still_shot, name), f, w, h)
        assert _soft_iou(rast, mattes[name]) > TOL["face_iou"], name


def test_landmarks_on_smooth_edges_sit_on_the_matte_edge(still_shot) -> None:  # type: ignore[no-untyped-def]
    f = 1001
    _img, mattes = rendered_mattes(still_shot, f)
    by = {t.name: t for t in still_shot.tracks}
    for landmark, matte in (("lid_L_bottom", "eye_L"), ("lid_R_bottom", "eye_R"),
                            ("chin", "face"), ("face_L", "face"), ("face_top", "face"),
                            ("nose_tip", "nose")):
        x, y = by[landmark].xy(f)  # type: ignore[misc]
        cov = float(_bilinear(mattes[matte], x, y))
        assert abs(cov - 0.5) < TOL["edge_coverage"], (landmark, cov)


def test_pupil_landmark_is_the_centre_of_the_drawn_pupil(still_shot) -> None:  # type: ignore[no-untyped-def]
    by = {t.name: t for t in still_shot.tracks}
    checked = 0
    for f in still_shot.shot.frames:
        _img, mattes = rendered_mattes(still_shot, f)
        for side in ("L", "R"):
            m = mattes[f"pupil_{side}"]
            r_px = CHARACTERS["pip"].pupil_radius * 360 * 0.5  # lower bound of the face scale
            if m.sum() < np.pi * r_px**2 * 0.9 or f in still_shot.hidden.get(f"pupil_{side}", ()):
                continue  # partly under the lid
            ys, xs = np.mgrid[0 : m.shape[0], 0 : m.shape[1]] + 0.5
            cx, cy = (m * xs).sum() / m.sum(), (m * ys).sum() / m.sum()
            x, y = by[f"pupil_{side}"].xy(f)  # type: ignore[misc]
            assert abs(cx - x) < TOL["centroid_px"] and abs(cy - y) < TOL["centroid_px"]
            checked += 1
    assert checked >= 2


def test_eye_pixels_are_eye_and_pupil_is_dark(still_shot) -> None:  # type: ignore[no-untyped-def]
    f = 1001
    img, mattes = rendered_mattes(still_shot, f)
    lum = img @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    eye = mattes["eye_L"]
    inside = eye > 0.99
    ring = (cv2.dilate((eye > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & (eye == 0)
    skin = img[ring].mean(axis=0)
    # every pixel well inside the eye differs from the skin around it (sclera, iris, lid)
    assert (np.abs(img[inside] - skin).max(axis=1) > 0.05).mean() > 0.97
    by = {t.name: t for t in still_shot.tracks}
    if f not in still_shot.hidden.get("pupil_L", frozenset()):
        x, y = by["pupil_L"].xy(f)  # type: ignore[misc]
        assert eye[int(y), int(x)] == 1.0
        assert _bilinear(lum, x, y) < 0.5 * lum[ring].mean()


def test_seam_is_a_dark_line_along_the_seam_curve() -> None:
    shot = render_shot("lionel", 5, frames=2, width=640, height=360)
    seam = _shape(shot, "seam")
    f = 1002
    img = shot.image(f)
    lum = img @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    poly = _bezier_polygon(seam.keys[f], closed=False, steps=32)
    # skip the ends, where the line meets the outline and the background
    inner = poly[len(poly) // 10 : -len(poly) // 10]
    d = np.gradient(inner, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    on = np.array([_bilinear(lum, *p) for p in inner])
    above = np.array([_bilinear(lum, *(p - SEAM_PROBE_PX * n)) for p, n in zip(inner, normal)])
    below = np.array([_bilinear(lum, *(p + SEAM_PROBE_PX * n)) for p, n in zip(inner, normal)])
    assert on.mean() < (1 - TOL["seam_darker"]) * min(above.mean(), below.mean())
    assert (on < np.minimum(above, below)).mean() > 0.9
    # and the two print halves differ slightly in colour
    spec = CHARACTERS["lionel"]
    assert spec.upper_gain != spec.lower_gain


# ---------------------------------------------------------------- face leaving the frame


def test_face_that_exits_gives_frames_without_samples() -> None:
    shot = render_shot("pip", 4, frames=10, width=160, height=90, exit_frame=1004)
    gone = [f for f in shot.shot.frames if f not in shot.face_boxes]
    assert gone and min(gone) > 1004 and gone == list(range(min(gone), 1011))
    for f in gone:
        assert all(f not in t.samples for t in shot.tracks)
        assert all(f not in s.keys for s in shot.shapes)
    for f in range(1001, 1004):
        assert all(f in t.samples for t in shot.tracks)
        x, y, w, h = shot.face_boxes[f]
        assert 0 <= x and 0 <= y and x + w <= 160 and y + h <= 90 and w > 10 and h > 10
    # shapes keep one point count through the frames they are keyed on
    for s in shot.shapes:
        assert {len(k) for k in s.keys.values()} == {s.point_count}
    # with the head gone the plate is just the set
    assert np.array_equal(shot.images[-1].shape, (90, 160, 3))


def test_bad_requests_raise_synth_errors() -> None:
    with pytest.raises(SynthError, match="mara"):
        render_shot("nobody", 1, frames=1, width=64, height=64)
    with pytest.raises(SynthError, match="exit_frame"):
        synth_truth("mara", 1, frames=4, width=64, height=64, exit_frame=999)
    with pytest.raises(SynthError, match="frames"):
        synth_truth("mara", 1, frames=0, width=64, height=64)


# ---------------------------------------------------------------- files on disk


def _abs(points: Sequence[ControlPoint]) -> np.ndarray:
    return np.array([[*p.left_abs, p.x, p.y, *p.right_abs] for p in points])


@pytest.fixture(scope="module")
def written(tmp_path_factory, small_shot) -> Tuple[Path, object]:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("synth") / "mara_s7"
    assert write_shot(small_shot, out) == out
    return out, small_shot


def test_write_shot_layout_and_plates(written) -> None:  # type: ignore[no-untyped-def]
    from seamroto.plates import read_frame

    out, shot = written
    assert sorted(p.name for p in out.iterdir()) == ["gt.json", "gt.nk", "plates"]
    names = sorted(p.name for p in (out / "plates").iterdir())
    assert names[0] == "mara_s7.1001.exr" and len(names) == 12
    exr = read_frame(str(out / "plates" / "mara_s7.1003.exr"))
    ref = shot.image(1003)
    assert exr.shape == ref.shape
    assert np.allclose(exr, ref, rtol=TOL["exr_rel"], atol=1e-4)
    png = cv2.imread(str(out / "plates" / "mara_s7.1003.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint8 and png.shape == (180, 320, 3)
    # sRGB encoded: mid grey linear 0.18 would be ~118, not ~46
    lin = float(np.median(ref[..., 1]))
    srgb = float(np.median(png[..., 1])) / 255.0
    assert srgb > lin


def test_gt_json_holds_the_truth(written) -> None:  # type: ignore[no-untyped-def]
    out, shot = written
    doc = json.loads((out / "gt.json").read_text())
    assert doc["schema"] == "SeamRotoSynthGT.1"
    assert doc["character"]["name"] == "mara" and doc["first"] == 1001 and doc["last"] == 1006
    assert doc["format"]["width"] == 320 and doc["seeds"]["shot"] == 7
    assert doc["seams"]["seam"]["landmarks"][0] == "seam_0"
    for t in shot.tracks:
        for f, s in t.samples.items():
            assert doc["landmarks"][t.name][str(f)] == pytest.approx([s.x, s.y], abs=TOL["json_px"])
    for s in shot.shapes:
        entry = doc["shapes"][s.name]
        assert entry["closed"] == s.closed and tuple(entry["layer"]) == s.layer
        for f in s.key_frames:
            assert np.allclose(entry["frames"][str(f)], _abs(s.keys[f]), atol=TOL["json_px"])
    assert doc["face_boxes"]["1001"] == pytest.approx(list(shot.face_boxes[1001]))
    back = read_gt(out / "gt.json")
    assert back.tracks == shot.tracks and back.face_boxes == shot.face_boxes
    assert back.shot.plates.endswith("plates/mara_s7.####.exr")
    assert np.array_equal(back.image(1002), shot.image(1002))


def test_gt_nk_reads_back_to_the_truth(written) -> None:  # type: ignore[no-untyped-def]
    reader = pytest.importorskip("seamroto.nk.reader")
    out, shot = written
    script = reader.parse_script((out / "gt.nk").read_text(), path=str(out / "gt.nk"))
    read = reader.find_node(script, node_class="Read")
    assert read is not None
    tracks = reader.tracker_tracks(script, reader.find_node(script, node_class="Tracker4"), 180)
    by: Dict[str, object] = {t.name: t for t in tracks}
    assert set(by) == set(shot.character.landmarks)
    for t in shot.tracks:
        got = by[t.name]
        for f, s in t.samples.items():
            x, y = got.xy(f)  # type: ignore[attr-defined]
            assert abs(x - s.x) < TOL["nk_px"] and abs(y - s.y) < TOL["nk_px"]
    shapes = reader.roto_shapes(script, reader.find_node(script, node_class="Roto"), 180)
    got_shapes = {s.name: s for s in shapes}
    assert set(got_shapes) == {s.name for s in shot.shapes}  # no renames by the writer
    for s in shot.shapes:
        g = got_shapes[s.name]
        assert g.closed == s.closed and g.layer == s.layer
        for f in s.key_frames:
            assert np.abs(_abs(g.keys[f]) - _abs(s.keys[f])).max() < TOL["nk_px"]


def test_write_never_overwrites_and_synth_command_formats(tmp_path: Path) -> None:
    out = synth_command("otto", 2, 2, 96, 64, tmp_path / "otto", ("png",))
    assert sorted(p.name for p in (out / "plates").iterdir()) == [
        "otto_s2.1001.png", "otto_s2.1002.png"
    ]
    assert "otto_s2.####.png" in (out / "gt.nk").read_text()
    with pytest.raises(OutputExistsError):
        synth_command("otto", 2, 2, 96, 64, out, ("png",))
    with pytest.raises(SynthError, match="formats"):
        synth_command("otto", 2, 2, 96, 64, tmp_path / "bad", ("tif",))
    assert not (tmp_path / "bad").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["otto"]  # no partial folders left


@pytest.mark.parametrize("name", sorted(CHARACTERS))
def test_seam_runs_below_the_eyes_and_clear_of_the_nostrils(name: str) -> None:
    from seamroto.synth.geometry import face_parts
    from seamroto.synth.motion import Expression

    spec = CHARACTERS[name]
    expr = Expression(1.0, 1.0, (0.0, 0.0), 0.0, 0.0, 0.0, "rest", (1.0, 1.0, 0.0, 0.0))
    parts, _hidden = face_parts(spec, expr)
    seam = parts["seam"][0].flatten(0.002)
    for part in ("eye_L", "eye_R", "nostril_L", "nostril_R", "brow_L", "brow_R", "mouth"):
        poly = parts[part][0].flatten(0.002).astype(np.float32)
        inside = [cv2.pointPolygonTest(poly, (float(x), float(y)), True) for x, y in seam]
        assert max(inside) < -0.005, part  # face units: at least 0.5 % of the face height clear


@pytest.mark.parametrize("move", [(5.0, 0.0), (3.0, 4.0), (-12.0, 7.0)])
def test_motion_blur_kernel_moves_no_feature(move: Tuple[float, float]) -> None:
    from seamroto.synth.render import _blur_kernel

    k = _blur_kernel(*move)
    assert k is not None and abs(k.sum() - 1.0) < 1e-6
    n = k.shape[0]
    ys, xs = np.mgrid[0:n, 0:n] - n // 2
    assert abs((k * xs).sum()) < 1e-6 and abs((k * ys).sum()) < 1e-6
    # the smear runs along the move
    spread_along = (k * (xs * move[0] + ys * move[1]) ** 2).sum()
    spread_across = (k * (xs * move[1] - ys * move[0]) ** 2).sum()
    assert spread_along > spread_across
