"""Bounding-box tracker: IoU on a synthetic shot, stage-light flicker, outputs, CLI and bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict, Mapping, Sequence

import numpy as np
import pytest

from seamroto import cli, colour
from seamroto.bbox import (
    DEFAULT_PARAMS,
    RESULT_SCHEMA,
    TRACK_NAMES,
    box_from_nuke,
    box_iou,
    track_box,
    track_box_frames,
    track_plates,
    write_box_outputs,
)
from seamroto.errors import BoxError, KeyRangeError
from seamroto.flow import to_gray_u8
from seamroto.nk.reader import find_node, read_script, tracker_tracks
from seamroto.plates import write_frame
from seamroto.protocol import make_request, run_request
from seamroto.synth import render_shot

# Tolerances.
TOL = {
    "iou_every_frame": 0.9,  # the figure, on every frame
    "iou_distractor": 0.95,  # a clean synthetic object, only the static edge to resist
    "corner_px": 1e-3,  # the Tracker4 holds the boxes (after the .nk round trip)
}
W, H, FRAMES, FIRST, KEY = 320, 180, 24, 1001, 1012
FLICKER_GAINS = (0.6, 1.4)  # far beyond a real stage's few percent


@pytest.fixture(scope="module")
def shot() -> Dict[str, object]:
    s = render_shot("otto", 5, frames=FRAMES, width=W, height=H)
    encoded = {FIRST + i: colour.to_model_space(img, colour.LINEAR_SPACE) for i, img in enumerate(s.images)}
    return {"boxes": dict(s.face_boxes), "images": encoded, "linear": s.images}


@pytest.fixture(scope="module")
def plates(shot: Dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("bbox_plates")
    for i, img in enumerate(shot["linear"]):  # type: ignore[arg-type]
        write_frame(folder / f"sh.{FIRST + i:04d}.exr", img)
    return str(folder / "sh.####.exr")


def _ious(boxes: Mapping[int, Sequence[float]], truth: Mapping[int, Sequence[float]]) -> np.ndarray:
    return np.array([box_iou(boxes[f], truth[f]) for f in sorted(truth)])


def test_box_follows_the_face_on_every_frame(shot: Dict[str, object]) -> None:
    grays = {f: to_gray_u8(img) for f, img in shot["images"].items()}  # type: ignore[union-attr]
    truth = shot["boxes"]
    track = track_box_frames(grays, KEY, truth[KEY])  # type: ignore[index]
    assert sorted(track.boxes) == list(range(FIRST, FIRST + FRAMES))
    assert track.boxes[KEY] == tuple(truth[KEY])  # type: ignore[index]
    assert _ious(track.boxes, truth).min() >= TOL["iou_every_frame"]  # type: ignore[arg-type]


def test_stage_light_flicker_does_not_move_the_box(shot: Dict[str, object]) -> None:
    rng = np.random.default_rng(7)
    gains = rng.uniform(*FLICKER_GAINS, size=FRAMES)
    grays = {
        f: to_gray_u8(np.clip(img * g, 0.0, 1.0))
        for (f, img), g in zip(sorted(shot["images"].items()), gains)  # type: ignore[union-attr]
    }
    track = track_box_frames(grays, KEY, shot["boxes"][KEY])  # type: ignore[index]
    assert _ious(track.boxes, shot["boxes"]).min() >= TOL["iou_every_frame"]  # type: ignore[arg-type]
    assert track.flagged == ()


DRIFT = (0.5, -1.5)  # px per frame the object moves, _img


def _object_frame(i: int, rng: np.random.Generator) -> np.ndarray:
    """A spotted oval moving over a static backdrop whose strong edge sits at its chin on frame 0."""
    ys, xs = np.mgrid[0:180, 0:240] + 0.5
    backdrop = np.where(ys < 130.0, 0.3, 0.75)  # a prop's edge, far stronger than the object's
    cx, cy = 120.0 + DRIFT[0] * i, 90.0 + DRIFT[1] * i
    inside = np.clip(1.0 - np.hypot((xs - cx) / 30.0, (ys - cy) / 40.0), 0.0, 0.03) / 0.03
    img = backdrop * (1.0 - inside) + 0.38 * inside
    for dx, dy in ((-12, -15), (12, -15), (0, 0), (-8, 16), (9, 14), (0, -28)):
        img -= 0.2 * np.exp(-0.5 * (np.hypot(xs - cx - dx, ys - cy - dy) / 1.5) ** 2) * inside
    return to_gray_u8(np.clip(img + rng.normal(0.0, 0.005, img.shape), 0.0, 1.0))


def test_a_static_edge_behind_a_side_does_not_hold_it() -> None:
    rng = np.random.default_rng(3)
    frames = {FIRST + i: _object_frame(i - 12, rng) for i in range(FRAMES)}
    truth = {f: (90.0 + DRIFT[0] * (f - KEY), 50.0 + DRIFT[1] * (f - KEY), 60.0, 80.0) for f in frames}
    guarded = _ious(track_box_frames(frames, KEY, truth[KEY]).boxes, truth).min()
    assert guarded >= TOL["iou_distractor"]
    unguarded = track_box_frames(frames, KEY, truth[KEY], params=dataclasses.replace(DEFAULT_PARAMS, side_sigma=0))
    assert _ious(unguarded.boxes, truth).min() < guarded  # without the penalty the edge pulls the chin


def test_track_box_reads_plates_and_keeps_the_keyed_box(shot: Dict[str, object], plates: str) -> None:
    key_box = shot["boxes"][KEY]  # type: ignore[index]
    boxes = track_box(plates, KEY, key_box)
    assert boxes[KEY] == tuple(key_box)
    assert _ious(boxes, shot["boxes"]).min() >= TOL["iou_every_frame"]  # type: ignore[arg-type]


def test_outputs_are_a_tracker4_of_corners_and_a_json_result(
    shot: Dict[str, object], plates: str, tmp_path: Path
) -> None:
    track, seq = track_plates(plates, KEY, shot["boxes"][KEY])  # type: ignore[index]
    out = write_box_outputs(track, seq, tmp_path / "box", "FaceBox1")
    script = read_script(out["nk"])
    tracks = {t.name: t for t in tracker_tracks(script, find_node(script, "FaceBox1"), H)}
    assert list(tracks) == list(TRACK_NAMES)
    for f, (x, y, w, h) in track.boxes.items():
        assert tracks["box_top_left"].xy(f) == pytest.approx((x, y), abs=TOL["corner_px"])
        assert tracks["box_bottom_right"].xy(f) == pytest.approx((x + w, y + h), abs=TOL["corner_px"])
        assert tracks["box_centre"].xy(f) == pytest.approx((x + w / 2, y + h / 2), abs=TOL["corner_px"])
    doc = json.loads(out["result"].read_text())
    assert doc["schema"] == RESULT_SCHEMA and doc["key_frame"] == KEY and len(doc["boxes"]) == FRAMES


def test_a_nuke_box_is_flipped_into_image_space() -> None:
    assert box_from_nuke([10, 20, 50, 100], 180) == (10.0, 80.0, 40.0, 80.0)


def test_bad_boxes_and_key_frames_fail_clearly(shot: Dict[str, object], plates: str) -> None:
    with pytest.raises(KeyRangeError, match="key frame 990 is outside the plate frames 1001-1024"):
        track_box(plates, 990, (10, 10, 50, 50))
    with pytest.raises(BoxError, match="too small"):
        track_box(plates, KEY, (10, 10, 0, 50))
    with pytest.raises(BoxError, match="outside the 320x180 frame"):
        track_box(plates, KEY, (400, 10, 50, 50))
    with pytest.raises(BoxError, match="four finite numbers"):
        track_box(plates, KEY, (10, float("nan"), 50, 50))


def test_cli_bbox_and_the_protocol_command(shot: Dict[str, object], plates: str, tmp_path: Path) -> None:
    x, y, w, h = shot["boxes"][KEY]  # type: ignore[index]
    argv = ["-q", "bbox", "--plates", plates, "--frame", str(KEY), "--box", str(x), str(y), str(w), str(h),
            "-o", str(tmp_path / "cli_box")]
    assert cli.run(argv) == cli.EXIT_OK and cli.run(argv) == cli.EXIT_OK
    assert (tmp_path / "cli_box" / "bbox.nk").is_file() and (tmp_path / "cli_box_v2" / "bbox.json").is_file()
    args = {"plate": plates, "first": FIRST, "last": FIRST + FRAMES - 1, "frame": KEY,
            "box_nuke": [x, H - y - h, x + w, H - y], "out_dir": str(tmp_path / "BBox1_v2"),
            "node_prefix": "BBox1", "node_version": 2}
    outputs = run_request(make_request("bbox", args))
    assert outputs["node_count"] == 1 and outputs["flagged_frames"] == []
    doc = json.loads(Path(outputs["result"]).read_text())
    assert doc["node"] == "BBox1_box_v2"
    assert doc["key_box"] == pytest.approx([x, y, w, h], abs=TOL["corner_px"])


def test_a_cancelled_box_track_stops(shot: Dict[str, object]) -> None:
    from seamroto.errors import CancelledError

    class Stop:
        def update(self, done: int, total: int, message: str = "") -> None:
            pass

        @property
        def cancelled(self) -> bool:
            return True

    grays = {f: to_gray_u8(img) for f, img in shot["images"].items()}  # type: ignore[union-attr]
    with pytest.raises(CancelledError):
        track_box_frames(grays, KEY, shot["boxes"][KEY], progress=Stop())  # type: ignore[index]
