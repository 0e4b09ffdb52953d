"""The .nk reader on every real Nuke-saved file in ../shared/reference/nk/ (see its README/FORMAT.md).

Expected counts, key frames and values come from that README and FORMAT.md; hex values are
decoded here with struct so the test does not trust the reader's own number parser.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, List

import pytest

from seamroto.datamodel import RotoShape
from seamroto.errors import NkNodeNotFoundError
from seamroto.nk.inspect import format_inspect, inspect_script
from seamroto.nk.reader import (
    NkScript,
    find_node,
    node_format,
    read_node_shot,
    read_script,
    roto_shapes,
    tracker_tracks,
)

FANCYGRAD = "arcadeperfect__fancygrad.nk"
SPLINEWARP = "franklinvfx__ROTO_SPLINEWARP_LINK.nk"
SQUAREGRID = "hellothisistim__SquareGrid.nk"
INTERNETIMAGERY = "internetimagery__track-to-attribute_test_nuke.nk"
THARUN = "tharunganapathi__for_manooj_v003.nk"
VINCANNES = "vincannes__083_060-cmp-base-v016.EXCERPT.nk"
SMOKE = "wulifang__smoke.nk"
ALL_FILES = [FANCYGRAD, SPLINEWARP, SQUAREGRID, INTERNETIMAGERY, THARUN, VINCANNES, SMOKE]

# Heights used for the y flip where the script has no Root format (clipboard/toolset files).
HEIGHT_FANCYGRAD = 1080.0  # Root layer centre (1440, 540)
HEIGHT_SMOKE = 1152.0  # the Read nodes feeding the Roto nodes are 2048x1152
HEIGHT_SPLINEWARP = 1152.0  # Root layer centre (1024, 576)

# Tolerances: values are float32 in the file and compared as decoded float32.
TOL_PX = 1e-4


def hexf(token: str) -> float:
    """Nuke roto hex float, decoded independently of seamroto.nk.numbers."""
    return float(struct.unpack(">f", bytes.fromhex(token[1:]))[0])


@pytest.fixture(scope="module")
def scripts(nk_reference_dir: Path) -> Dict[str, NkScript]:
    return {name: read_script(nk_reference_dir / name) for name in ALL_FILES}


def shapes_by_node(script: NkScript, height: float) -> Dict[str, List[RotoShape]]:
    return {
        n.path: roto_shapes(script, n, height)
        for n in script.nodes
        if n.node_class in ("Roto", "RotoPaint")
    }


def test_every_reference_file_is_listed(nk_reference_dir: Path) -> None:
    assert sorted(p.name for p in nk_reference_dir.glob("*.nk")) == sorted(ALL_FILES)


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_file_parses_and_inspects(nk_reference_dir: Path, name: str) -> None:
    d = inspect_script(nk_reference_dir / name)
    assert d["nodes"], name
    for node in d["nodes"]:
        assert set(node) >= {"class", "name", "shapes", "tracks"}
        # Only the truncated excerpt Tracker4 has a node-level warning.
        if not (name == VINCANNES and node["class"] == "Tracker4"):
            assert node["warnings"] == [], (name, node["name"], node["warnings"])
    text = format_inspect(d)
    assert "NODE" in text and d["nodes"][0]["name"] in text


# ------------------------------------------------------------------------- smoke (Nuke 10.0)


def test_smoke_roto_nodes_and_keys(scripts: Dict[str, NkScript]) -> None:
    s = scripts[SMOKE]
    assert s.version == "10.0 v4"
    assert s.root is None and s.format is None and s.frame_range is None
    shapes = shapes_by_node(s, HEIGHT_SMOKE)
    assert len(shapes) == 7
    flat = [sh for group in shapes.values() for sh in group]
    assert len(flat) == 7
    animated = [sh for sh in flat if len(sh.keys) > 1]
    assert len(animated) == 4
    assert all(3 <= len(sh.keys) <= 6 for sh in animated)
    assert sorted({sh.point_count for sh in flat}) == [6, 15]
    assert all(sh.closed for sh in flat)
    assert shapes["Roto11"][0].key_frames == [1, 23, 36]


def test_smoke_decoded_point_and_animated_feather(scripts: Dict[str, NkScript]) -> None:
    s = scripts[SMOKE]
    shape = roto_shapes(s, find_node(s, "Roto11"), HEIGHT_SMOKE)[0]
    assert shape.point_count == 6
    # Point 0 centre X keys: x44aae3d6 x44c8f706 x44be9fca; Y: x437cf23a x4404e3ae x43575b40.
    for frame, xs, ys in ((1, "x44aae3d6", "x437cf23a"), (23, "x44c8f706", "x4404e3ae"),
                          (36, "x44be9fca", "x43575b40")):
        p = shape.keys[frame][0]
        assert p.x == pytest.approx(hexf(xs), abs=TOL_PX)
        assert p.y == pytest.approx(HEIGHT_SMOKE - hexf(ys), abs=TOL_PX)
        assert p.left == (0.0, 0.0)
    # Point 1: left tangent is the run {x 2 {x41e00000 -}} then x41e14f80 (28, 28, 28.16).
    assert [shape.keys[f][1].left[0] for f in (1, 23, 36)] == pytest.approx(
        [28.0, 28.0, hexf("x41e14f80")]
    )
    assert [shape.keys[f][1].left[1] for f in (1, 23, 36)] == pytest.approx(
        [2.0, 2.0, -hexf("xc0631480")]  # y offsets change sign
    )
    # The feather cc is animated: point 0 feather offset X keys x4338dfa0 x43371a78 x433a4f30.
    fx = [shape.keys[f][0].feather[0] for f in (1, 23, 36)]
    assert fx == pytest.approx([hexf("x4338dfa0"), hexf("x43371a78"), hexf("x433a4f30")])
    fy = [shape.keys[f][0].feather[1] for f in (1, 23, 36)]
    assert fy == pytest.approx([-hexf("xc0da91c8"), -hexf("x43b8ce30"), -hexf("xc1905d40")])


def test_smoke_non_utf8_bytes_survive(nk_reference_dir: Path, scripts: Dict[str, NkScript]) -> None:
    s = scripts[SMOKE]
    assert any("UTF-8" in w for w in s.warnings)
    read19 = find_node(s, "Read19")
    raw = read19.knobs["mov32_codec"].encode("utf-8", "surrogateescape")
    assert raw in (nk_reference_dir / SMOKE).read_bytes()


def test_smoke_read_nodes(scripts: Dict[str, NkScript]) -> None:
    s = scripts[SMOKE]
    shot = read_node_shot(s, find_node(s, "Read1"))  # written as a clone
    assert shot.plates == "Z:/QQFC2017/Render/SC_042/QQFC_sc042_BG/QQFC_sc042_BG.####.exr"
    assert (shot.first, shot.last, shot.width, shot.height) == (1, 74, 1920, 1080)
    shot19 = read_node_shot(s, find_node(s, "Read19"))
    assert (shot19.width, shot19.height, shot19.last) == (2048, 1152, 537)


# ---------------------------------------------------------------- ROTO_SPLINEWARP_LINK (7.0)


def test_splinewarp_link_roto(scripts: Dict[str, NkScript]) -> None:
    s = scripts[SPLINEWARP]
    assert s.version == "7.0 v8"
    roto = find_node(s, node_class="Roto")
    (shape,) = roto_shapes(s, roto, HEIGHT_SPLINEWARP)
    assert shape.name == "Bezier1" and shape.closed and shape.layer == ()
    assert shape.point_count == 5
    assert shape.key_frames == [1, 10, 16, 23, 37, 51, 60]
    # idem feather: no offsets, feather tangents follow the main ones.
    for pts in shape.keys.values():
        for p in pts:
            assert p.feather == (0.0, 0.0)
            assert p.feather_left is None and p.feather_right is None
    p0 = shape.keys[1][0]
    assert (p0.x, p0.y) == pytest.approx((626.0, HEIGHT_SPLINEWARP - 831.0))
    # Point 4 is stored with per-curve {f 36864} flags; its left tangent X ends in a run {x 2 {0 -}}.
    p4 = shape.keys[1][4]
    assert (p4.x, p4.y) == pytest.approx((hexf("x44864000"), HEIGHT_SPLINEWARP - hexf("x4469c000")))
    assert p4.left[0] == pytest.approx(hexf("xc2ee0000"))
    assert shape.keys[51][4].left[0] == 0.0 and shape.keys[60][4].left[0] == 0.0
    # Point 0 left tangent X: {x 4 {0 -}} {x427fdf3c -} {x 2 {0 -}} -> only key 5 (frame 37) non-zero.
    assert [shape.keys[f][0].left[0] for f in shape.key_frames] == pytest.approx(
        [0, 0, 0, 0, hexf("x427fdf3c"), 0, 0]
    )


def test_splinewarp_node_has_no_roto_shapes(scripts: Dict[str, NkScript]) -> None:
    s = scripts[SPLINEWARP]
    warp = find_node(s, node_class="SplineWarp3")
    assert roto_shapes(s, warp, HEIGHT_SPLINEWARP) == []  # cubiccurve pins only
    assert "=Roto5.curves.Bezier1.curve_points.0.main.x" in warp.knobs["curves"]


# ---------------------------------------------------------------------- vincannes (13.2 v8)


def test_vincannes_nodes_root_and_truncation(scripts: Dict[str, NkScript]) -> None:
    s = scripts[VINCANNES]
    assert s.version == "13.2 v8"
    assert s.format is not None
    assert (s.format.width, s.format.height, s.format.pixel_aspect) == (3840, 2160, 1.0)
    assert s.format.name == "sharks"
    assert s.frame_range == (991, 1062)
    classes = [n.node_class for n in s.nodes]
    assert classes.count("Roto") == 8
    assert classes.count("RotoPaint") == 2
    assert classes.count("Tracker4") == 1
    tracker = find_node(s, node_class="Tracker4")
    assert tracker.truncated
    assert any("Tracker4" in w and "closing" in w for w in s.warnings)
    # The blocks after the truncated one are still read.
    assert find_node(s, "Roto5").line > tracker.line


def test_vincannes_tracker(scripts: Dict[str, NkScript]) -> None:
    s = scripts[VINCANNES]
    tracker = find_node(s, node_class="Tracker4")
    fmt = node_format(s, tracker)
    assert fmt is not None and fmt.height == 2160
    (track,) = tracker_tracks(s, tracker, fmt.height)
    assert track.name == "track 1"
    assert track.frames == list(range(1001, 1053))
    assert all(smp.keyed for smp in track.samples.values())
    assert track.samples[1001].x == pytest.approx(2224.0)
    assert track.samples[1002].x == pytest.approx(2224.851074)


def test_vincannes_shapes(scripts: Dict[str, NkScript]) -> None:
    s = scripts[VINCANNES]
    h = 2160.0
    shapes = shapes_by_node(s, h)
    assert shapes["RotoPaint1"] == [] and shapes["RotoPaint2"] == []  # clone strokes only
    roto = {k: v for k, v in shapes.items() if k.startswith("Roto") and "Paint" not in k}
    assert len(roto) == 8
    assert all(len(v) == 1 for v in roto.values())
    animated = [v[0] for v in roto.values() if len(v[0].keys) > 1]
    assert len(animated) == 7
    assert max(len(sh.keys) for sh in animated) == 25
    roto3 = roto["Roto3"][0]
    assert roto3.key_frames == [991, 1001, 1027, 1041, 1052, 1055, 1058, 1062]
    # {{x 7 {x43060000 -}} x43060000}: 7 run entries + the bare last value.
    for pts in roto3.keys.values():
        assert pts[0].left == pytest.approx((134.0, -54.0))
    last = roto3.keys[1062][0]
    assert last.x == pytest.approx(hexf("x4428ccca"))
    assert last.y == pytest.approx(h - hexf("x446f6665"))
    assert roto3.keys[991][0].x == pytest.approx(hexf("x43b99994"))


def test_vincannes_static_untimed_shape(scripts: Dict[str, NkScript]) -> None:
    s = scripts[VINCANNES]
    h = 2160.0
    (shape,) = roto_shapes(s, find_node(s, "Roto12"), h)
    assert shape.key_frames == [991]  # no key times: keyed at its ltn (drawn-on) frame
    assert shape.point_count == 7
    p0 = shape.keys[991][0]
    assert p0.left == pytest.approx((hexf("x42bdccd0"), -hexf("x42910620")))
    assert (p0.x, p0.y) == pytest.approx((hexf("x44f6ea99"), h - hexf("x44f71dc4")))
    # The feather cc holds {} centre slots and the main tangents.
    assert p0.feather == (0.0, 0.0)
    assert p0.feather_left is None and p0.feather_right is None


# ---------------------------------------------------------------------- fancygrad (15.0 v4)


def test_fancygrad_groups_and_duplicate_names(scripts: Dict[str, NkScript]) -> None:
    s = scripts[FANCYGRAD]
    rotos = [n for n in s.nodes if n.node_class == "Roto"]
    assert sorted(n.path for n in rotos) == [
        "FancyGrad.iblur_matte.Roto36",
        "FancyGrad.iblur_matte.Roto37",
        "FancyGrad.iblur_patch.Roto36",
        "FancyGrad.iblur_patch.Roto37",
    ]
    assert find_node(s, "FancyGrad").group == ()
    assert find_node(s, "iblur_matte").group == ("FancyGrad",)
    with pytest.raises(NkNodeNotFoundError, match="FancyGrad.iblur_patch.Roto36"):
        find_node(s, "Roto36")
    node = find_node(s, "FancyGrad.iblur_patch.Roto36")
    assert node.group == ("FancyGrad", "iblur_patch")
    assert find_node(s, "Roto37", group=("FancyGrad", "iblur_matte")).node_class == "Roto"
    with pytest.raises(NkNodeNotFoundError, match="Roto nodes in the script"):
        find_node(s, "Roto99", node_class="Roto")


def test_fancygrad_single_key_points(scripts: Dict[str, NkScript]) -> None:
    s = scripts[FANCYGRAD]
    h = HEIGHT_FANCYGRAD
    bezier = roto_shapes(s, find_node(s, "FancyGrad.iblur_matte.Roto36"), h)[0]
    assert bezier.name == "Bezier1" and bezier.key_frames == [1065] and bezier.point_count == 4
    p0 = bezier.keys[1065][0]
    assert (p0.x, p0.y) == (366.0, h - 218.0)
    assert p0.left == pytest.approx((hexf("x3e752008"), -hexf("xbffe2824")))  # (0.239, 1.986)
    assert p0.right == pytest.approx((hexf("xbe754003"), -hexf("x3ffe2920")))
    assert p0.feather == (0.0, 0.0)
    p2 = bezier.keys[1065][2]
    assert p2.feather == (50.0, -596.0)
    # Feather tangents of point 2 differ slightly from the main ones and are kept.
    assert p2.feather_left == pytest.approx((hexf("x405b0a13"), -hexf("xc13ac91d")))
    rect = roto_shapes(s, find_node(s, "FancyGrad.iblur_matte.Roto37"), h)[0]
    assert rect.name == "Rectangle1" and rect.point_count == 4 and rect.key_frames == [1065]
    assert rect.keys[1065][0].left == pytest.approx((0.0, hexf("x43b95560")))
    assert all(p.feather == (0.0, 0.0) for p in rect.keys[1065])


# ------------------------------------------------------------------ internetimagery (8.0 v1)


def test_internetimagery_three_tracks(scripts: Dict[str, NkScript]) -> None:
    s = scripts[INTERNETIMAGERY]
    tracker = find_node(s, node_class="Tracker4")
    fmt = node_format(s, tracker)  # from Read1 upstream, not the 2K Root format
    assert fmt is not None and (fmt.width, fmt.height) == (1920, 1080)
    tracks = tracker_tracks(s, tracker, fmt.height)
    assert [t.name for t in tracks] == ["nappy", "mower", "TEST"]
    nappy, mower, test = tracks
    assert len(nappy.samples) == 304 and nappy.frames[0] == 13 and nappy.frames[-1] == 316
    assert len(mower.samples) == 182 and mower.frames == list(range(1, 183))
    assert len(test.samples) == 131
    assert test.frames == list(range(-39, 91)) + [95]
    assert nappy.samples[13].x == pytest.approx(1034.267456)
    assert mower.samples[1].x == pytest.approx(717.8671265)
    assert mower.samples[1].y == pytest.approx(1080.0 - 632.3905029)
    assert all(smp.keyed for t in tracks for smp in t.samples.values())


def test_internetimagery_read_and_root(scripts: Dict[str, NkScript]) -> None:
    s = scripts[INTERNETIMAGERY]
    assert s.format is not None and (s.format.width, s.format.height) == (2048, 1556)
    assert s.frame_range == (1, 615)
    shot = read_node_shot(s, find_node(s, "Read1"))
    assert shot.plates == "D:/Dropbox/MOV_0037.mp4"
    assert (shot.first, shot.last, shot.width, shot.height) == (1, 615, 1920, 1080)


# ------------------------------------------------------------------- SquareGrid (14.1 v3)


def test_squaregrid_track_in_group(scripts: Dict[str, NkScript]) -> None:
    s = scripts[SQUAREGRID]
    tracker = find_node(s, node_class="Tracker4")
    assert tracker.group == ("Group1",) and tracker.name == "Tracker_buildingTop"
    (track,) = tracker_tracks(s, tracker, 1080.0)
    assert track.name == "track 1"
    assert len(track.samples) == 181 and track.frames[0] == 1001 and track.frames[-1] == 1181
    assert track.samples[1001].x == pytest.approx(1293.084961)
    # Python in a knob is data: kept as text, never run.
    assert "[python -execlocal" in find_node(s, "stable_buildingTop").knobs["invert"]


# --------------------------------------------------------------- tharunganapathi (12.2 v11)


def test_tharunganapathi_trackers_and_ellipse(scripts: Dict[str, NkScript]) -> None:
    s = scripts[THARUN]
    assert s.format is not None
    assert (s.format.width, s.format.height, s.format.pixel_aspect) == (2048, 1152, 1.0)
    assert s.frame_range == (1, 80)
    trackers = [n for n in s.nodes if n.node_class == "Tracker4"]
    assert [n.name for n in trackers] == ["Tracker1", "Tracker4"]
    (expr_track,) = tracker_tracks(s, trackers[0], 1152.0)
    # {translate.x+center.x x68 0}: the expression is not evaluated, its stored key is kept.
    assert expr_track.frames == [68]
    assert (expr_track.samples[68].x, expr_track.samples[68].y) == (0.0, 1152.0)
    (baked,) = tracker_tracks(s, trackers[1], 1152.0)  # {curve R x1 124 147.8 ...}
    assert baked.frames == list(range(1, 81))
    assert baked.samples[1].x == 124.0 and baked.samples[2].x == pytest.approx(147.8178406)
    (ellipse,) = roto_shapes(s, find_node(s, "Roto1"), 1152.0)
    assert ellipse.name == "Ellipse1" and ellipse.closed
    assert ellipse.key_frames == [1] and ellipse.point_count == 4
    p0 = ellipse.keys[1][0]
    assert (p0.x, p0.y) == pytest.approx((hexf("x42f9fff8"), 1152.0 - hexf("x43485580")))
    assert p0.left == pytest.approx((hexf("xc1ff6848"), 0.0))


def test_inspect_counts_match_readme(nk_reference_dir: Path) -> None:
    d = inspect_script(nk_reference_dir / INTERNETIMAGERY)
    (tracker,) = [n for n in d["nodes"] if n["class"] == "Tracker4"]
    assert [(t["name"], len(t["key_frames"])) for t in tracker["tracks"]] == [
        ("nappy", 304),
        ("mower", 182),
        ("TEST", 131),
    ]
    d = inspect_script(nk_reference_dir / SPLINEWARP)
    (roto,) = [n for n in d["nodes"] if n["class"] == "Roto"]
    assert roto["shapes"] == [
        {"name": "Bezier1", "closed": True, "points": 5, "key_frames": [1, 10, 16, 23, 37, 51, 60]}
    ]
    assert [n["shapes"] for n in d["nodes"] if n["class"] == "SplineWarp3"] == [[]]
