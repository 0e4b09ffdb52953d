"""The .nk writer against Nuke's own text: reference files in ../shared/reference/nk/ and our goldens.

Real shapes and tracks are decoded from the reference files by the small brace helpers below
(independent of seamroto.nk.reader), written back with our writer, and compared text against text,
so a failure shows a readable diff of what Nuke wrote and what we write.

Set SEAMROTO_UPDATE_GOLDEN=1 to regenerate tests/data/golden/*.nk after an intended change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import pytest

from seamroto.datamodel import ControlPoint, LandmarkSample, LandmarkTrack, RotoShape, Shot
from seamroto.nk import writer
from seamroto.nk.numbers import parse_number

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "data" / "golden"
UPDATE_GOLDEN = os.environ.get("SEAMROTO_UPDATE_GOLDEN") == "1"

Tree = Union[str, List["Tree"]]

# (file, height of the plate the shapes/tracks were drawn on)
FANCYGRAD = "arcadeperfect__fancygrad.nk"  # Nuke 15.0 v4, Roto format 2880x1080
SQUAREGRID = "hellothisistim__SquareGrid.nk"  # Nuke 14.1 v3
VINCANNES = "vincannes__083_060-cmp-base-v016.EXCERPT.nk"  # Nuke 13.2 v8, 3840x2160
SMOKE = "wulifang__smoke.nk"  # Nuke 10.0 v4, 2048x1152
TRACKER_FILES = [
    SQUAREGRID,
    VINCANNES,
    "internetimagery__track-to-attribute_test_nuke.nk",
    "tharunganapathi__for_manooj_v003.nk",
]


# ---------------------------------------------------------------- brace helpers (test side)


def _read(ref_dir: Path, name: str) -> str:
    return (ref_dir / name).read_bytes().decode("latin-1")


def _balanced(text: str, start: int) -> str:
    assert text[start] == "{", text[start : start + 40]
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[start : j + 1]
    raise AssertionError("unbalanced braces")


def _tree(text: str) -> List[Tree]:
    stack: List[List[Tree]] = [[]]
    for tok in re.findall(r"\{|\}|[^\s{}]+", text):
        if tok == "{":
            stack.append([])
        elif tok == "}":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    assert len(stack) == 1
    return stack[0]


def _normalise(text: str) -> str:
    """Whitespace is free-form in Nuke scripts: collapse it, keep the tokens and braces."""
    return " ".join(re.findall(r"\{|\}|[^\s{}]+", text))


def _expand_dim(dim: List[Tree], nkeys: int) -> List[str]:
    """One animated dimension -> one value token per key (runs expanded, tangents dropped)."""
    out: List[str] = []
    for entry in dim:
        if isinstance(entry, str):
            out.append(entry)
        elif entry[0] == "x" and len(entry) == 3:
            inner = entry[2]
            out += [inner if isinstance(inner, str) else str(inner[0])] * int(str(entry[1]))
        else:
            out.append(str(entry[0]))
    if len(out) == 1:
        out *= nkeys
    assert len(out) == nkeys, (dim, nkeys)
    return out


def _canonical_cc(cc: Tree) -> Tuple[str, List[str], List[List[List[str]]]]:
    """``{cc {f F} {px ...}}`` -> (flags, key times, per element [xs per key, ys per key])."""
    assert isinstance(cc, list) and cc[0] == "cc"
    flags, px = cc[1], cc[2]
    assert isinstance(flags, list) and isinstance(px, list)
    if isinstance(px[1], list):
        times = [str(t) for t in px[1]]
        elements = [[_expand_dim(d, len(times)) for d in e[:2]] for e in px[2:]]  # type: ignore[arg-type]
    else:
        times = [px[1]]
        elements = [[[str(e[0])], [str(e[1])]] for e in px[2:]]
    return str(flags[1]), times, elements


def _curvegroup_text(text: str, name: str, before: Optional[str] = None) -> str:
    """The ``{curvegroup NAME ...}`` block (the last one before ``before`` when given)."""
    end = text.find(before) if before else len(text)
    start = text.rfind("{curvegroup " + name + " ", 0, end)
    assert start >= 0, name
    return _balanced(text, start)


def _cc_pair(curvegroup: str) -> str:
    return _balanced(curvegroup, curvegroup.find("{{cc"))


def _shape_from_cc_pair(pair: List[Tree], name: str, height: float) -> RotoShape:
    """Decode Nuke's main/feather cc (Nuke space) into our RotoShape (_img space) by hand."""
    _, times, main = _canonical_cc(pair[0])
    feather = None if pair[1] == "idem" else _canonical_cc(pair[1])[2]
    frames = [int(parse_number(t)) for t in times]
    keys: Dict[int, Tuple[ControlPoint, ...]] = {}
    for k, frame in enumerate(frames):

        def at(el: List[List[str]], k: int = k) -> Tuple[float, float]:
            return parse_number(el[0][k]), parse_number(el[1][k])

        pts = []
        for i in range(len(main) // 3):
            lt, c, rt = (at(e) for e in main[3 * i : 3 * i + 3])
            if feather is None:
                flt, fo, frt = lt, (0.0, 0.0), rt
            else:
                flt, fo, frt = (at(e) for e in feather[3 * i : 3 * i + 3])
            pts.append(
                ControlPoint(
                    c[0],
                    height - c[1],
                    (lt[0], -lt[1]),
                    (rt[0], -rt[1]),
                    (fo[0], -fo[1]),
                    (flt[0], -flt[1]),
                    (frt[0], -frt[1]),
                )
            )
        keys[frame] = tuple(pts)
    return RotoShape(name, True, keys)


def _cells(row: str) -> List[str]:
    return re.findall(r'\{[^{}]*\}|"(?:[^"\\]|\\.)*"|\S+', row)


def _curve_values(cell: str) -> Dict[int, float]:
    out: Dict[int, float] = {}
    frame = 0
    for tok in cell.strip("{}").split()[1:]:
        if tok.startswith("x"):
            frame = int(tok[1:])
            continue
        out[frame] = float(tok)
        frame += 1
    return out


def _tracker_block(text: str) -> Tuple[str, str]:
    """(header part from ``{ 1 31 N }`` up to the rows, first row line) of the first Tracker4."""
    start = text.find("tracks { {") + len("tracks ")
    last_cell = text.find("key_centre_offset_y key_centre_offset_y 1 }", start)
    header_end = text.find("\n", text.find("\n", last_cell) + 1)  # through the "} " line
    rows_at = text.find("\n", header_end + 1) + 1  # after the "{ " line
    return text[start:header_end], text[rows_at : text.find("\n", rows_at)]


# ---------------------------------------------------------------- Tracker4 against Nuke


@pytest.mark.parametrize("ref", TRACKER_FILES)
def test_tracker_header_is_byte_identical_to_nuke(nk_reference_dir: Path, ref: str) -> None:
    theirs, _ = _tracker_block(_read(nk_reference_dir, ref))
    ours, _ = _tracker_block(writer.write_tracker([], height=100))
    strip = lambda s: [line.rstrip(" ") for line in s.split("\n")[1:]]  # noqa: E731
    # line 0 is ``{ 1 31 N }``: the track count differs by construction
    assert strip(ours) == strip(theirs)
    assert ours.split("\n")[0] == "{ { 1 31 0 } "


@pytest.mark.parametrize(("ref", "height"), [(SQUAREGRID, 1080.0), (VINCANNES, 2160.0)])
def test_tracker_row_is_byte_identical_to_nuke(
    nk_reference_dir: Path, ref: str, height: float
) -> None:
    """A Nuke 13.2 / 14.1 track row decoded and written back gives the same text, byte for byte."""
    _, row = _tracker_block(_read(nk_reference_dir, ref))
    cells = _cells(row)[1:-1]  # drop the row's own braces
    xs, ys, errors = (_curve_values(cells[i]) for i in (2, 3, 9))
    track = LandmarkTrack(
        cells[1].strip('"'),
        {f: LandmarkSample(xs[f], height - ys[f], 1.0 - errors[f]) for f in xs},
    )
    pattern = tuple(float(c) for c in cells[12:16])
    search = tuple(float(c) for c in cells[16:20])
    node = writer.write_tracker(
        [track],
        height=height,
        first=min(xs),
        pattern_box=pattern,  # type: ignore[arg-type]
        search_box=search,  # type: ignore[arg-type]
    )
    _, ours = _tracker_block(node)
    assert ours == row


# ---------------------------------------------------------------- Roto against Nuke


@pytest.mark.parametrize(("shape_name", "closing"), [("Bezier1", "}}}}"), ("Rectangle1", "idem}")])
def test_single_key_shape_is_byte_identical_to_nuke_15(
    nk_reference_dir: Path, shape_name: str, closing: str
) -> None:
    """Nuke 15.0 point data (one key, feather cc or idem), whitespace included."""
    text = _read(nk_reference_dir, FANCYGRAD)
    theirs = _cc_pair(_curvegroup_text(text, shape_name))
    height = 1080.0
    shape = _shape_from_cc_pair(_tree(theirs)[0], shape_name, height)  # type: ignore[arg-type]
    curves = writer.curves_knob_value([shape], width=2880, height=height)
    ours = _cc_pair(_curvegroup_text(curves, shape_name))
    assert ours.endswith(closing)
    assert ours == theirs


@pytest.mark.parametrize(
    ("ref", "before", "height", "feathered"),
    [(VINCANNES, "name Roto3", 2160.0, False), (SMOKE, "name Roto", 1152.0, True)],
)
def test_animated_shape_matches_nuke_key_for_key(
    nk_reference_dir: Path, ref: str, before: str, height: float, feathered: bool
) -> None:
    """Nuke 13.2 (8 keys, idem) and 10.0 (3 keys, animated feather) shapes written back.

    Nuke stores its own key slopes, bare last values and runs; we write auto tangents, so the
    text is compared per key after expanding runs: same flags, key times and every hex value.
    """
    text = _read(nk_reference_dir, ref)
    theirs = _tree(_cc_pair(_curvegroup_text(text, "Bezier1", before)))[0]
    assert isinstance(theirs, list)
    shape = _shape_from_cc_pair(theirs, "Bezier1", height)
    assert len(shape.keys) > 1
    curves = writer.curves_knob_value([shape], width=2 * height, height=height)
    ours = _tree(_cc_pair(_curvegroup_text(curves, "Bezier1")))[0]
    assert isinstance(ours, list)
    assert _canonical_cc(ours[0]) == _canonical_cc(theirs[0])
    if feathered:
        assert _canonical_cc(ours[1]) == _canonical_cc(theirs[1])
    else:
        assert ours[1] == theirs[1] == "idem"


def test_animated_layout_follows_nuke_whitespace(nk_reference_dir: Path) -> None:
    """Our animated lines are laid out like Nuke's: the smoke.nk point-0 tangent lines match."""
    text = _read(nk_reference_dir, SMOKE)
    theirs = _cc_pair(_curvegroup_text(text, "Bezier1", "name Roto"))
    shape = _shape_from_cc_pair(_tree(theirs)[0], "Bezier1", 1152.0)  # type: ignore[arg-type]
    ours = _cc_pair(writer.curves_knob_value([shape], width=2048, height=1152.0))
    # Nuke 10 writes constant dims as one {v -} entry, exactly as we do
    head = "{{cc\n       {f 8192}\n       {px\n        {1 x41b80000 x42100000}\n"
    head += "        {{{0 -}}\n      {{0 -}}}\n"
    assert theirs.startswith(head)
    assert ours.startswith(head)


def test_roto_envelope_and_knobs_match_nuke_13_2(nk_reference_dir: Path) -> None:
    """The tree envelope, layer block, curvegroup attributes and toolbox text Nuke 13.2 writes."""
    text = _read(nk_reference_dir, VINCANNES)
    roto3 = text[text.rfind("Roto {", 0, text.find("name Roto3")) : text.find("name Roto3")]
    shape = _shape_from_cc_pair(
        _tree(_cc_pair(_curvegroup_text(text, "Bezier1", "name Roto3")))[0],  # type: ignore[arg-type]
        "Bezier1",
        2160.0,
    )
    node = writer.write_roto([shape], width=3840, height=2160, name="Roto3")
    envelope = "curves {{{v x3f99999a}\n  {f 0}\n  {n\n   {layer Root\n    {f 2097664}\n"
    envelope += "    {t x44f00000 x44870000}\n"
    assert envelope in roto3 and envelope.replace("curves ", " curves ") in node
    theirs_a = re.search(r"\{a osw[^}]*\}", roto3)
    ours_a = re.search(r"\{a osw[^}]*\}", node)
    assert theirs_a and ours_a
    # identical but for ltn/ltm (Nuke keeps the frame the shape was drawn on; we use the first key)
    assert ours_a.group(0) == theirs_a.group(0).replace("x447a4000", "x4477c000")
    toolbox = roto3[roto3.find("toolbox ") : roto3.find("} }", roto3.find("toolbox ")) + 3]
    assert " " + toolbox + "\n" in node
    for knob in (
        "colorOverlay {0 0 0 0}",
        'lifetime_type "all frames"',
        "motionblur_shutter_offset_type centred",
        "source_black_outside true",
        "output alpha",
        "cliptype none",
    ):
        assert "\n" + knob + "\n" in roto3
        assert "\n " + knob + "\n" in node


def test_hex_only_off_changes_nothing_for_float32_exact_values(nk_reference_dir: Path) -> None:
    """Values Nuke wrote are float32-exact, so the decimal fallback never triggers on them."""
    text = _read(nk_reference_dir, VINCANNES)
    pair = _tree(_cc_pair(_curvegroup_text(text, "Bezier1", "name Roto3")))[0]
    shape = _shape_from_cc_pair(pair, "Bezier1", 2160.0)  # type: ignore[arg-type]
    a = writer.curves_knob_value([shape], width=3840, height=2160, hex_only=False)
    b = writer.curves_knob_value([shape], width=3840, height=2160, hex_only=True)
    assert a == b


@pytest.mark.parametrize("ref", [FANCYGRAD, SQUAREGRID, SMOKE, "franklinvfx__ROTO_SPLINEWARP_LINK.nk"])
def test_clipboard_header_like_nuke(nk_reference_dir: Path, ref: str) -> None:
    theirs = _read(nk_reference_dir, ref).split("\n")
    ours = writer.write_script([]).split("\n")
    assert ours[0] == theirs[0] == "set cut_paste_input [stack 0]"
    assert re.fullmatch(r"version \d+\.\d+ v\d+", theirs[1]) and ours[1] == "version 13.2 v8"
    if theirs[2].startswith("push"):
        assert ours[2] == theirs[2]


def test_backdrop_knobs_like_nuke_15(nk_reference_dir: Path) -> None:
    text = _read(nk_reference_dir, FANCYGRAD)
    theirs = text[text.find(" BackdropNode {") :]
    theirs = theirs[: theirs.find(" }\n") + 3]
    ours = writer.write_backdrop(
        "important", -2034, 109, 1123, 396, 0xC0C0C001, "BackdropNode1", font_size=42
    )
    # Nuke quotes a label only when it needs to; we always quote (labels are Tcl-evaluated)
    expected = _normalise(theirs).replace("label important", 'label "important"')
    assert _normalise(ours) == expected


# ---------------------------------------------------------------- our own goldens


TINY_SHOT = Shot("/plates/tiny/tiny_plate.####.exr", 1001, 1003, 2560, 1440)


def tiny_tracks() -> List[LandmarkTrack]:
    return [
        LandmarkTrack(
            "eye_L_outer",
            {
                1001: LandmarkSample(812.25, 600.5, 1.0),
                1002: LandmarkSample(813.0625, 601.125, 0.96875),
                1003: LandmarkSample(814.5, 602.75, 0.875),
            },
        ),
        LandmarkTrack(
            'seam "left" [end]',  # hostile name: quotes and brackets are escaped
            {
                1001: LandmarkSample(2100.123456, 640.0, 0.5),
                1003: LandmarkSample(2101.5, 641.25, 0.75),  # gap at 1002 -> x1003 jump
            },
        ),
    ]


def _pt(
    x: float, y: float, t: float = 8.0, feather: Tuple[float, float] = (0.0, 0.0)
) -> ControlPoint:
    return ControlPoint(x, y, (-t, 0.0), (t, 0.0), feather)


def tiny_shapes() -> List[RotoShape]:
    seam = RotoShape(
        "seam_band",
        True,
        {
            f: (
                _pt(700.0 + d, 590.0),
                _pt(2100.123456 + d, 600.0),  # float32 would move this by 1.2e-4 px: decimal
                _pt(2100.0 + d, 620.0),
                _pt(700.0 + d, 612.0 + d / 2),
            )
            for f, d in ((1001, 0.0), (1002, 1.0), (1003, 2.5))
        },
        layer=("face", "seams"),
        feather=2.5,
    )
    lid = RotoShape(
        "lid L",  # space -> lid_L
        False,
        {
            f: (
                _pt(780.0, 560.0 + d, 6.0, (0.0, -3.0)),
                _pt(812.0, 548.0 + d, 10.0, (0.0, -4.0 - d)),
                _pt(846.0, 561.0 + d, 6.0, (0.0, -3.0)),
            )
            for f, d in ((1001, 0.0), (1002, 0.5), (1003, 1.25))
        },
        layer=("face",),
        feather_falloff=2.0,
    )
    return [seam, lid]


def tiny_scripts() -> Dict[str, str]:
    tracker_script = writer.write_script(
        [
            writer.write_backdrop("SeamRoto tiny_plate", -40, -120, 240, 320, (0.3, 0.4, 0.5)),
            writer.write_read(TINY_SHOT, "Read1", 0, -80, colorspace="scene_linear"),
            writer.write_tracker(
                tiny_tracks(), height=TINY_SHOT.height, name="SeamRotoTracks", xpos=0, ypos=40
            ),
        ]
    )
    roto_script = writer.write_script(
        [
            writer.write_roto(
                tiny_shapes(),
                width=TINY_SHOT.width,
                height=TINY_SHOT.height,
                name="SeamRotoShapes",
                xpos=120,
                ypos=40,
            )
        ]
    )
    return {"tiny_tracker.nk": tracker_script, "tiny_roto.nk": roto_script}


@pytest.mark.parametrize("golden", ["tiny_tracker.nk", "tiny_roto.nk"])
def test_tiny_shot_matches_golden(golden: str) -> None:
    text = tiny_scripts()[golden]
    path = GOLDEN_DIR / golden
    if UPDATE_GOLDEN:
        writer.write_script_file(path, text)
    assert path.is_file(), f"missing {path}; run with SEAMROTO_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_tiny_roto_golden_uses_decimal_only_where_float32_is_too_coarse() -> None:
    text = tiny_scripts()["tiny_roto.nk"]
    curves = text[text.find("curves ") : text.find("toolbox ")]
    decimals = sorted(set(re.findall(r"(?<![\w.])-?\d+\.\d+", curves)))
    assert decimals == ["2100.123456", "2101.123456", "2102.623456"]


def test_tiny_scripts_reuse_the_reference_tracker_header(nk_reference_dir: Path) -> None:
    theirs, _ = _tracker_block(_read(nk_reference_dir, SQUAREGRID))
    ours, _ = _tracker_block(tiny_scripts()["tiny_tracker.nk"])
    assert ours.split("\n")[1:] == theirs.split("\n")[1:]


def _shape_blocks(text: str) -> Sequence[str]:
    return [_balanced(text, m.start()) for m in re.finditer(r"\{curvegroup ", text)]


def test_tiny_roto_open_shape_and_feather_flags() -> None:
    seam, lid = _shape_blocks(tiny_scripts()["tiny_roto.nk"])
    assert seam.startswith("{curvegroup seam_band 512 bezier")
    assert lid.startswith("{curvegroup lid_L 512 bezier")
    assert seam.count("{f 8192}") == 1 and seam.rstrip().count("idem") == 1
    assert lid.count("{f 8224}") == 2  # open: eOpenFlag on main and feather cc
    assert "fx x40200000 fy x40200000" in seam and "ff x40000000" in lid
