"""LAIKA / Intel Sir Lionel import: the three reference shots and the original per-frame layout.

The reference JSON is (c) Intel Corporation, CC BY 4.0 (see seamroto.laika.ATTRIBUTION); these
tests read it in place from ../shared/reference and copy it only into tmp_path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict

import pytest

from seamroto.datamodel import Annotation
from seamroto.errors import AnnotationError
from seamroto.laika import (
    ATTRIBUTION,
    CLOSED_SHAPES,
    IMAGE_SIZE,
    OPEN_SHAPES,
    control_points_from_segments,
    laika_frame_shapes,
    laika_shot_name,
    load_laika,
    segments_from_control_points,
)

SHOT_FRAMES = {
    "shot0": list(range(0, 313, 24)),
    "shot1": sorted(set(range(0, 265, 24)) | set(range(100, 112))),
    "shot2": list(range(0, 313, 24)),
}
SHAPE_NAMES = {
    "left_eye",
    "right_eye",
    "left_eyebrow",
    "right_eyebrow",
    "left_sideburn",
    "right_sideburn",
    "left_seam",
    "nose_seam",
    "right_seam",
}
LANDMARK_NAMES = [f"p{i:02d}" for i in range(43)]
# Points 40-42 are near the seams' middle knots (not exactly: the landmarks come from the
# re-vectorised files, the shapes from the artists' own). Measured max: 16.2 / 8.4 / 21.8 px.
SEAM_POINT_TOL_PX = 25.0
# Eye/brow/sideburn landmarks lie within this margin of their shape's control-point box.
BOX_MARGIN_PX = 15.0


def _raw(laika_dir: Path, shot: str) -> Dict[str, Any]:
    return json.loads((laika_dir / f"{shot}.json").read_text())


def _as_tuples(segments: Any) -> list:
    return [(tuple(s[0]), tuple(s[1])) for s in segments]


@pytest.fixture(scope="module")
def shots(laika_dir: Path) -> Dict[str, Annotation]:
    anns = load_laika(laika_dir)
    return {laika_shot_name(a): a for a in anns}


def test_reference_shots(shots: Dict[str, Annotation]) -> None:
    assert list(shots) == ["shot0", "shot1", "shot2"]
    for name, ann in shots.items():
        assert ann.frames == SHOT_FRAMES[name]
        assert ann.shot is None
        assert ann.image_size == IMAGE_SIZE
        assert ann.images == {}
        assert ann.landmark_names() == LANDMARK_NAMES
        for track in ann.tracks:
            assert track.frames == SHOT_FRAMES[name]
            assert all(s.confidence == 1.0 and s.keyed for s in track.samples.values())
        assert {s.name for s in ann.shapes} == SHAPE_NAMES
        assert ann.frame_shapes == {}
        for shape in ann.shapes:
            assert shape.closed == (shape.name in CLOSED_SHAPES) != (shape.name in OPEN_SHAPES)
            assert shape.key_frames == SHOT_FRAMES[name]


def test_attribution_travels_with_every_annotation(shots: Dict[str, Annotation]) -> None:
    assert "CC BY 4.0" in ATTRIBUTION and "Intel Corporation" in ATTRIBUTION
    assert "LaikaStudios/WACV_dataset_sir_lionel" in ATTRIBUTION
    for ann in shots.values():
        assert ann.source.endswith(ATTRIBUTION)


def test_points_and_segments_are_exact(shots: Dict[str, Annotation], laika_dir: Path) -> None:
    for name, ann in shots.items():
        raw = _raw(laika_dir, name)
        by_name = {s.name: s for s in ann.shapes}
        for key, frame_data in raw["frames"].items():
            frame = int(key)
            for j, (x, y) in enumerate(frame_data["points"]):
                assert ann.tracks[j].xy(frame) == (x, y)
            for shape_name, segments in frame_data["shapes"].items():
                shape = by_name[shape_name]
                points = shape.keys[frame]
                n_segments = len(segments)
                assert len(points) == (n_segments if shape.closed else n_segments + 1)
                # The tangents reproduce the original Bezier segments bit for bit.
                assert segments_from_control_points(points, shape.closed) == _as_tuples(segments)
                if not shape.closed:
                    assert points[0].left == (0.0, 0.0) and points[-1].right == (0.0, 0.0)


def test_conventions_against_the_readme(shots: Dict[str, Annotation]) -> None:
    groups = {
        "left_eye": range(0, 6),
        "right_eye": range(6, 12),
        "left_eyebrow": range(12, 20),
        "right_eyebrow": range(20, 28),
        "left_sideburn": range(28, 34),
        "right_sideburn": range(34, 40),
    }
    seams = {40: "left_seam", 41: "nose_seam", 42: "right_seam"}
    for ann in shots.values():
        by_name = {s.name: s for s in ann.shapes}
        for frame in ann.frames:
            for shape_name, idx in groups.items():
                pts = by_name[shape_name].keys[frame]
                xs = [p.x for p in pts] + [p.right_abs[0] for p in pts] + [p.left_abs[0] for p in pts]
                ys = [p.y for p in pts] + [p.right_abs[1] for p in pts] + [p.left_abs[1] for p in pts]
                for j in idx:
                    x, y = ann.tracks[j].xy(frame)  # type: ignore[misc]
                    assert min(xs) - BOX_MARGIN_PX <= x <= max(xs) + BOX_MARGIN_PX
                    assert min(ys) - BOX_MARGIN_PX <= y <= max(ys) + BOX_MARGIN_PX
            for j, seam in seams.items():
                middle = by_name[seam].keys[frame][1]
                xy = ann.tracks[j].xy(frame)
                assert xy is not None
                assert math.dist(xy, (middle.x, middle.y)) < SEAM_POINT_TOL_PX


def test_single_file_and_frame_shapes_view(laika_dir: Path) -> None:
    (ann,) = load_laika(laika_dir / "shot0.json")
    assert laika_shot_name(ann) == "shot0"
    view = laika_frame_shapes(ann)
    assert sorted(view) == SHOT_FRAMES["shot0"]
    for frame, shapes in view.items():
        assert set(shapes) == SHAPE_NAMES
        for shape in shapes.values():
            assert shape.key_frames == [frame]


def test_control_points_round_trip_and_closure() -> None:
    square = [
        [[0.0, 1.0, 10.0, -1.0], [0.0, 0.0, 0.0, 0.0]],
        [[10.0, 0.0, 10.0, 0.0], [0.0, 1.0, 10.0, -1.0]],
        [[10.0, -1.0, 0.0, 1.0], [10.0, 0.0, 10.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0], [10.0, -1.0, 0.0, 1.0]],
    ]
    pts, closed = control_points_from_segments(square)
    assert closed and len(pts) == 4
    assert pts[0].left == (0.0, 1.0) and pts[0].right == (1.0, 0.0)  # incoming t3, outgoing t0
    assert segments_from_control_points(pts, closed) == _as_tuples(square)
    open_pts, open_closed = control_points_from_segments(square[:2])
    assert not open_closed and len(open_pts) == 3
    assert open_pts[-1].left == (0.0, -1.0) and open_pts[-1].right == (0.0, 0.0)
    with pytest.raises(AnnotationError, match="does not end where it starts"):
        control_points_from_segments(square[:2], closed=True, name="left_eye")
    broken = [square[0], square[2]]
    with pytest.raises(AnnotationError, match="segment 0 ends"):
        control_points_from_segments(broken, name="x", path="f.json", frame=7)


# --- the original per-frame layout ---------------------------------------------------------------


def _write_per_frame(root: Path, raw: Dict[str, Any], *, images: bool = True) -> Path:
    """Write the data set's original layout for one shot, as the upstream repository has it."""
    shot = raw["shot"]
    folder = root / shot
    folder.mkdir(parents=True)
    for key, data in raw["frames"].items():
        stem = f"{shot}-frame{int(key):03d}"
        (folder / f"raw_shapes-{stem}.json").write_text(json.dumps(data["shapes"], indent=4))
        revec = {"left_eye": data["shapes"]["left_eye"], "points": data["points"]}
        (folder / f"revec_shapes-{stem}.json").write_text(json.dumps(revec, indent=4))
        if images:
            (folder / f"image-{stem}.png").write_bytes(b"")  # never opened by the loader
            (folder / f"visual-{stem}.png").write_bytes(b"")
    return folder


