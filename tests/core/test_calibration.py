"""`seamroto calibrate`: review flags fitted on checked shots, written as a new model version."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
from test_shapeprior import LID_NAMES, lid_prior, lid_shot

from seamroto.calibration import (
    PART_TOLERANCE,
    FlagFigures,
    calibrate_command,
    flag_figures,
    next_version_dir,
    prune_parts,
)
from seamroto.confidence import ErrorModel
from seamroto.errors import AnnotationError, ModelError, OutputExistsError


def _digests(folder: Path) -> Dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


#: Ground truth enough to learn a shape prior from (only the scripts are used, not the plates).
PRIOR_SEEDS = (3, 4, 5)
PRIOR_FRAMES = 24
PRIOR_SIZE = (160, 90)


@pytest.fixture(scope="module")
def prior_scripts(tmp_path_factory: pytest.TempPathFactory) -> list:
    from seamroto.synth import synth_command

    root = tmp_path_factory.mktemp("prior_shots")
    w, h = PRIOR_SIZE
    return [synth_command("mara", s, PRIOR_FRAMES, w, h, root / f"s{s}", ("exr",)) / "gt.nk" for s in PRIOR_SEEDS]


@pytest.fixture(scope="module")
def checked(farm_shots: Dict[str, Path]) -> list:
    return [farm_shots[name] / "gt.nk" for name in ("s1", "s2")]


@pytest.fixture(scope="module")
def calibrated(tiny_model: Path, checked: list, prior_scripts: list, tmp_path_factory: pytest.TempPathFactory) -> dict:
    before = _digests(tiny_model)
    out = tmp_path_factory.mktemp("calibrated") / "v002"
    done = calibrate_command(tiny_model, checked, out, prior_shots=prior_scripts, command="seamroto calibrate (test)")
    return {"done": done, "out": out, "before": before, "source": tiny_model, "prior_scripts": prior_scripts}


def test_calibrate_writes_a_new_version_and_leaves_the_source_alone(calibrated: dict) -> None:
    from seamroto.pipeline import load_character

    assert calibrated["done"]["model"] == calibrated["out"]
    assert _digests(calibrated["source"]) == calibrated["before"]
    character = load_character(calibrated["out"])  # every hash, the new prior's included, verified
    assert character.shape_prior is not None
    assert character.shape_prior.error_model is not None
    assert character.shape_prior.error_model != ErrorModel()
    pieces = character.shape_prior.pieces  # the mouth's shape, learned from the training scripts ...
    assert pieces is not None and pieces.landmarks == tuple(character.info.discontinuous)
    assert pieces.detector_cov is None  # ... but 12 checked frames are too few to measure its detector
    prints = character.prints  # the mouth's prints, from the training scripts' plates
    assert prints is not None and prints.shape_names == ("mouth",)
    assert prints.face_landmarks == character.shape_prior.anchors
    mouth = prints.shapes[0]
    assert mouth.count == character.rig.shape("mouth").k and 1 < len(mouth.prints) <= 12
    assert {p.source for p in mouth.prints} <= {str(s) for s in calibrated["prior_scripts"]}
    assert prints.readout is None  # 12 checked frames are too few to weigh the snapped points
    card = json.loads((calibrated["out"] / "card.json").read_text())
    assert "prints.json" in card["files"] and "print library" in card["lineage"]["change"]
    assert card["version"] == "v002"
    assert card["lineage"]["parent"].endswith("/v001")
    assert "calibrated" in card["lineage"]["change"]
    cal = card["metrics"]["calibration"]
    assert cal["command"] == "seamroto calibrate (test)"
    assert len(cal["checked_shots"]) == 2 and len(cal["after"]) == 2
    assert cal["after"][0]["frames"] == 6


def test_recalibrating_keeps_the_prior_and_refits_the_error_model(
    calibrated: dict, checked: list, tmp_path: Path
) -> None:
    from seamroto.shapeprior import load_shape_prior

    first = load_shape_prior(calibrated["out"])
    out = calibrate_command(calibrated["out"], checked[:1], tmp_path / "v003")["model"]
    again = load_shape_prior(out)
    assert first is not None and again is not None
    assert again.to_dict()["weights"] == first.to_dict()["weights"]  # the regression is the model's own
    assert again.error_model != first.error_model  # fitted on other checked frames
    card = json.loads((out / "card.json").read_text())
    assert card["metrics"]["calibration"]["prior_shots"] == []
    assert "learned again" not in card["lineage"]["change"]


def test_training_scripts_whose_plates_moved_still_give_a_prior_but_no_prints(
    tiny_model: Path, checked: list, prior_scripts: list, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    moved = []
    for i, script in enumerate(prior_scripts):
        moved.append(tmp_path / f"s{i}" / "gt.nk")
        moved[-1].parent.mkdir()
        text = Path(script).read_text().replace(str(Path(script).parent / "plates"), str(tmp_path / "moved"))
        moved[-1].write_text(text)  # the Read node names plates that are no longer there
    with caplog.at_level(logging.WARNING):
        out = calibrate_command(tiny_model, checked, tmp_path / "v5", prior_shots=moved)["model"]
    assert "no prints are taken from it" in caplog.text
    card = json.loads((out / "card.json").read_text())
    assert "shape_prior.json" in card["files"] and "prints.json" not in card["files"]


def test_too_few_training_scripts_for_a_prior_is_a_clear_error(tiny_model: Path, checked: list, tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="cannot learn a shape prior"):
        calibrate_command(tiny_model, checked, tmp_path / "v7", prior_shots=checked[:1])
    assert not (tmp_path / "v7").exists()


def test_calibrated_model_tracks_and_refits_with_its_print_library(
    calibrated: dict, farm_plates: Dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from seamroto.pipeline import refit_command, track_command
    from seamroto.result import read_result

    with caplog.at_level(logging.INFO, logger="seamroto.printlib"):
        outputs = track_command(farm_plates["s1"], calibrated["out"], tmp_path / "out")
    result = json.loads(Path(outputs["result"]).read_text())
    assert result["model"]["version"] == "v002"
    assert "mouth snapped to the frame's edges" in caplog.text
    tracked = {s.name: s for s in read_result(outputs["result"]).shapes}
    # the touch-up loop: refit from the same tracks reads the plates again and snaps the same mouth
    refit_out = refit_command(calibrated["out"], Path(outputs["tracks"]), tmp_path / "r")
    refit = {s.name: s for s in read_result(refit_out["result"]).shapes}
    for frame in tracked["mouth"].key_frames:
        assert abs(refit["mouth"].points_array(frame) - tracked["mouth"].points_array(frame)).max() < 1e-2


def test_the_snapped_mouth_corners_are_weighed_on_the_checked_shots(
    calibrated: dict, checked: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seamroto import piecepoints, printlib
    from seamroto.annotations import load_annotations
    from seamroto.calibration import calibrate_readout, checked_shot
    from seamroto.pipeline import load_character

    monkeypatch.setattr(piecepoints, "MIN_FRAMES", 4)  # the test shots are 6 frames each
    # their mouths are a few px wide, too small to snap: every print "snaps" to the rigged piece
    monkeypatch.setattr(printlib.PrintSnapper, "snap", lambda self, name, packed, gray, radius: packed)
    character = load_character(calibrated["out"])
    scripts = load_annotations(checked)
    readout = calibrate_readout(character, [checked_shot(character, a) for a in scripts], scripts)
    assert readout is not None
    # the synthetic mouth's corners are its outline's points 0 and 4
    assert character.info.discontinuous == ("mouth_L", "mouth_R")
    assert [(g.shape, g.landmarks, g.indices) for g in readout.groups] == [("mouth", ("mouth_L", "mouth_R"), (0, 4))]
    assert readout.anchors == character.shape_prior.anchors
    for stats in readout.stats["landmarks"].values():
        assert stats["read_back_rms"] <= stats["tracked_rms"]  # least squares, in sample


def test_tracking_reads_a_corner_back_from_the_snapped_mouth(
    calibrated: dict, checked: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seamroto import printlib
    from seamroto.annotations import load_annotations
    from seamroto.datamodel import tracks_to_array
    from seamroto.piecepoints import PieceGroup, PieceReadout
    from seamroto.pipeline import TrackOptions, fit_shapes, load_character

    shift = np.array([0.5, -0.25])
    monkeypatch.setattr(printlib.PrintSnapper, "snap", lambda self, name, packed, gray, radius: packed + shift)
    character = load_character(calibrated["out"])
    prior = character.shape_prior
    readout = PieceReadout(prior.anchors, prior.template, (PieceGroup("mouth", ("mouth_L",), (0,), np.eye(2)),))
    character = dataclasses.replace(character, prints=character.prints.with_readout(readout))
    script = load_annotations(checked[:1])[0]
    names = list(character.model.landmark_names)
    frames = script.frames
    points = tracks_to_array(script.tracks, names, frames)[..., :2]
    grays = [object()] * len(frames)  # the patched snap never looks at them
    fit = fit_shapes(points, np.ones(points.shape[:2]), frames, character, TrackOptions(), names, grays)
    mouth = next(s for s in fit.shapes if s.name == "mouth")
    col = names.index("mouth_L")
    for i, frame in enumerate(frames):
        np.testing.assert_allclose(fit.landmarks[i, col], mouth.points_array(frame)[0, :2], atol=1e-6)
    others = [j for j in range(len(names)) if j != col]
    np.testing.assert_array_equal(fit.landmarks[:, others], points[:, others])
    assert fit.snapped["mouth"].all()
    plain = fit_shapes(points, np.ones(points.shape[:2]), frames, character, TrackOptions(snap_pieces=False), names,
                       grays)
    np.testing.assert_array_equal(plain.landmarks, points)  # no snap, nothing read back


def test_no_snap_leaves_the_pieces_as_the_rig_fits_them(
    calibrated: dict, farm_plates: Dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from seamroto import cli

    with caplog.at_level(logging.INFO, logger="seamroto.printlib"):
        code = cli.run(["track", farm_plates["s1"], "--model", str(calibrated["out"]), "-o", str(tmp_path / "o"),
                         "--no-snap"])
    assert code == 0
    assert "snapped to the frame's edges" not in caplog.text
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert result["options"]["snap_pieces"] is False  # recorded, so a re-run can match it


def test_refit_without_the_plates_keeps_the_pieces_as_rigged(
    calibrated: dict, farm_plates: Dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    from seamroto.pipeline import refit_command, track_command
    from seamroto.result import read_result

    plates = tmp_path / "plates"
    shutil.copytree(Path(farm_plates["s1"]).parent, plates)
    outputs = track_command(str(plates / Path(farm_plates["s1"]).name), calibrated["out"], tmp_path / "out")
    shutil.rmtree(plates)
    with caplog.at_level(logging.WARNING):
        out = refit_command(calibrated["out"], Path(outputs["tracks"]), tmp_path / "r")
    assert "left as the rig puts them" in caplog.text
    assert "mouth" in {s.name for s in read_result(out["result"]).shapes}


def test_existing_output_is_refused_before_any_work(
    tiny_model: Path, farm_shots: Dict[str, Path], tmp_path: Path
) -> None:
    taken = tmp_path / "v002"
    taken.mkdir()
    (taken / "keep.txt").write_text("artist file")
    with pytest.raises(OutputExistsError):
        calibrate_command(tiny_model, [farm_shots["s1"] / "gt.nk"], taken)
    assert (taken / "keep.txt").read_text() == "artist file"


def test_a_model_without_prior_needs_prior_shots(tiny_model: Path, checked: list, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="--prior-shot"):
        calibrate_command(tiny_model, checked, tmp_path / "v9")
    assert not (tmp_path / "v9").exists()


def test_a_script_without_the_characters_tracks_is_named(
    tiny_model: Path, farm_shots: Dict[str, Path], tmp_path: Path
) -> None:
    import re

    from seamroto.annotations import load_nk_annotation
    from seamroto.calibration import checked_shot
    from seamroto.pipeline import load_character

    # every track renamed, as in a script of another character: Tracker4 rows hold "NAME" {curve ...
    text = re.sub(r'"([A-Za-z_0-9]+)" \{curve', r'"other_\1" {curve', (farm_shots["s1"] / "gt.nk").read_text())
    other = tmp_path / "other_character.nk"
    other.write_text(text)
    annotation = load_nk_annotation(other)
    assert annotation.tracks and all(t.name.startswith("other_") for t in annotation.tracks)
    with pytest.raises(AnnotationError) as err:
        checked_shot(load_character(tiny_model), annotation)
    assert "other_character.nk" in str(err.value) and "Tracker4" in str(err.value)


def test_flag_figures_count_bad_and_flagged_frames() -> None:
    import numpy as np

    class Fused:
        frames = (1, 2, 3, 4)
        flagged_frames = (2, 3)
        points = np.zeros((4, 2, 2))

    truth = np.zeros((4, 2, 2))
    truth[1, 0] = [4.0, 0.0]  # frame 2: bad and flagged
    truth[3, 1] = [0.0, 3.5]  # frame 4: bad, not flagged
    fig = flag_figures(Fused(), truth)
    assert fig == FlagFigures(frames=4, bad_frames=2, flagged_frames=2, recall=0.5, fine_share=0.5,
                              mean_error_px=pytest.approx((4.0 + 3.5) / 8))
    assert "2 of 4 frames bad" in fig.summary()


def test_next_version_keeps_the_numbering(tmp_path: Path) -> None:
    assert next_version_dir(tmp_path / "v3") == tmp_path / "v4"
    assert next_version_dir(tmp_path / "v009") == tmp_path / "v010"
    assert next_version_dir(tmp_path / "best") == tmp_path / "best_calibrated"


def test_cli_calibrate_prints_the_new_version(calibrated: dict, checked: list, tmp_path: Path, capsys) -> None:
    import shutil

    from seamroto.cli import run

    model = tmp_path / "mara" / "v002"
    shutil.copytree(calibrated["out"], model)
    args = ["calibrate", "--model", str(model), "--shot", str(checked[0]), "--shot", str(checked[1])]
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert f"model: {tmp_path / 'mara' / 'v003'}" in printed  # the next version by default
    assert "before" in printed and "after" in printed
    assert run(args + ["-o", str(tmp_path / "mara" / "v003")]) == 1  # exists: nothing done


def test_protocol_calibrate_writes_the_version_the_host_asked_for(
    calibrated: dict, checked: list, tmp_path: Path
) -> None:
    from seamroto.protocol import make_request, run_request

    out = tmp_path / "v7"
    args = {"model_dir": str(calibrated["out"]), "shots": [{"ground_truth_nk": str(checked[0])}],
            "nk_files": [str(checked[1])], "out_dir": str(out)}
    outputs = run_request(make_request("calibrate", args))
    assert outputs["model_dir"] == str(out) and outputs["model_version"] == "v7"
    assert len(outputs["summary"]) == 2 and "after" in outputs["summary"][0]
    card = json.loads((out / "card.json").read_text())
    assert card["metrics"]["calibration"]["command"] == "seamroto_nuke calibrate"
    from seamroto.errors import ProtocolError

    with pytest.raises(ProtocolError, match="checked scripts"):
        run_request(make_request("calibrate", {"model_dir": str(calibrated["out"]), "out_dir": str(tmp_path / "v8")}))


def test_a_part_is_kept_where_it_helps_or_costs_little_and_dropped_where_it_costs() -> None:
    prior = lid_prior()
    truth = lid_shot(9)
    lid = LID_NAMES.index("lid")

    def fuse_with(error_with: float, error_without: float):
        def fuse(candidate):
            tracked = truth.copy()
            tracked[:, lid, 0] += error_with if "lid" in candidate.targets else error_without
            return [tracked]

        return fuse

    assert "lid" in prune_parts(prior, fuse_with(0.2, 1.0), [truth], LID_NAMES).targets
    within = 1.0 + 0.5 * PART_TOLERANCE
    assert "lid" in prune_parts(prior, fuse_with(within, 1.0), [truth], LID_NAMES).targets
    costly = prune_parts(prior, fuse_with(4.0, 1.0), [truth], LID_NAMES)
    assert "lid" not in costly.targets and "lid" in costly.stats["dropped"]
    assert costly.targets == tuple(t for t in prior.targets if t != "lid")  # outline targets are never pruned
