"""The review page is self-contained, lists flagged frames first, and loads cleanly in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from seamroto.colour import LINEAR_SPACE, to_model_space
from seamroto.report import build_report, write_report
from seamroto.result import ModelRef, TrackResult
from seamroto.synth import render_shot

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
]


@pytest.fixture(scope="module")
def shot_result():
    shot = render_shot("otto", 3, frames=6, width=320, height=180)
    result = TrackResult(
        width=320,
        height=180,
        first=shot.shot.first,
        last=shot.shot.last,
        model=ModelRef("otto", "v1", "0" * 64),
        tracks=shot.tracks,
        shapes=shot.shapes,
        flagged_frames=(1003,),
        flag_reasons={1003: "low confidence (< 0.5): mouth_L (0.21)"},
        plates="otto.####.exr",
        seams=shot.character.seams,
    )
    return shot, result


def _html(shot_result) -> str:
    shot, result = shot_result
    return build_report(result, lambda f: to_model_space(shot.image(f), LINEAR_SPACE), threshold=0.5)


def test_report_is_self_contained_and_flagged_first(shot_result) -> None:
    html = _html(shot_result)
    assert not re.search(r"""(src|href)=["'](?!data:)""", html), "every resource must be inlined"
    figures = re.findall(r'<img src="data:image/jpeg;base64,[^"]+" alt="frame (\d+)"', html)
    assert figures[0] == "1003"
    assert sorted(map(int, figures)) == list(range(1001, 1007))
    assert "mouth_L (0.21)" in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_loads_in_headless_chromium(shot_result, tmp_path) -> None:
    page = write_report(tmp_path / "report.html", _html(shot_result))
    profile = tmp_path / "profile"
    run = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = re.search(r'data-images="(\d+)/(\d+)"', run.stdout)
    assert loaded, "the page's load check did not run"
    assert loaded.group(1) == loaded.group(2) != "0"
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
