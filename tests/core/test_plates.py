"""Plates: frame patterns, gap checks, OpenImageIO round trips and artist-facing errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from seamroto import plates
from seamroto.errors import (
    PlateError,
    PlateFormatError,
    PlateGapError,
    PlateNotFoundError,
    PlateReadError,
    PlateWriteError,
    ShapeError,
)
from seamroto.plates import (
    PlateSequence,
    check_sequence,
    expand_pattern,
    parse_pattern,
    probe,
    read_frame,
    scan_sequence,
    to_hashes,
    to_printf,
    write_frame,
)

# Tolerances (absolute, code values or linear units), one table.
TOL = {
    "exr_half": 2.0**-10,  # half keeps 11 significant bits; values here are < 2
    "exr_float": 0.0,
    "png8": 0.5 / 255 + 1e-6,
    "png16": 0.5 / 65535 + 1e-6,
    "tif8": 0.5 / 255 + 1e-6,
    "tif16": 0.5 / 65535 + 1e-6,
    "tif32": 0.0,
    "dpx10": 0.5 / 1023 + 1e-5,
    "jpeg": 0.03,  # lossy, on a smooth ramp at quality 95
}
H, W = 24, 32


def _ramp(scale: float = 1.0) -> np.ndarray:
    """A smooth RGB ramp (JPEG-friendly), values 0..scale."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.stack([x / (W - 1), y / (H - 1), (x + y) / (W + H - 2)], axis=-1)
    return (img * scale).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "kwargs", "tol_key", "scale"),
    [
        ("a.exr", {}, "exr_half", 1.7),
        ("a.exr", {"half": False, "compression": "piz"}, "exr_float", 1.7),
        ("a.png", {"bits": 8}, "png8", 1.0),
        ("a.png", {"bits": 16}, "png16", 1.0),
        ("a.tif", {"bits": 8}, "tif8", 1.0),
        ("a.tiff", {}, "tif16", 1.0),
        ("a.tif", {"bits": 32}, "tif32", 1.7),
        ("a.dpx", {}, "dpx10", 1.0),
        ("a.jpg", {}, "jpeg", 1.0),
    ],
)
def test_round_trip(tmp_path: Path, name: str, kwargs: dict, tol_key: str, scale: float) -> None:
    img = _ramp(scale)
    out = write_frame(tmp_path / name, img, **kwargs)
    back = read_frame(out)
    assert back.dtype == np.float32
    assert back.shape == (H, W, 3)
    assert np.abs(back - img).max() <= TOL[tol_key]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp file left


def test_exr_is_half_zip_by_default(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "a.exr", _ramp())
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None
    spec = inp.spec()
    inp.close()
    assert str(spec.format) == "half"
    assert spec.get_string_attribute("compression") == "zip"


def test_integer_formats_clamp_and_round(tmp_path: Path) -> None:
    img = np.array([[[-0.5, 1.5, 1.49 / 255]]], dtype=np.float32)
    back = read_frame(write_frame(tmp_path / "c.png", img))
    np.testing.assert_array_equal(np.round(back * 255), [[[0, 255, 1]]])


def test_grey_and_alpha(tmp_path: Path) -> None:
    grey = _ramp()[..., 0]
    back = read_frame(write_frame(tmp_path / "g.png", grey, bits=16))
    assert back.shape == (H, W, 3)
    np.testing.assert_allclose(back[..., 0], back[..., 2])
    rgba = np.concatenate([_ramp(), np.full((H, W, 1), 0.25, np.float32)], axis=-1)
    write_frame(tmp_path / "a.exr", rgba)
    np.testing.assert_allclose(read_frame(tmp_path / "a.exr", channels="RGBA")[..., 3], 0.25)
    np.testing.assert_allclose(read_frame(tmp_path / "g.png", channels="RGBA")[..., 3], 1.0)
    assert read_frame(tmp_path / "a.exr", channels="A").shape == (H, W, 1)


def test_uint_input_keeps_its_range(tmp_path: Path) -> None:
    img = np.full((4, 4, 3), 65535, np.uint16)
    np.testing.assert_allclose(read_frame(write_frame(tmp_path / "u.png", img, bits=16)), 1.0)


def test_data_window_is_placed_in_display_window(tmp_path: Path) -> None:
    path = str(tmp_path / "dw.exr")
    spec = oiio.ImageSpec(4, 3, 3, "float")
    spec.x, spec.y = 2, 1
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, 8, 6
    out = oiio.ImageOutput.create(path)
    assert out is not None and out.open(path, spec)
    out.write_image(np.ones((3, 4, 3), np.float32))
    out.close()
    img = read_frame(path)
    assert img.shape == (6, 8, 3)
    assert img.sum() == 3 * 4 * 3
    assert img[1:4, 2:6].min() == 1.0
    assert probe(path)[:2] == (8, 6)


