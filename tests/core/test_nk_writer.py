"""Unit checks of the .nk writer: escaping, name rules, knob validation, number and curve forms."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List

import pytest

from seamroto.datamodel import ControlPoint, LandmarkSample, LandmarkTrack, RotoShape, Shot
from seamroto.errors import NkWriteError
from seamroto.nk import writer


def _tri(frame: int = 1) -> RotoShape:
    pts = (ControlPoint(1, 2), ControlPoint(3, 4), ControlPoint(5, 6))
    return RotoShape("tri", True, {frame: pts})


# ---------------------------------------------------------------- strings and names


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("track 1", "track 1"),
        ('a "b"', 'a \\"b\\"'),
        ("[python nuke.delete()]", "\\[python nuke.delete()\\]"),
        ("$HOME {x} \\", "\\$HOME \\{x\\} \\\\"),
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("bell\x07nul\x00", "bellnul"),  # other control characters are dropped
        ("ünï 眉", "ünï 眉"),
    ],
)
def test_escape_string(text: str, escaped: str) -> None:
    assert writer.escape_string(text) == escaped
    assert writer.quote_string(text) == f'"{escaped}"'


def test_tcl_word_is_bare_only_when_plainly_safe() -> None:
    assert writer.tcl_word("/plates/a.####.exr") == "/plates/a.####.exr"
    assert writer.tcl_word("alpha") == "alpha"
    assert writer.tcl_word("all frames") == '"all frames"'
    assert writer.tcl_word("a;b") == '"a;b"'
    assert writer.tcl_word("") == '""'


def test_tcl_literal_keeps_labels_from_running_tcl() -> None:
    # stored label text keeps "\[" so Nuke's draw-time substitution shows "[" instead of running
    assert writer.tcl_literal("[python x] $y \\") == "\\[python x] \\$y \\\\"
    text = writer.write_backdrop("[python x]", 0, 0, 10, 10, 0x11223344)
    assert 'label "\\\\\\[python x\\]"' in text


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("Read1", "Read1"),
        ("my read", "my_read"),
        ("1st", "_1st"),
        ("a[b]$c", "a_b_c"),
        ("", "Node"),
        ("Root", "Root_1"),
        ("this", "this_1"),
        ("ü", "_"),
    ],
)
def test_sanitize_node_name(name: str, clean: str) -> None:
    assert writer.sanitize_node_name(name) == clean
    assert writer.NODE_NAME_RE.fullmatch(clean)


def test_sanitize_shape_name() -> None:
    assert writer.sanitize_shape_name("eye L {x}") == "eye_L_x_"
    assert writer.sanitize_shape_name("") == "Shape"
    assert writer.sanitize_shape_name("Root") == "Root_1"


def test_node_names_are_sanitized_in_write_helpers() -> None:
    shot = Shot("/p/a.####.exr", 1, 2, 4, 4)
    assert "\n name bad_name_\n" in writer.write_read(shot, name="bad name!")


# ---------------------------------------------------------------- write_node


def test_write_node_puts_name_before_graph_knobs() -> None:
    text = writer.write_node("Grade", "Grade1", [("white", "2"), ("xpos", "1"), ("ypos", "2")])
    assert text == "Grade {\n white 2\n name Grade1\n xpos 1\n ypos 2\n}\n"
    text = writer.write_node("NoOp", "NoOp1", [("inputs", "0")])
    assert text == "NoOp {\n inputs 0\n name NoOp1\n}\n"


def test_write_node_accepts_ofx_class_names() -> None:
    text = writer.write_node("OFXuk.co.thefoundry.furnace.f_wireremoval_v403", "Wire1", [])
    assert text.startswith("OFXuk.co.thefoundry.furnace.f_wireremoval_v403 {\n")


@pytest.mark.parametrize(
    ("cls", "name", "knobs"),
    [
        ("Bad Class", "N", []),
        ("Grade", "1bad", []),
        ("Grade", "G1\n", []),
        ("Grade\n", "G1", []),
        ("Grade", "G", [("white\n", "1")]),
        ("Grade", "Root", []),
        ("Grade", "G", [("bad knob", "1")]),
        ("Grade", "G", [("name", "X")]),
        ("Grade", "G", [("label", "")]),
        ("Grade", "G", [("label", "{a")]),
        ("Grade", "G", [("label", "a}")]),
        ("Grade", "G", [("label", "[python x]")]),
        ("Grade", "G", [("label", "$env")]),
        ("Grade", "G", [("label", "a\nb")]),
    ],
)
def test_write_node_refuses_unsafe_text(cls: str, name: str, knobs: list) -> None:
    with pytest.raises(NkWriteError):
        writer.write_node(cls, name, knobs)


def test_write_node_accepts_escaped_specials_and_multiline_braces() -> None:
    writer.write_node("Grade", "G", [("label", '"\\[x\\] \\$y \\{"'), ("curve", "{a\nb}")])


# ---------------------------------------------------------------- script


def test_write_script_is_a_clipboard_script(tmp_path: Path) -> None:
    node = writer.write_node("NoOp", "NoOp1", [])
    text = writer.write_script(
        [node, writer.stack_set("N1"), writer.stack_push("N1"), node.rstrip("\n")]
    )
    assert text.startswith("set cut_paste_input [stack 0]\nversion 13.2 v8\npush $cut_paste_input\n")
    assert "set N1 [stack 0]\npush $N1\n" in text and text.endswith("}\n")
    path = writer.write_script_file(tmp_path / "out" / "paste.nk", text)
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in path.parent.iterdir()] == ["paste.nk"]  # no temp file left


@pytest.mark.parametrize("version", ["13.2", "v8", "13.2 v8; exec", "15.0 v4\n", "15.0 v4\nls"])
def test_write_script_refuses_bad_versions(version: str) -> None:
    with pytest.raises(NkWriteError):
        writer.write_script([], version=version)


def test_stack_helpers_refuse_bad_names() -> None:
    with pytest.raises(NkWriteError):
        writer.stack_set("a b")
    with pytest.raises(NkWriteError):
        writer.stack_push("$x")
    with pytest.raises(NkWriteError):
        writer.stack_push("N1\n")


# ---------------------------------------------------------------- Read and Backdrop


def test_read_node_knobs() -> None:
    shot = Shot("/plates/sh 010/a.####.exr", 1001, 1010, 1920, 1080, pixel_aspect=1.0)
    text = writer.write_read(shot, colorspace="ACES - ACEScg", format_name="HD_1080")
    assert text == (
        "Read {\n inputs 0\n file \"/plates/sh 010/a.####.exr\"\n"
        ' format "1920 1080 0 0 1920 1080 1 HD_1080"\n first 1001\n last 1010\n'
        " origfirst 1001\n origlast 1010\n origset true\n colorspace \"ACES - ACEScg\"\n"
        " name Read1\n xpos 0\n ypos 0\n}\n"
    )
    assert "colorspace" not in writer.write_read(shot)


@pytest.mark.parametrize("plates", ["/p/[getenv X]/a.exr", "/p/$SHOT/a.exr"])
def test_read_refuses_paths_nuke_would_evaluate(plates: str) -> None:
    with pytest.raises(NkWriteError) as info:
        writer.write_read(Shot(plates, 1, 2, 4, 4))
    assert info.value.knob == "file"


def test_format_name_must_not_split() -> None:
    with pytest.raises(NkWriteError):
        writer.write_read(Shot("/p/a.exr", 1, 2, 4, 4), format_name="my format")


def test_out_of_range_track_position_is_an_nk_write_error() -> None:
    for bad in (math.nan, 1e300):
        track = LandmarkTrack("t", {1: LandmarkSample(bad, 0.0)})
        with pytest.raises(NkWriteError):
            writer.write_tracker([track], height=10)


def test_backdrop_colour_forms() -> None:
    assert "tile_color 0x11223344" in writer.write_backdrop("x", 0, 0, 1, 1, 0x11223344)
    assert "tile_color 0xff0000ff" in writer.write_backdrop("x", 0, 0, 1, 1, (1.0, 0.0, 0.0))
    with pytest.raises(NkWriteError):
        writer.write_backdrop("x", 0, 0, 1, 1, 1 << 33)


# ---------------------------------------------------------------- Tracker4 cells


def test_track_curve_writes_x_where_nuke_would_extrapolate_elsewhere() -> None:
    # Nuke places an omitted frame at prev + (prev - prevprev): after x0, x2 the next is 4,
    # after x5, x9 it is 13 (so 10 needs its x again, like Nuke's own "x94 974 x95 961")
    samples = {f: LandmarkSample(float(f), 0.0) for f in (0, 2, 4, 5, 9, 10)}
    text = writer.write_tracker([LandmarkTrack("t", samples)], height=100)
    assert "{curve x0 0 x2 2 4 x5 5 x9 9 x10 10}" in text


def test_tracker_error_from_confidence_and_frame_window() -> None:
    samples = {f: LandmarkSample(1.0, 1.0, c) for f, c in ((1, 1.0), (2, 0.75), (3, 0.5))}
    text = writer.write_tracker([LandmarkTrack("t", samples)], height=10, first=2, last=2)
    assert "{curve K x2 1}" in text and "{curve x2 1}" in text
    assert "{curve x2 0.25} 0.25 0.25" in text
    assert "\n reference_frame 2\n" in text


def test_tracker_rows_have_31_cells_even_without_samples() -> None:
    text = writer.write_tracker([LandmarkTrack("empty", {})], height=10)
    row = text.split("\n { ", 1)[1].split("\n", 1)[0]
    assert row.count("{curve}") == 14  # x, y, error, key_track and 10 key boxes
    assert writer.tracks_knob_value([]).startswith("{ { 1 31 0 } \n")


# ---------------------------------------------------------------- Roto


def test_roto_number_forms() -> None:
    assert writer._roto_number(0.0, False, "t") == "0"
    assert writer._roto_number(-0.0, False, "t") == "0"
    assert writer._roto_number(1.0, False, "t") == "1"
    assert writer._roto_number(1065.0, False, "t") == "x44852000"
    assert writer._roto_number(3000.123456, False, "t") == "3000.123456"
    assert writer._roto_number(3000.123456, True, "t").startswith("x")
    assert writer._roto_number(-3000.5, False, "t") == "xc53b8800"  # exact in float32: hex
    for bad in (math.nan, math.inf, 1e39):
        with pytest.raises(NkWriteError):
            writer._roto_number(bad, False, "t")


def test_format_tree_layout_rules() -> None:
    tree: List[writer.Tree] = [["a", ["b", "c"], "d", ["e"]]]
    assert writer.format_tree(tree) == "{{a\n  {b c} d\n  {e}}}"
    # a word after a list always gets a space, even at depth 1
    assert writer.format_tree([["x"], "y"]) == "{{x} y}"


def test_roto_refuses_bad_shapes() -> None:
    with pytest.raises(NkWriteError):
        writer.write_roto([RotoShape("s", True, {})], width=10, height=10)
    with pytest.raises(NkWriteError):
        writer.write_roto([RotoShape("s", True, {1: ()})], width=10, height=10)
    uneven = RotoShape("s", True, {1: (ControlPoint(0, 0),), 2: (ControlPoint(0, 0),) * 2})
    with pytest.raises(NkWriteError) as info:
        writer.write_roto([uneven], width=10, height=10)
    assert info.value.frame == 2
    nan = RotoShape("s", True, {1: (ControlPoint(math.nan, 0),)})
    with pytest.raises(NkWriteError):
        writer.write_roto([nan], width=10, height=10)


def test_roto_y_flip_and_relative_handles() -> None:
    shape = RotoShape(
        "s", True, {1: (ControlPoint(10.0, 30.0, (-2.0, 4.0), (2.0, -4.0), (0.0, 3.0)),)}
    )
    curves = writer.curves_knob_value([shape], width=64, height=100)
    # y_nuke = 100 - 30 = 70; handles and feather offsets change sign in y
    assert "{xc0000000 xc0800000}\n        {x41200000 x428c0000}\n        {x40000000 x40800000}}" in curves
    assert "{0 xc0400000}" in curves


def test_roto_connected_input_has_no_format() -> None:
    text = writer.write_roto([_tri()], width=10, height=10, connect_input=True)
    assert "inputs 0" not in text and "format" not in text and "cliptype" not in text
    text = writer.write_roto([_tri()], width=10, height=10)
    assert '\n inputs 0\n format "10 10 0 0 10 10 1 "\n' in text


def test_layer_names_are_unique_across_the_tree() -> None:
    shapes = [
        RotoShape("eyes", True, {1: (ControlPoint(0, 0),)}, layer=("face", "eyes")),
        RotoShape("x", True, {1: (ControlPoint(0, 0),)}, layer=("mouth", "eyes")),
        RotoShape("y", True, {1: (ControlPoint(0, 0),)}, layer=("face", "eyes")),
    ]
    assert writer.element_names(shapes) == [
        (("face", "eyes"), "eyes_2"),
        (("mouth", "eyes_3"), "x"),
        (("face", "eyes"), "y"),
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{a} }", "unbalanced '}'"),
        ("{a {b}", "unbalanced '{'"),
        ("{a}\nb", "newline outside braces"),
        ("{x [exec rm]}", "run Tcl"),
        ("{$env}", "run Tcl"),
    ],
)
def test_knob_text_that_would_break_the_script_is_refused(value: str, problem: str) -> None:
    with pytest.raises(NkWriteError, match=problem.replace("[", r"\[")):
        writer.write_node("NoOp", "n", [("label", value)])


def test_escaped_and_multiline_knob_text_is_accepted() -> None:
    big = "{" + "{x3f800000 -} " * 5000 + "}"
    text = writer.write_node("NoOp", "n", [("label", "{a\n\\[b\\] é}"), ("curves", big)])
    assert "\\[b\\]" in text and text.count("x3f800000") == 5000
