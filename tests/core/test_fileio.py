"""Output folders: built under a hidden name, renamed when complete, never over something that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamroto.errors import OutputExistsError
from seamroto.fileio import next_free_dir, staged_dir


def test_a_staged_folder_appears_whole_under_its_name(tmp_path: Path) -> None:
    out = tmp_path / "shot" / "out"
    with staged_dir(out) as tmp:
        (tmp / "result.json").write_text("{}")
        assert not out.exists()  # nothing under the final name while it is written
    assert (out / "result.json").read_text() == "{}"
    assert [p.name for p in out.parent.iterdir()] == ["out"]


def test_a_failure_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with staged_dir(tmp_path / "out") as tmp:
            (tmp / "half.nk").write_text("Roto {")
            raise RuntimeError("cancelled")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "artist.nk").write_text("kept")
    with pytest.raises(OutputExistsError, match="never overwrites"):
        with staged_dir(out):
            pytest.fail("no work should start")
    assert (out / "artist.nk").read_text() == "kept"


def test_a_folder_made_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(OutputExistsError, match="appeared while"):
        with staged_dir(out) as tmp:
            (tmp / "ours.json").write_text("{}")
            out.mkdir()  # another process took the name
            (out / "theirs.json").write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in out.iterdir()] == ["theirs.json"]


def test_a_rerun_gets_the_next_version(tmp_path: Path) -> None:
    assert next_free_dir(tmp_path / "out") == tmp_path / "out"
    (tmp_path / "out").mkdir()
    assert next_free_dir(tmp_path / "out") == tmp_path / "out_v2"
    (tmp_path / "out_v2").mkdir()
    assert next_free_dir(tmp_path / "out") == tmp_path / "out_v3"
    assert next_free_dir(tmp_path / "out_v2") == tmp_path / "out_v3"