def test_write_validates(tmp_path: Path) -> None:
    with pytest.raises(ShapeError):
        write_frame(tmp_path / "a.exr", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ShapeError):
        write_frame(tmp_path / "a.exr", np.zeros((4, 4, 3), np.int32))
    with pytest.raises(PlateFormatError, match="16"):
        write_frame(tmp_path / "a.jpg", _ramp(), bits=16)
    with pytest.raises(PlateFormatError, match="piz"):
        write_frame(tmp_path / "a.exr", _ramp(), compression="zipp")
    with pytest.raises(PlateFormatError, match=r"\.mov.*\.exr"):
        write_frame(tmp_path / "a.mov", _ramp())
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_frame(tmp_path / "a.exr", _ramp())
    before = target.read_bytes()
    monkeypatch.setattr(plates.oiio.ImageOutput, "create", staticmethod(lambda *_: None))
    with pytest.raises(PlateWriteError) as info:
        write_frame(target, _ramp() * 0.5)
    assert info.value.path == str(target)
    assert [p.name for p in tmp_path.iterdir()] == ["a.exr"]
    assert target.read_bytes() == before  # the old file is untouched


def test_overwrite_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "a.png"
    write_frame(target, _ramp())
    write_frame(target, _ramp() * 0)
    assert read_frame(target).max() == 0.0
    assert [p.name for p in target.parent.iterdir()] == ["a.png"]


# --- patterns ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "frame", "expected"),
    [
        ("/p/plate.####.exr", 1001, "/p/plate.1001.exr"),
        ("/p/plate.####.exr", 7, "/p/plate.0007.exr"),
        ("/p/plate.####.exr", 12345, "/p/plate.12345.exr"),
        ("/p/plate.####.exr", -5, "/p/plate.-005.exr"),
        ("/p/plate.%04d.exr", 7, "/p/plate.0007.exr"),
        ("/p/plate.%d.exr", 7, "/p/plate.7.exr"),
        ("/p/plate.#.exr", 7, "/p/plate.7.exr"),
        ("plate_##.png", 3, "plate_03.png"),
        ("/p/plate.@@@.dpx", 7, "/p/plate.007.dpx"),
        ("/p/plate.1001-1100#.exr", 7, "/p/plate.0007.exr"),
        ("/p/plate.1-10@@.exr", 7, "/p/plate.07.exr"),
        ("/p/still.exr", 7, "/p/still.exr"),
    ],
)
def test_expand_pattern(pattern: str, frame: int, expected: str) -> None:
    assert expand_pattern(pattern, frame) == expected


@pytest.mark.parametrize(
    ("pattern", "printf", "hashes"),
    [
        ("/p/plate.####.exr", "/p/plate.%04d.exr", "/p/plate.####.exr"),
        ("/p/plate.%04d.exr", "/p/plate.%04d.exr", "/p/plate.####.exr"),
        ("/p/plate.%d.exr", "/p/plate.%d.exr", "/p/plate.#.exr"),
        ("/p/plate.#.exr", "/p/plate.%d.exr", "/p/plate.#.exr"),
        ("/p/plate.@@@@.exr", "/p/plate.%04d.exr", "/p/plate.####.exr"),
        ("/p/plate.1001-1100#.exr", "/p/plate.%04d.exr", "/p/plate.####.exr"),
    ],
)
def test_pattern_forms(pattern: str, printf: str, hashes: str) -> None:
    assert to_printf(pattern) == printf
    assert to_hashes(pattern) == hashes
    assert to_hashes(to_printf(pattern)) == hashes


def test_fileseq_range_frames() -> None:
    assert parse_pattern("/p/plate.1-9x4,20#.exr").frames == (1, 5, 9, 20)
    assert parse_pattern("/p/plate.####.exr").frames is None


@pytest.mark.parametrize("bad", ["/p/plate.exr", "/p/plate.####.%04d.exr", "/p/a.##.b.##.exr"])
def test_pattern_errors(bad: str) -> None:
    with pytest.raises(PlateFormatError) as info:
        to_printf(bad)
    assert info.value.path == bad


# --- sequences -----------------------------------------------------------------------------------


def _sequence(folder: Path, frames: list[int], pattern: str = "plate.####.exr") -> str:
    pat = str(folder / pattern)
    for f in frames:
        write_frame(expand_pattern(pat, f), _ramp() * (f % 7) / 7)
    return pat


def test_scan_sequence(tmp_path: Path) -> None:
    pat = _sequence(tmp_path, [1001, 1002, 1004, 1007])
    (tmp_path / "plate.01003.exr").write_bytes(b"x")  # wrong padding: Nuke would not read it
    (tmp_path / "plate.v2.1003.exr").write_bytes(b"x")
    assert scan_sequence(pat) == (1001, 1007, [1001, 1002, 1004, 1007])
    assert scan_sequence(to_printf(pat)) == (1001, 1007, [1001, 1002, 1004, 1007])
    ranged = str(tmp_path / "plate.1002-1005#.exr")
    assert scan_sequence(ranged) == (1002, 1004, [1002, 1004])