def _same_content(a: Annotation, b: Annotation) -> None:
    assert a.tracks == b.tracks
    assert a.shapes == b.shapes
    assert a.image_size == b.image_size


def test_per_frame_layout_loads_the_same(tmp_path: Path, laika_dir: Path, shots: Dict[str, Annotation]) -> None:
    for name in ("shot0", "shot1"):
        _write_per_frame(tmp_path, _raw(laika_dir, name))
    anns = load_laika(tmp_path)  # the data set root: one folder per shot
    assert [laika_shot_name(a) for a in anns] == ["shot0", "shot1"]
    for ann in anns:
        name = laika_shot_name(ann)
        _same_content(ann, shots[name])
        assert sorted(ann.images) == SHOT_FRAMES[name]
        assert ann.images[24] == str(tmp_path / name / f"image-{name}-frame024.png")
        assert ann.source.endswith(ATTRIBUTION)
    (one,) = load_laika(tmp_path / "shot0")  # one shot folder
    _same_content(one, shots["shot0"])


def test_revec_shape_set(tmp_path: Path, laika_dir: Path) -> None:
    _write_per_frame(tmp_path, _raw(laika_dir, "shot2"))
    (ann,) = load_laika(tmp_path / "shot2", shape_set="revec")
    assert [s.name for s in ann.shapes] == ["left_eye"]
    assert len(ann.tracks) == 43
    with pytest.raises(AnnotationError, match="raw shapes"):
        load_laika(laika_dir / "shot2.json", shape_set="revec")


