"""Motion2Roto: keys hit exactly, one key carries both ways, bad input fails clearly, source untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Dict, List

import numpy as np
import OpenImageIO as oiio
import pytest

from seamroto import cli
from seamroto.datamodel import ControlPoint, RotoShape
from seamroto.errors import (
    KeyRangeError,
    MotionVectorError,
    OutputExistsError,
    ShapeNotFoundError,
)
from seamroto.flowfield import FlowField, compose
from seamroto.motion2roto import REPORT_SCHEMA, motion2roto
from seamroto.nk.reader import find_node, read_script, roto_shapes
from seamroto.nk.writer import write_roto, write_script, write_script_file
from seamroto.outline import fit_outline, make_outline
from seamroto.propagate import PropagationParams, pack_points, propagate_shapes, unpack_points
from seamroto.protocol import make_request, run_request
from seamroto.synth import render_shot, write_shot

# Tolerances, in px unless named otherwise.
TOL = {
    "key_exact": 1e-6,  # keys come back as written (the .nk number format round-trips)
    "shift": 0.05,  # a pure translation is carried exactly (affine fit of exact flow)
    "vector_shift": 0.1,
    "synthetic_mean": 1.5,  # small synthetic shot, keys 6 frames apart
    "outline_fit": 0.1,  # an outline on a clean synthetic frame lands on the known motion
    "outline_track": 0.25,  # outlines carried over frames whose flow is wrong on purpose
}
W, H, FRAMES, FIRST = 192, 108, 10, 1001
KEYS = (1001, 1006)
SHAPES = ("eye_L", "nose", "face", "seam")
REPO_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, object]:
    """A small synthetic shot on disk and a script with its shapes keyed on two frames only."""
    root = tmp_path_factory.mktemp("m2r")
    shot = render_shot("mara", 5, frames=FRAMES, width=W, height=H)
    folder = write_shot(shot, root / "shot", formats=("exr",))
    truth = {s.name: s for s in shot.shapes if s.name in SHAPES}
    keyed = [replace(s, keys={f: s.keys[f] for f in KEYS}) for s in truth.values()]
    script = root / "sh010_roto.nk"
    write_script_file(script, write_script([write_roto(keyed, width=W, height=H, name="Roto1")]))
    return {
        "root": root,
        "plates": str(folder / "plates" / "mara_s5.####.exr"),
        "script": script,
        "truth": truth,
        "keyed": keyed,
    }


def _read_shapes(path: Path, node: str) -> Dict[str, RotoShape]:
    script = read_script(path)
    return {s.name: s for s in roto_shapes(script, find_node(script, node), H)}


def _points(shape: RotoShape, frame: int) -> np.ndarray:
    return pack_points(shape.keys[frame]).reshape(-1, 2)


def test_keys_are_hit_exactly_and_every_frame_is_animated(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    out = motion2roto(shot_dir["script"], "Roto1", [], shot_dir["plates"], tmp_path / "out.nk")
    source = _read_shapes(shot_dir["script"], "Roto1")
    result = _read_shapes(out, "Roto1_motion")
    assert sorted(result) == sorted(source)
    for name, shape in result.items():
        assert shape.key_frames == list(range(FIRST, FIRST + FRAMES)), name
        for k in KEYS:
            assert np.abs(_points(shape, k) - _points(source[name], k)).max() <= TOL["key_exact"], (name, k)
    truth = shot_dir["truth"]
    errors = [
        np.linalg.norm(pack_points(result[n].keys[f])[:, 0] - pack_points(truth[n].keys[f])[:, 0], axis=1).mean()
        for n in ("eye_L", "nose", "seam")
        for f in range(FIRST, FIRST + FRAMES)
        if f not in KEYS
    ]
    assert float(np.mean(errors)) < TOL["synthetic_mean"]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["schema"] == REPORT_SCHEMA and report["shapes"]["nose"]["keys"] == list(KEYS)
    assert report["motion"]["source"] == "dis"


def test_source_script_is_never_touched(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    script: Path = shot_dir["script"]  # type: ignore[assignment]
    before = (script.read_bytes(), script.stat().st_mtime_ns)
    motion2roto(script, "Roto1", ["nose"], shot_dir["plates"], tmp_path / "nose.nk")
    assert (script.read_bytes(), script.stat().st_mtime_ns) == before
    with pytest.raises(OutputExistsError, match="never edits a script in place"):
        motion2roto(script, "Roto1", ["nose"], shot_dir["plates"], script)
    with pytest.raises(OutputExistsError, match="exists already"):
        motion2roto(script, "Roto1", ["nose"], shot_dir["plates"], tmp_path / "nose.nk")
    assert (script.read_bytes(), script.stat().st_mtime_ns) == before


def test_only_the_named_shapes_move_and_unknown_names_are_listed(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    out = motion2roto(shot_dir["script"], "Roto1", ["nose"], shot_dir["plates"], tmp_path / "n.nk")
    result = _read_shapes(out, "Roto1_motion")
    assert len(result["nose"].keys) == FRAMES and result["face"].key_frames == list(KEYS)
    with pytest.raises(ShapeNotFoundError, match="no shape 'chin'.*its shapes are: eye_L"):
        motion2roto(shot_dir["script"], "Roto1", ["chin"], shot_dir["plates"], tmp_path / "x.nk")


def test_a_shape_keyed_once_is_carried_both_ways(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    truth = shot_dir["truth"]["nose"]
    key = 1005
    script = tmp_path / "once.nk"
    once = replace(truth, keys={key: truth.keys[key]})
    write_script_file(script, write_script([write_roto([once], width=W, height=H, name="Roto1")]))
    out = motion2roto(script, "Roto1", [], shot_dir["plates"], tmp_path / "once_out.nk")
    nose = _read_shapes(out, "Roto1_motion")["nose"]
    assert nose.key_frames == list(range(FIRST, FIRST + FRAMES))
    for f in (FIRST, FIRST + FRAMES - 1):  # both ends of the shot, far from the key
        carried = np.linalg.norm(_points(nose, f) - _points(truth, f), axis=1).mean()
        held = np.linalg.norm(_points(truth, key) - _points(truth, f), axis=1).mean()
        assert carried < held, f


def test_keys_outside_the_plates_fail_before_any_work(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    truth = shot_dir["truth"]["eye_L"]
    shifted = RotoShape("eye_L", True, {990: truth.keys[1001], 1003: truth.keys[1003]})
    script = tmp_path / "outside.nk"
    write_script_file(script, write_script([write_roto([shifted], width=W, height=H, name="Roto1")]))
    with pytest.raises(KeyRangeError, match=r"outside the plate frames 1001-1010 \(eye_L: 990\)") as err:
        motion2roto(script, "Roto1", [], shot_dir["plates"], tmp_path / "never.nk")
    assert err.value.frame == 990
    assert not (tmp_path / "never.nk").exists() and not (tmp_path / "never.json").exists()


def test_vectors_without_motion_channels_name_the_channels_found(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(MotionVectorError, match="found: R, G, B") as err:
        motion2roto(
            shot_dir["script"], "Roto1", [], shot_dir["plates"], tmp_path / "v.nk", vectors=shot_dir["plates"]
        )
    assert "forward.u/forward.v" in str(err.value)


# -------------------------------------------------------------------- motion vectors, exact motion

SHIFT = (1.5, -0.75)  # px per frame, _img (x right, y down)


def _write_vectors(folder: Path, frames: List[int], backward: bool) -> str:
    """Nuke-style vector EXRs of a constant shift: v is up-positive in Nuke, so it flips."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["R", "G", "B", "forward.u", "forward.v"] + (["backward.u", "backward.v"] if backward else [])
    for f in frames:
        data = np.zeros((H, W, len(names)), np.float32)
        data[..., 3], data[..., 4] = SHIFT[0], -SHIFT[1]
        if backward:
            data[..., 5], data[..., 6] = -SHIFT[0], SHIFT[1]
        spec = oiio.ImageSpec(W, H, len(names), "float")
        spec.channelnames = tuple(names)
        out = oiio.ImageOutput.create(str(folder / f"vec.{f:04d}.exr"))
        assert out is not None
        out.open(str(folder / f"vec.{f:04d}.exr"), spec)
        out.write_image(data)
        out.close()
    return str(folder / "vec.####.exr")