def test_gaps_are_one_error_listing_all(tmp_path: Path) -> None:
    pat = _sequence(tmp_path, [1001, 1002, 1004, 1007])
    with pytest.raises(PlateGapError) as info:
        check_sequence(pat, 1001, 1010)
    err = info.value
    assert err.missing == [1003, 1005, 1006, 1008, 1009, 1010]
    assert err.path == pat
    assert "1003, 1005-1006, 1008-1010" in str(err)
    assert check_sequence(pat, 1001, 1002) == [1001, 1002]
    with pytest.raises(PlateError, match="empty"):
        check_sequence(pat, 5, 1)


def test_not_found_names_pattern_folder_and_neighbours(tmp_path: Path) -> None:
    _sequence(tmp_path, [1, 2], "plate.%04d.exr")
    with pytest.raises(PlateNotFoundError) as info:
        scan_sequence(tmp_path / "plat.####.exr")
    msg = str(info.value)
    assert "plat.####.exr" in msg and str(tmp_path) in msg and "plate.0001.exr" in msg

    with pytest.raises(PlateNotFoundError, match=r"different frame padding.*'plate\.####\.exr'"):
        scan_sequence(tmp_path / "plate.###.exr")
    with pytest.raises(PlateNotFoundError, match="frames 1-2"):
        check_sequence(tmp_path / "plate.####.exr", 1001, 1005)
    with pytest.raises(PlateNotFoundError, match="does not exist"):
        scan_sequence(tmp_path / "nowhere" / "plate.####.exr")
    with pytest.raises(PlateFormatError, match=r"'\.mov'.*\.dpx.*\.exr"):
        scan_sequence(tmp_path / "plate.####.mov")


def test_read_errors_name_file_and_frame(tmp_path: Path) -> None:
    pat = _sequence(tmp_path, [1, 2, 3, 4], "plate.####.png")
    data = Path(expand_pattern(pat, 2)).read_bytes()
    Path(expand_pattern(pat, 2)).write_bytes(data[: len(data) // 2])  # truncated
    Path(expand_pattern(pat, 3)).write_bytes(b"")  # zero bytes
    Path(expand_pattern(pat, 4)).write_bytes(b"this is not a png" * 20)

    for frame in (2, 3, 4):
        with pytest.raises(PlateReadError) as info:
            read_frame(pat, frame)
        assert info.value.frame == frame
        assert info.value.path == expand_pattern(pat, frame)
        assert f"plate.000{frame}.png" in str(info.value) and f"frame {frame}" in str(info.value)

    with pytest.raises(PlateNotFoundError) as missing:
        read_frame(pat, 9)
    assert missing.value.frame == 9 and "plate.0009.png" in str(missing.value)
    assert "from 1 to 4" in str(missing.value)
    with pytest.raises(PlateFormatError, match="pass the frame"):
        read_frame(pat)
    with pytest.raises(PlateFormatError, match="channels"):
        read_frame(pat, 1, channels="RGBX")


def test_truncated_exr(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "t.0001.exr", _ramp())
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(PlateReadError, match="truncated or corrupt") as info:
        read_frame(tmp_path / "t.####.exr", 1)
    assert info.value.frame == 1


def test_probe(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "a.exr", _ramp(), pixel_aspect=2.0)
    assert probe(path) == (W, H, 3, 2.0)
    with pytest.raises(PlateNotFoundError):
        probe(tmp_path / "b.exr")


def test_plate_sequence(tmp_path: Path) -> None:
    pat = _sequence(tmp_path, list(range(1001, 1006)))
    seq = PlateSequence.open(pat)
    assert (seq.first, seq.last, seq.width, seq.height) == (1001, 1005, W, H)
    assert len(seq) == 5
    shot = seq.shot()
    assert (shot.plates, shot.first, shot.last, shot.width, shot.height) == (pat, 1001, 1005, W, H)
    assert shot.colourspace == "Linear Rec.709 (sRGB)"
    assert PlateSequence.from_shot(shot) == seq

    expected = {f: read_frame(pat, f) for f in seq.frames}
    for prefetch in (0, 1, 3):
        got = list(seq.iter_frames(prefetch=prefetch))
        assert [f for f, _ in got] == list(seq.frames)
        for f, img in got:
            np.testing.assert_array_equal(img, expected[f])
    assert [f for f, _ in seq.iter_frames([1004, 1002])] == [1004, 1002]
    assert [f for f, _ in seq] == list(seq.frames)


def test_plate_sequence_checks_gaps_and_sizes(tmp_path: Path) -> None:
    pat = _sequence(tmp_path, [1, 2, 4])
    with pytest.raises(PlateGapError):
        PlateSequence.open(pat)
    seq = PlateSequence.open(pat, check=False)
    write_frame(expand_pattern(pat, 3), np.zeros((H + 2, W, 3), np.float32))
    frames = seq.iter_frames()
    assert next(frames)[0] == 1
    assert next(frames)[0] == 2
    with pytest.raises(PlateFormatError) as info:
        next(frames)
    assert info.value.frame == 3 and f"{W}x{H + 2}" in str(info.value)


def test_early_stop_leaves_no_thread(tmp_path: Path) -> None:
    seq = PlateSequence.open(_sequence(tmp_path, list(range(1, 9))))
    frames = seq.iter_frames(prefetch=2)
    next(frames)
    frames.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("seamroto-plates")]