def test_hidden_points_and_varying_counts(tmp_path: Path, laika_dir: Path) -> None:
    raw = _raw(laika_dir, "shot0")
    raw["frames"]["24"]["points"][5] = [0, 0]  # not visible on frame 24
    brow = raw["frames"]["48"]["shapes"]["left_eyebrow"]
    x0, tx0, x3, tx3 = brow[0][0]
    y0, ty0, y3, ty3 = brow[0][1]
    mx, my = (x0 + x3) / 2, (y0 + y3) / 2  # split segment 0 in two: one more point on frame 48
    brow[0:1] = [[[x0, tx0, mx, 0.0], [y0, ty0, my, 0.0]], [[mx, 0.0, x3, tx3], [my, 0.0, y3, ty3]]]
    path = tmp_path / "shot0.json"
    path.write_text(json.dumps(raw))
    (ann,) = load_laika(path)

    assert 24 not in ann.tracks[5].samples and ann.tracks[5].xy(24) is None
    assert 24 in ann.tracks[4].samples
    assert "left_eyebrow" not in {s.name for s in ann.shapes}
    counts = {f: shapes[0].point_count for f, shapes in ann.frame_shapes.items()}
    assert counts[48] == 9 and counts[0] == 8
    assert all(len(shapes) == 1 for shapes in ann.frame_shapes.values())
    view = laika_frame_shapes(ann)
    assert all(set(shapes) == SHAPE_NAMES for shapes in view.values())
    assert view[48]["left_eyebrow"].point_count == 9
    assert ann.frames == SHOT_FRAMES["shot0"]


@pytest.mark.parametrize(
    ("mutate", "message", "frame"),
    [
        (lambda r: r["frames"]["24"]["points"].pop(), "42 landmarks", 24),
        (lambda r: r["frames"]["48"]["points"].__setitem__(3, [1.0]), "point 3", 48),
        (lambda r: r["frames"]["72"]["shapes"].__setitem__("left_eye", []), "non-empty", 72),
        (lambda r: r["frames"]["96"]["shapes"]["nose_seam"][0].pop(), "segment 0", 96),
        (lambda r: r["frames"]["0"]["shapes"]["left_eye"].pop(), "does not end", 0),
        (lambda r: r["frames"].__setitem__("x1", {}), "not a frame number", None),
    ],
)
def test_malformed_input_names_file_and_frame(
    tmp_path: Path, laika_dir: Path, mutate: Any, message: str, frame: Any
) -> None:
    raw = _raw(laika_dir, "shot0")
    mutate(raw)
    path = tmp_path / "shot0.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(AnnotationError, match=message) as info:
        load_laika(path)
    assert info.value.path == str(path)
    assert info.value.frame == frame


def test_bad_files_and_folders(tmp_path: Path, laika_dir: Path) -> None:
    folder = _write_per_frame(tmp_path, _raw(laika_dir, "shot2"), images=False)
    bad = folder / "raw_shapes-shot2-frame048.json"
    bad.write_text('{"left_eye": [')
    with pytest.raises(AnnotationError, match="not valid JSON") as info:
        load_laika(folder)
    assert info.value.path == str(bad) and info.value.frame == 48
    assert "frame 48" in str(info.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(AnnotationError, match="notes.txt"):
        load_laika(empty)
    with pytest.raises(AnnotationError, match="does not exist"):
        load_laika(tmp_path / "missing")
    with pytest.raises(AnnotationError, match="shape_set"):
        load_laika(folder, shape_set="clean")


def test_a_shot_twice_is_an_error(tmp_path: Path, laika_dir: Path) -> None:
    raw = _raw(laika_dir, "shot0")
    (tmp_path / "shot0.json").write_text(json.dumps(raw))
    _write_per_frame(tmp_path / "more", raw)
    (tmp_path / "more" / "shot0.json").write_text(json.dumps(raw))
    with pytest.raises(AnnotationError, match="twice"):
        load_laika(tmp_path / "more")