def _feathered_square(x: float, y: float) -> RotoShape:
    pts = tuple(
        ControlPoint(px, py, (-4.0, 1.0), (4.0, -1.0), (2.0, 3.0), (1.0, 0.5), (-1.0, -0.5))
        for px, py in ((x, y), (x + 30, y), (x + 30, y + 24), (x, y + 24))
    )
    return RotoShape("square", True, {1004: pts}, feather=3.0)


@pytest.mark.parametrize("backward", [True, False], ids=["forward+backward", "forward only"])
def test_motion_vectors_carry_points_handles_and_feather(
    shot_dir: Dict[str, object], tmp_path: Path, backward: bool
) -> None:
    vectors = _write_vectors(tmp_path / "vec", list(range(FIRST, FIRST + FRAMES)), backward)
    script = tmp_path / "sq.nk"
    square = _feathered_square(60.0, 40.0)
    write_script_file(script, write_script([write_roto([square], width=W, height=H, name="Roto1")]))
    out = motion2roto(script, "Roto1", [], shot_dir["plates"], tmp_path / "sq_out.nk", vectors=vectors)
    moved = _read_shapes(out, "Roto1_motion")["square"]
    key = pack_points(square.keys[1004])
    for f in (FIRST, 1007, FIRST + FRAMES - 1):
        expected = key + np.array(SHIFT) * (f - 1004)
        assert np.abs(pack_points(moved.keys[f]) - expected).max() <= TOL["vector_shift"], f
    assert moved.keys[1007][0].feather_tangents[0] == pytest.approx((1.0, 0.5), abs=TOL["vector_shift"])
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["motion"]["backward"] == ("stored" if backward else "inverted")


