"""The .nk tokenizer and reader on small hand-written scripts: every grammar form and error path."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import List, Optional

import pytest

from seamroto.datamodel import RotoShape
from seamroto.errors import NkNodeNotFoundError, NkParseError, SeamRotoError
from seamroto.nk.inspect import format_frames, format_inspect, inspect_script
from seamroto.nk.reader import (
    MAX_WARNINGS,
    NkScript,
    find_node,
    node_format,
    parse_anim_curve,
    parse_format,
    parse_script,
    read_node_shot,
    read_script,
    roto_shapes,
    tracker_tracks,
)
from seamroto.nk.tokens import (
    MAX_TREE_DEPTH,
    WORD_BARE,
    WORD_BRACE,
    WORD_QUOTE,
    decode_nk,
    iter_commands,
    parse_tree,
    unescape_tcl,
    word_value,
)

H = 100.0  # format height for the y flip in these tests


# ------------------------------------------------------------------------------- tokenizer


def test_commands_words_and_lines() -> None:
    text = 'a 1\n\tb "x \\"y\\" \\[z]"\nc {p {q}\n r}\n# note\nd [stack 0] \\\n e\n'
    cmds = list(iter_commands(text))
    assert [c.comment for c in cmds] == [False, False, False, True, False]
    a, b, c, comment, d = cmds
    assert [w.value for w in a.words] == ["a", "1"] and a.line == 1
    assert b.words[1].kind == WORD_QUOTE and b.words[1].value == 'x "y" [z]' and b.line == 2
    assert c.words[1].kind == WORD_BRACE and c.words[1].value == "p {q}\n r" and c.line == 3
    assert text[c.words[1].start : c.words[1].end] == "{p {q}\n r}"
    assert comment.line == 5
    assert [w.value for w in d.words] == ["d", "[stack 0]", "e"] and d.line == 6
    assert d.words[0].kind == WORD_BARE


def test_escaped_braces_and_brackets_with_braces() -> None:
    (cmd,) = iter_commands("k {a \\} b} [python {x ]}] z")
    assert [w.value for w in cmd.words] == ["k", "a \\} b", "[python {x ]}]", "z"]


def test_unterminated_words_are_incomplete_not_errors() -> None:
    for text in ("k {a {b}", 'k "abc', "k [stack 0"):
        cmds = list(iter_commands(text))
        assert len(cmds) == 1 and not cmds[0].complete, text


def test_unescape_tcl() -> None:
    assert unescape_tcl(r"a\nb\tc\\d\x41\u00e9\101\q") == "a\nb\tc\\dAéAq"
    assert unescape_tcl("line\\\n   next") == "line next"
    assert unescape_tcl("end\\") == "end\\"


def test_decode_keeps_non_utf8_bytes() -> None:
    raw = b"note_font \xce\xa2\xc8\xed\n"  # GBK bytes
    text, bad = decode_nk(raw)
    assert bad == 1
    assert text.encode("utf-8", "surrogateescape") == raw
    assert decode_nk("\ufeffabc") == ("abc", None)


def test_parse_tree_nesting_quotes_and_errors() -> None:
    assert parse_tree('a {b {c d}} "e f" {}') == ["a", ["b", ["c", "d"]], "e f", []]
    with pytest.raises(NkParseError) as err:
        parse_tree("a\n{b\n{c}")
    assert err.value.line == 2
    with pytest.raises(NkParseError):
        parse_tree("a }")
    with pytest.raises(NkParseError, match="nested"):
        parse_tree("{" * (MAX_TREE_DEPTH + 5) + "}" * (MAX_TREE_DEPTH + 5))


def test_word_value() -> None:
    assert word_value('"2048 1080 0 0 2048 1080 1 2K"') == "2048 1080 0 0 2048 1080 1 2K"
    assert word_value("{1 2}") == "1 2"
    assert word_value("{1} {2}") == "{1} {2}"
    assert word_value("plain") == "plain"


# ------------------------------------------------------------------------- script structure


GROUPS = """\
version 14.1 v3
Root {
 inputs 0
 format "640 480 0 0 640 480 1 PC_Video"
 first_frame 5
 last_frame 9
}
Read {
 inputs 0
 file plates/a.####.exr
 format "320 240 0 0 320 240 2 small"
 first 5
 last 9
 name Read1
}
set N1 [stack 0]
Group {
 name Outer
}
 Input {
  inputs 0
  name Input1
 }
 Roto {
  name Roto1
 }
 Group {
  name Inner
 }
  Roto {
   inputs 0
   name Roto1
  }
 end_group