# -------------------------------------------------------------------- propagation unit tests


class ShiftProvider:
    """A constant translation per frame; fields leaving a ``broken`` frame are off by 5 px."""

    def __init__(self, shift: tuple, broken: frozenset = frozenset()) -> None:
        self.shift = np.array(shift, np.float32)
        self.broken = broken

    def flow(self, src: int, dst: int) -> FlowField:
        field = np.broadcast_to(self.shift * (dst - src), (H, W, 2)).copy()
        if src in self.broken:
            field += 5.0
        return FlowField(field)


def test_pack_and_unpack_round_trip_every_slot() -> None:
    square = _feathered_square(10.0, 20.0)
    pts = square.keys[1004]
    assert unpack_points(pack_points(pts), True) == pts
    plain = tuple(replace(p, feather_left=None, feather_right=None) for p in pts)
    assert unpack_points(pack_points(plain), False) == plain


def test_cross_fade_hits_both_keys_and_follows_exact_motion() -> None:
    a = _feathered_square(40.0, 30.0)
    pts_b = tuple(replace(p, x=p.x + 9.0, y=p.y - 4.5) for p in a.keys[1004])
    shape = RotoShape("square", True, {1002: a.keys[1004], 1008: pts_b})
    (motion,) = propagate_shapes([shape], FIRST, FIRST + FRAMES - 1, ShiftProvider((1.5, -0.75)))
    assert motion.shape.keys[1002] == shape.keys[1002] and motion.shape.keys[1008] == shape.keys[1008]
    for f in range(FIRST, FIRST + FRAMES):
        expected = pack_points(shape.keys[1002]) + np.array([1.5, -0.75]) * (f - 1002)
        assert np.abs(pack_points(motion.shape.keys[f]) - expected).max() <= TOL["shift"], f
    assert motion.flagged == () and motion.keys == (1002, 1008)


def test_frames_whose_round_trip_breaks_are_interpolated_and_flagged() -> None:
    shape = RotoShape("square", True, {1001: _feathered_square(40.0, 30.0).keys[1004]})
    (motion,) = propagate_shapes(
        [shape], FIRST, 1008, ShiftProvider((1.0, 0.0), broken=frozenset({1004, 1005})),
        params=PropagationParams(anchor_span=1),
    )
    assert {1004, 1005} <= set(motion.interpolated) and set(motion.interpolated) <= set(motion.flagged)
    assert len(motion.shape.keys) == 8


# -------------------------------------------------------------------- outline matching

DISC_CENTRE, DISC_RADIUS = (80.0, 60.0), 30.0
STEP = (2.0, 1.5)  # px per frame the disc and its stroke move, _img


def _disc_frame(offset: tuple, gain: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """A soft bright disc on grey with a dark horizontal stroke across it, moved by ``offset``."""
    ys, xs = np.mgrid[0:120, 0:160] + 0.5
    cx, cy = DISC_CENTRE[0] + offset[0], DISC_CENTRE[1] + offset[1]
    r = np.hypot(xs - cx, ys - cy)
    img = 0.3 + 0.4 * np.clip(DISC_RADIUS - r + 0.5, 0.0, 1.0)
    on_stroke = np.abs(xs - cx) < 0.8 * DISC_RADIUS
    img -= 0.25 * np.exp(-0.5 * ((ys - cy - 4.0) / 0.8) ** 2) * on_stroke
    return np.clip(255.0 * (gain * img + bias), 0, 255).astype(np.uint8)


def _circle(name: str, offset: tuple = (0.0, 0.0)) -> RotoShape:
    k = 0.5523 * DISC_RADIUS  # cubic Bezier circle
    cx, cy = DISC_CENTRE[0] + offset[0], DISC_CENTRE[1] + offset[1]
    pts = (
        ControlPoint(cx + DISC_RADIUS, cy, (0.0, -k), (0.0, k)),
        ControlPoint(cx, cy + DISC_RADIUS, (k, 0.0), (-k, 0.0)),
        ControlPoint(cx - DISC_RADIUS, cy, (0.0, k), (0.0, -k)),
        ControlPoint(cx, cy - DISC_RADIUS, (-k, 0.0), (k, 0.0)),
    )
    return RotoShape(name, True, {FIRST: pts})


def _stroke(name: str) -> RotoShape:
    cx, cy = DISC_CENTRE[0], DISC_CENTRE[1] + 4.0
    half = 0.6 * DISC_RADIUS
    pts = tuple(ControlPoint(cx + dx, cy, (-half / 3, 0.0), (half / 3, 0.0)) for dx in (-half, 0.0, half))
    return RotoShape(name, False, {FIRST: pts})


def test_an_outline_lands_on_the_known_motion_whatever_the_light() -> None:
    shape = _circle("disc")
    rows = np.hstack([pack_points(shape.keys[FIRST])[:, 0], pack_points(shape.keys[FIRST])[:, 1]
                      - pack_points(shape.keys[FIRST])[:, 0], pack_points(shape.keys[FIRST])[:, 2]
                      - pack_points(shape.keys[FIRST])[:, 0]])
    outline = make_outline(_disc_frame((0.0, 0.0)), rows, True, (1.0, 1.0))
    assert outline is not None
    flow = np.array([[1.0, 0.0, STEP[0] - 0.5], [0.0, 1.0, STEP[1] - 0.5]])  # a flow estimate 0.7 px short
    points = rows[:, :2]
    for gain, bias in ((1.0, 0.0), (0.6, 0.15)):  # stage-light flicker: gain and offset
        fit = fit_outline(outline, _disc_frame(STEP, gain, bias), flow, flow, points, (1.0, 1.0))
        assert fit is not None and fit.support > 0.9
        moved = points @ fit.matrix[:, :2].T + fit.matrix[:, 2]
        assert np.abs(moved - (points + STEP)).max() <= TOL["outline_fit"], (gain, bias)


class DiscFrames:
    """The moving disc as a ``FrameSource`` at plate resolution."""

    scale = (1.0, 1.0)

    def gray(self, frame: int) -> np.ndarray:
        return _disc_frame((STEP[0] * (frame - FIRST), STEP[1] * (frame - FIRST)))


def test_outlines_carry_shapes_the_flow_misses_and_a_stroke_slides_with_its_container() -> None:
    shapes = [_circle("disc"), _stroke("stroke")]
    last = FIRST + 4
    short = ShiftProvider((STEP[0] - 0.5, STEP[1] - 0.5))  # flow that falls short of the motion
    motions = propagate_shapes(shapes, FIRST, last, short, frames=DiscFrames())
    for motion, shape in zip(motions, shapes):
        for f in range(FIRST + 1, last + 1):
            expected = pack_points(shape.keys[FIRST]) + np.array(STEP) * (f - FIRST)
            got = pack_points(motion.shape.keys[f])
            # the stroke's own outline says nothing along itself: x comes from the disc around it
            assert np.abs(got - expected).max() <= TOL["outline_track"], (shape.name, f)
    without = propagate_shapes(shapes, FIRST, last, short, frames=DiscFrames(),
                               params=PropagationParams(match_outlines=False))
    expected = pack_points(shapes[0].keys[FIRST]) + np.array(STEP) * (last - FIRST)
    assert np.abs(pack_points(without[0].shape.keys[last]) - expected).max() > 1.0  # flow alone misses


def test_compose_adds_fields_along_the_motion() -> None:
    a = FlowField(np.full((8, 8, 2), 1.0, np.float32))
    b = FlowField(np.full((8, 8, 2), 0.5, np.float32))
    assert np.allclose(compose(a, b).vectors, 1.5)


# -------------------------------------------------------------------- CLI and protocol


def test_cli_motion2roto_writes_a_new_version_each_run(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    argv = ["-q", "motion2roto", str(shot_dir["script"]), "--roto", "Roto1", "--shape", "nose",
            "--plates", str(shot_dir["plates"]), "-o", str(tmp_path / "cli.nk")]
    assert cli.run(argv) == cli.EXIT_OK and cli.run(argv) == cli.EXIT_OK
    assert (tmp_path / "cli.nk").is_file() and (tmp_path / "cli_v2.nk").is_file()
    assert cli.run(argv[:-4] + ["--plates", str(tmp_path / "none.####.exr"), "-o", str(tmp_path / "x.nk")]) == 1


def test_cli_motion2roto_as_a_subprocess(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    out = tmp_path / "sub.nk"
    run = subprocess.run(
        [sys.executable, "-m", "seamroto", "-q", "motion2roto", str(shot_dir["script"]), "--roto", "Roto1",
         "--shape", "seam", "--plates", str(shot_dir["plates"]), "-o", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO_DIR, env={**os.environ, "PYTHONPATH": str(REPO_DIR)},
    )
    assert run.returncode == 0, run.stderr
    assert f"new Roto node: {out}" in run.stdout and out.is_file()


def test_protocol_command_writes_paste_ready_nodes(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    args = {"script": str(shot_dir["script"]), "roto_node": "Roto1", "shapes": ["eye_L"],
            "plate": shot_dir["plates"], "first": FIRST, "last": FIRST + FRAMES - 1, "vectors": "",
            "out_dir": str(tmp_path / "M2R1_v3"), "node_prefix": "M2R1", "node_version": 3}
    outputs = run_request(make_request("motion2roto", args))
    assert outputs["node_count"] == 1 and isinstance(outputs["flagged_frames"], list)
    nk = Path(outputs["nk"])
    assert "Roto {" in nk.read_text() and "Root {" not in nk.read_text()
    assert "M2R1_roto_v3" in _read_roto_names(nk)
    assert json.loads(Path(outputs["report"]).read_text())["output_node"] == "M2R1_roto_v3"


def _read_roto_names(path: Path) -> List[str]:
    return [n.name for n in read_script(path).nodes if n.node_class == "Roto"]


class CancelAfter:
    """A Progress that asks to stop after ``n`` updates."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def update(self, done: int, total: int, message: str = "") -> None:
        self.seen += 1

    @property
    def cancelled(self) -> bool:
        return self.seen >= self.n


def test_a_cancel_leaves_nothing_behind(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    from seamroto.errors import CancelledError

    for n in (3, FRAMES + 4):  # while reading the plates, then while propagating
        with pytest.raises(CancelledError):
            motion2roto(shot_dir["script"], "Roto1", [], shot_dir["plates"], tmp_path / "c.nk", progress=CancelAfter(n))
        assert list(tmp_path.iterdir()) == []


def test_cli_replacement_pieces_are_named_checked_or_switched_off(
    shot_dir: Dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import seamroto.motion2roto as m2r

    seen: List[object] = []
    real = m2r.propagate_shapes

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs["params"].replacement_shapes)  # type: ignore[attr-defined]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(m2r, "propagate_shapes", spy)
    base = ["-q", "motion2roto", str(shot_dir["script"]), "--roto", "Roto1", "--shape", "nose",
            "--plates", str(shot_dir["plates"])]
    assert cli.run(base + ["--replacement", "nose", "-o", str(tmp_path / "a.nk")]) == cli.EXIT_OK
    assert cli.run(base + ["--no-replacement", "-o", str(tmp_path / "b.nk")]) == cli.EXIT_OK
    assert cli.run(base + ["-o", str(tmp_path / "c.nk")]) == cli.EXIT_OK
    assert seen == [("nose",), (), None]
    with pytest.raises(ShapeNotFoundError, match="no shape 'mouht'"):
        motion2roto(shot_dir["script"], "Roto1", ["nose"], shot_dir["plates"], tmp_path / "d.nk",
                    params=PropagationParams(replacement_shapes=("mouht",)))


def test_the_replacement_arg_reads_auto_none_or_names() -> None:
    from seamroto.errors import ProtocolError
    from seamroto.motion2roto import replacement_shapes_from

    assert replacement_shapes_from(None) is None
    assert replacement_shapes_from("auto") is None and replacement_shapes_from("  ") is None
    assert replacement_shapes_from("none") == ()
    assert replacement_shapes_from("mouth  jaw") == ("mouth", "jaw")
    assert replacement_shapes_from(["mouth"]) == ("mouth",)
    with pytest.raises(ProtocolError):
        replacement_shapes_from(3)


def test_protocol_replacement_names_are_checked_against_the_node(shot_dir: Dict[str, object], tmp_path: Path) -> None:
    args = {"script": str(shot_dir["script"]), "roto_node": "Roto1", "shapes": ["nose"],
            "plate": shot_dir["plates"], "first": FIRST, "last": FIRST + FRAMES - 1, "vectors": "",
            "replacement": "mouht", "out_dir": str(tmp_path / "M2R1_v1"), "node_prefix": "M2R1", "node_version": 1}
    with pytest.raises(ShapeNotFoundError, match="no shape 'mouht'"):
        run_request(make_request("motion2roto", args))
    assert not (tmp_path / "M2R1_v1").exists()