end_group
push $N1
Tracker4 {
 name T1
}
"""


def test_groups_stack_and_root() -> None:
    s = parse_script(GROUPS, "/shots/a/comp.nk")
    assert s.warnings == []
    assert s.version == "14.1 v3"
    assert s.format is not None and (s.format.width, s.format.height) == (640, 480)
    assert s.frame_range == (5, 9) and s.fps == 24.0
    paths = [n.path for n in s.nodes]
    assert paths == ["Read1", "Outer", "Outer.Input1", "Outer.Roto1", "Outer.Inner",
                     "Outer.Inner.Roto1", "T1"]
    assert find_node(s, "T1").inputs == ("Read1",)
    assert find_node(s, "Outer").inputs == ("Read1",)
    # The Roto inside the group gets its format from the group's input, through Input1.
    fmt = node_format(s, find_node(s, "Outer.Roto1"))
    assert fmt is not None and (fmt.width, fmt.height, fmt.pixel_aspect) == (320, 240, 2.0)
    inner = find_node(s, "Outer.Inner.Roto1")
    fmt = node_format(s, inner)
    assert fmt is not None and fmt.height == 480  # inputs 0 -> Root format
    assert s.node_at(("Outer", "Inner"), "Roto1") is inner


def test_read_node_shot_paths_and_formats(tmp_path: Path) -> None:
    s = parse_script(GROUPS, str(tmp_path / "comp.nk"))
    shot = read_node_shot(s, find_node(s, "Read1"))
    assert shot.plates == os.path.normpath(str(tmp_path / "plates" / "a.####.exr"))
    assert (shot.first, shot.last, shot.width, shot.height, shot.pixel_aspect) == (5, 9, 320, 240, 2.0)
    text = (
        'Root {\n format "1000 500 0 0 1000 500 1 mine"\n}\n'
        "Read {\n file \"[file dirname [value root.name]]/p.%04d.exr\"\n format HD_1080\n"
        " colorspace \"default (ACEScg)\"\n name R1\n}\n"
        "Read {\n file C:/abs/p.exr\n format mine\n name R2\n}\n"
        "Read {\n file p.exr\n format unknown_name\n name R3\n}\n"
        "Read {\n file p.exr\n first {{root.first_frame}}\n name R4\n}\n"
        "Read {\n name R5\n}\n"
    )
    s = parse_script(text, str(tmp_path / "x.nk"))
    r1 = read_node_shot(s, find_node(s, "R1"))
    assert r1.plates == str(tmp_path).replace("\\", "/") + "/p.%04d.exr"
    assert (r1.width, r1.height, r1.colourspace) == (1920, 1080, "ACEScg")
    r2 = read_node_shot(s, find_node(s, "R2"))
    assert r2.plates == "C:/abs/p.exr" and (r2.width, r2.height) == (1000, 500)
    assert read_node_shot(s, find_node(s, "R3")).width == 1000  # unknown name -> Root format
    with pytest.raises(NkParseError, match="first") as err:
        read_node_shot(s, find_node(s, "R4"))
    assert err.value.knob == "first"
    with pytest.raises(NkParseError, match="file"):
        read_node_shot(s, find_node(s, "R5"))
    no_root = parse_script("Read {\n file a.exr\n}\n")
    with pytest.raises(NkParseError, match="format"):
        read_node_shot(no_root, no_root.nodes[0])


def test_parse_format_forms() -> None:
    assert parse_format("2048 1080 0 0 2048 1080 1 2K") is not None
    f = parse_format("2048 1080 0 0 2048 1080 1 2K")
    assert f is not None and (f.width, f.height, f.pixel_aspect, f.name) == (2048, 1080, 1.0, "2K")
    f = parse_format("720 576 1.09 PAL")
    assert f is not None and (f.width, f.pixel_aspect, f.name) == (720, 1.09, "PAL")
    f = parse_format("square_512")
    assert f is not None and (f.width, f.height) == (512, 512)
    assert parse_format("nonsense") is None and parse_format("0 0") is None


def test_truncated_node_at_eof_keeps_knobs() -> None:
    s = parse_script("Roto {\n name R\n curves {{{v x3f99999a}\n")
    (node,) = s.nodes
    assert node.truncated and node.name == "R" and "curves" not in node.knobs
    assert len(s.warnings) == 2  # dropped knob, unclosed node


def test_unclosed_node_recovers_at_next_block() -> None:
    text = "Tracker4 {\n tracks {1 2}\n# --- cut\nBlur {\n name Blur1\n}\nGrade {\n name G\n}\n"
    s = parse_script(text)
    assert [n.name for n in s.nodes] == ["Tracker1", "Blur1", "G"]
    assert s.nodes[0].truncated and "tracks" in s.nodes[0].knobs
    assert any("next node starts at line 3" in w for w in s.warnings)


def test_script_errors_and_warnings() -> None:
    with pytest.raises(NkParseError) as err:
        parse_script("Blur {\n name B\n}\n}\n", "x.nk")
    assert err.value.line == 4 and err.value.path == "x.nk"
    s = parse_script("frobnicate 1 2\nend_group\nGroup {\n name G\n}\n")
    assert len(s.warnings) == 3  # unknown command, stray end_group, unclosed Group
    s = parse_script("junk\n" * (MAX_WARNINGS + 10))
    assert len(s.warnings) == MAX_WARNINGS + 1 and s.warnings[-1].startswith("...")
    with pytest.raises(NkParseError):
        parse_script(12)  # type: ignore[arg-type]


def test_clone_and_duplicate_knobs() -> None:
    text = (
        "clone node7f|Blur|1 Blur {\n size 3\n name B1\n}\n"
        "clone $C7f {\n name B2\n}\n"
        "NoOp {\n addUserKnob {20 User}\n addUserKnob {7 k}\n \"extra matrix\" 1\n name N\n}\n"
    )
    s = parse_script(text)
    b2 = find_node(s, "B2")
    assert b2.node_class == "Blur" and b2.value("size") == "3"
    n = find_node(s, "N")
    assert [k for k, _ in n.items].count("addUserKnob") == 2
    assert n.knobs["extra matrix"] == "1"


def test_unnamed_nodes_get_nuke_style_names() -> None:
    s = parse_script("Tracker4 {\n}\nTracker4 {\n}\nBlur {\n name Tracker1\n}\n")
    assert sorted(n.name for n in s.nodes) == ["Tracker1", "Tracker2", "Tracker3"]


def test_find_node_messages() -> None:
    s = parse_script(GROUPS)
    with pytest.raises(NkNodeNotFoundError, match="Outer.Inner.Roto1"):
        find_node(s, "Roto1")
    with pytest.raises(NkNodeNotFoundError, match="no Blur node; classes present"):
        find_node(s, node_class="Blur")
    with pytest.raises(NkNodeNotFoundError, match="Roto nodes in the script: Outer.Roto1"):
        find_node(s, "Nope", node_class="Roto")
    with pytest.raises(NkNodeNotFoundError):
        find_node(s)
    assert find_node(s, node_class="Tracker4").name == "T1"


def test_read_script_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NkParseError, match="cannot read"):
        read_script(tmp_path / "missing.nk")


# ---------------------------------------------------------------------------- roto curves


def roto(curves: str, extra: str = "") -> NkScript:
    return parse_script("Roto {\n curves {{{v x3f99999a}\n {f 0}\n {n\n" + curves + "}}}\n"
                        + extra + " name R\n}\n")


def shape_block(name: str, cc_main: str, feather: str = "idem", flags: int = 512,
                kind: str = "bezier", attrs: str = "{a}", transform: str = "{t 0 0}") -> str:
    return (f"{{curvegroup {name} {flags} {kind}\n {{{cc_main}\n {feather}}}\n {transform}\n"
            f" {attrs}}}")


def layer(children: str, name: str = "Root") -> str:
    return f"{{layer {name} {{f 512}} {{t 0 0}} {{a}}\n{children}}}"


def only_shape(s: NkScript, warnings: Optional[List[str]] = None) -> RotoShape:
    (shape,) = roto_shapes(s, s.nodes[0], H, warnings=warnings)
    return shape


def test_single_key_trailing_zeros_z_and_decimal() -> None:
    cc = "{cc {f 8192} {px 7 {xc45a0723} {10.5 20 0} {} {1 -2} {x41200000 x41a00000 0} {-1 2}}}"
    shape = only_shape(roto(layer(shape_block("S", cc))))
    assert shape.key_frames == [7] and shape.point_count == 2
    p0, p1 = shape.keys[7]
    assert p0.left == pytest.approx((-872.1116333, 0.0))
    assert (p0.x, p0.y) == (10.5, H - 20.0)
    assert p0.right == (0.0, 0.0)
    assert p1.left == (1.0, 2.0) and (p1.x, p1.y) == (10.0, H - 20.0) and p1.right == (-1.0, -2.0)
    assert shape.closed and shape.layer == ()


def test_shared_key_times_runs_bare_values_and_flags() -> None:
    pt = (
        "{{{0 -}} {{0 -}}}\n"
        "{{{x 2 {10 -}} 30} {{f 36864} {{1 -} {2 0 1 0 1} {3 -}}}}\n"
        "{{=Other.curves.X {f 167936} 5} {{f 8} 7}}"
    )
    cc = "{cc {f 8192} {px {1 x40000000 3}\n" + pt + "}}"
    shape = only_shape(roto(layer(shape_block("S", cc))))
    assert shape.key_frames == [1, 2, 3]
    assert [shape.keys[f][0].x for f in (1, 2, 3)] == [10.0, 10.0, 30.0]
    assert [shape.keys[f][0].y for f in (1, 2, 3)] == [H - 1, H - 2, H - 3]
    assert shape.keys[2][0].right == (5.0, -7.0)


def test_per_point_key_times_interpolate_between_keys() -> None:
    # Point 0 centre X keyed at 1 and 3; Y keyed at 2 only; tangents untimed constants.
    cc = "{cc {f 8192} {p\n {1 2}\n {{{1 10 -} {3 30 0 1 0 1}} {{2 50}}}\n {3 4}}}"
    shape = only_shape(roto(layer(shape_block("S", cc))))
    assert shape.key_frames == [1, 2, 3]
    xs = [shape.keys[f][0].x for f in (1, 2, 3)]
    assert xs == [10.0, 20.0, 30.0]
    assert all(shape.keys[f][0].y == H - 50 for f in (1, 2, 3))
    assert shape.keys[2][0].left == (1.0, -2.0)
    # A time-only entry {t} means value 0 (trailing zero dropped).
    cc = "{cc {f 8192} {p {0 0} {{{4}} {{4 x40000000}}} {0 0}}}"
    shape = only_shape(roto(layer(shape_block("S", cc))))
    assert shape.key_frames == [4] and (shape.keys[4][0].x, shape.keys[4][0].y) == (0.0, H - 2)


def test_untimed_static_shape_keyed_at_ltn() -> None:
    cc = "{cc {f 8192} {p {1 1} {5 5} {-1 -1}}}"
    fcc = "{cc {f 8192} {p {1 1} {} {-1 -1}}}"
    block = shape_block("S", cc, feather=fcc, attrs="{a ltn x447a0000 fx x40a00000 ff 2}")
    shape = only_shape(roto(layer(block)))
    assert shape.key_frames == [1000]
    p = shape.keys[1000][0]
    assert p.feather == (0.0, 0.0) and p.feather_left is None and p.feather_right is None
    assert shape.feather == 5.0 and shape.feather_falloff == 2.0
    # Without ltn the node's lifetime_start is used.
    shape = only_shape(roto(layer(shape_block("S", cc)), extra=" lifetime_start 12\n"))
    assert shape.key_frames == [12]


def test_feather_offsets_and_tangents() -> None:
    cc = "{cc {f 8192} {px 1 {-1 0} {10 10} {1 0}}}"
    fcc = "{cc {f 8192} {px 1 {-2 1} {3 -4} {1 0}}}"
    shape = only_shape(roto(layer(shape_block("S", cc, feather=fcc))))
    p = shape.keys[1][0]
    assert p.feather == (3.0, 4.0)
    assert p.feather_left == (-2.0, -1.0) and p.feather_right is None
    assert p.feather_tangents == ((-2.0, -1.0), (1.0, 0.0))


def test_open_flags_layers_and_kinds() -> None:
    cc_open = "{cc {f 8224} {px 1 {0 0} {1 1} {0 0}}}"
    cc = "{cc {f 8192} {px 1 {0 0} {1 1} {0 0}}}"
    tree = layer(
        shape_block("A", cc_open)
        + layer(shape_block("B", cc, flags=512 + 32) + layer(shape_block("C", cc, kind="bspline"),
                                                              "lids"), "eyes")
        + "{cubiccurve Stroke 512 catmullrom {cc {f 2080} {p {1 2 3}}} {t 0 0} {a}}"
    )
    warnings: List[str] = []
    shapes = roto_shapes(roto(tree), roto(tree).nodes[0], H, warnings=warnings)
    assert [(s.name, s.closed, s.layer) for s in shapes] == [
        ("A", False, ()),
        ("B", False, ("eyes",)),
        ("C", True, ("eyes", "lids")),
    ]
    assert any("B-spline" in w for w in warnings)


def test_transform_warning() -> None:
    cc = "{cc {f 8192} {px 1 {0 0} {1 1} {0 0}}}"
    moved = "{t {{1 5}} {{1 5}} 0 {{1 10}} {{1 0}} 0 0 0 {{1 0}} {{1 1}} {{1 1}} 1 {{1 0}}}"
    still = "{t {{1 5}} {{1 5}} 0 {{1 0}} {{1 0}} 0 0 0 {{1 0}} {{1 1}} {{1 1}} 1 {{1 0}}}"
    warnings: List[str] = []
    only_shape(roto(layer(shape_block("S", cc, transform=moved))), warnings)
    assert any("transform" in w for w in warnings)
    warnings.clear()
    only_shape(roto(layer(shape_block("S", cc, transform=still))), warnings)
    assert warnings == []


@pytest.mark.parametrize(
    "cc, message",
    [
        ("{cc {f 8192} {px 1 {0 0} {1 1}}}", "threes"),
        ("{cc {f 8192} {px {1 2} {0 0} {{{1 -} {2 -} {3 -}} 0} {0 0}}}", "3 values for 2"),
        ("{cc {f 8192} {px 1 {0 0} {1 nope} {0 0}}}", "number"),
        ("{cc {f 8192} {px 1 {0 0} {1 x7fc00000} {0 0}}}", "number"),
        ("{cc {f 8192}}", "point data"),
        ("{cc {f 8192} {px}}", "key times"),
        ("{cc {f 8192} {px 1 {0 0} {{{x q {1 -}}} 1} {0 0}}}", "run"),
    ],
)
def test_malformed_shapes_raise_parse_errors(cc: str, message: str) -> None:
    s = roto(layer(shape_block("Bad", cc)))
    with pytest.raises(NkParseError, match=message) as err:
        roto_shapes(s, s.nodes[0], H)
    assert err.value.knob == "curves" and "Bad" in str(err.value)


def test_non_roto_and_old_formats() -> None:
    s = parse_script("Blur {\n name B\n}\nRoto {\n name R\n}\n"
                     "Roto {\n curves {AnimTree: \"\" {Version: 1.2}}\n name Old\n}\n")
    with pytest.raises(NkParseError, match="not a Roto"):
        roto_shapes(s, find_node(s, "B"), H)
    assert roto_shapes(s, find_node(s, "R"), H) == []
    with pytest.raises(NkParseError, match="AnimTree"):
        roto_shapes(s, find_node(s, "Old"), H)


# ------------------------------------------------------------------------------- tracker


def test_anim_curve_forms() -> None:
    assert parse_anim_curve(["curve", "x1001", "1", "2", "3"]).keys == {1001: 1, 1002: 2, 1003: 3}
    # After an x jump the next frame continues the step of the last two keys (NDK grammar).
    assert list(parse_anim_curve(["curve", "x1", "5", "x10", "6", "7"]).keys) == [1, 10, 19]
    assert parse_anim_curve(["curve", "x-2", "1", "2"]).keys == {-2: 1, -1: 2}
    assert parse_anim_curve(["curve", "K", "x28", "1"]).keys == {28: 1}
    assert parse_anim_curve(["curve", "C", "k", "0", "s0", "1", "s0"]).keys == {0: 0, 1: 1}
    assert parse_anim_curve(["curve", "R", "x1", "4", "s", "0.5", "5"]).keys == {1: 4, 2: 5}
    expr = parse_anim_curve(["translate.x+center.x", "x68", "0"])
    assert expr.expression == "translate.x+center.x" and expr.keys == {68: 0}
    assert parse_anim_curve(["lower", "i"]).keys == {}
    assert parse_anim_curve("12.5").constant == 12.5
    assert parse_anim_curve(["curve"]).keys == {} and parse_anim_curve([]).keys == {}
    with pytest.raises(NkParseError):
        parse_anim_curve(["curve", "x1", "oops"])


HEADER = "{ { 5 1 20 enable e 1 } { 3 1 75 name name 1 } { 2 1 58 track_x track_x 1 } " \
         "{ 2 1 58 track_y track_y 1 } }"


def tracker(rows: str, header: str = HEADER, root: str = "") -> NkScript:
    return parse_script(root + "Tracker4 {\n tracks { { 1 31 2 }\n" + header + "\n{\n" + rows
                        + "\n}\n}\n name T\n}\n")


def test_tracks_keys_constants_and_mismatch() -> None:
    rows = (' { {curve K x1 1} "a" {curve x1 10 20} {curve x1 90 80} }\n'
            ' { 1 "b" 5 6 }\n'
            ' { 1 "c" {curve x1 0 x3 30} {curve x2 50} }')
    root = "Root {\n first_frame 1\n last_frame 3\n}\n"
    s = tracker(rows, root=root)
    a, b, c = tracker_tracks(s, s.nodes[0], H)
    assert (a.name, a.frames) == ("a", [1, 2])
    assert (a.samples[1].x, a.samples[1].y, a.samples[1].keyed) == (10.0, 10.0, True)
    assert b.frames == [1, 2, 3] and not any(smp.keyed for smp in b.samples.values())
    assert b.samples[2].y == H - 6
    assert c.frames == [1, 2, 3]
    assert [c.samples[f].keyed for f in (1, 2, 3)] == [False, False, False]
    assert c.samples[2].x == 15.0 and c.samples[1].y == H - 50


def test_tracks_without_header_and_missing_cells() -> None:
    s = tracker(' { 1 "a" {curve x5 1} {curve x5 2} }\n { 1 }', header="")
    warnings: List[str] = []
    a, second = tracker_tracks(s, s.nodes[0], H, warnings=warnings)
    assert a.frames == [5] and second.name == "track 2" and second.samples == {}
    assert warnings


def test_tracks_errors() -> None:
    s = tracker(' { 1 "a" {curve x5 zz} 2 }')
    with pytest.raises(NkParseError, match="track 'a'"):
        tracker_tracks(s, s.nodes[0], H)
    s = parse_script("Tracker4 {\n name T\n}\n")
    with pytest.raises(NkParseError, match="tracks"):
        tracker_tracks(s, s.nodes[0], H)


# ------------------------------------------------------------------------------- inspect


def test_inspect_json_and_table(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cc = "{cc {f 8192} {px {1 2} {0 0} {{{1 -} {2 -}} 5} {0 0}}}"
    text = (
        "Roto {\n curves {{{v x3f99999a} {f 0} {n " + layer(shape_block("Lid", cc)) + "}}}\n"
        " name R\n}\n"
        "Tracker4 {\n tracks { { 1 31 1 } { { 1 \"eye\" {curve x1 1 2} {curve x1 3 4} } } }\n"
        " name T\n}\n"
        "Roto {\n curves {{{v x3f99999a} {f 0} {n {layer Root {curvegroup X 512 bezier}}}}}\n"
        " name Broken\n}\n"
        "Blur {\n name B\n note_font \xe9\n}\n"
    )
    path = tmp_path / "s.nk"
    path.write_bytes(text.encode("utf-8").replace(b"\xc3\xa9", b"\xe9"))
    with caplog.at_level(logging.WARNING):
        d = inspect_script(path)
    json.dumps(d)
    nodes = {n["name"]: n for n in d["nodes"]}
    assert nodes["R"]["shapes"] == [{"name": "Lid", "closed": True, "points": 1,
                                     "key_frames": [1, 2]}]
    assert nodes["T"]["tracks"] == [{"name": "eye", "key_frames": [1, 2]}]
    assert nodes["Broken"]["shapes"] == [] and "control-point" in nodes["Broken"]["warnings"][0]
    assert nodes["B"] == {"class": "Blur", "name": "B", "group": [], "shapes": [], "tracks": [],
                          "warnings": []}
    assert d["warnings"]  # not UTF-8
    table = format_inspect(d)
    assert 'shape "Lid"' in table and "1-2" in table and "4 nodes, 1 shapes, 1 tracks" in table
    table.encode("utf-8")


def test_format_frames() -> None:
    assert format_frames([3, 1, 2, 7]) == "1-3, 7"
    assert format_frames([]) == "none"
    assert format_frames(list(range(0, 40, 2))).endswith("(+12)")


def test_errors_are_seamroto_errors() -> None:
    assert issubclass(NkParseError, SeamRotoError)
