"""Adding a shape prior to a model folder: a verified copy or in place, the card listing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seamroto import shapeprior
from seamroto.character import CharacterInfo, write_character
from seamroto.errors import ModelChecksumError, ModelError, OutputExistsError
from seamroto.models import CropRule, ModelCard, file_sha256, read_card, verify_files, write_card
from tests.core.test_shapeprior import NAMES, learned
from training.shape_prior import add_to_model, main, read_prior_file


def _model(root: Path) -> Path:
    """A model folder with a card and character facts (no network: enough for the prior)."""
    folder = root / "v1"
    folder.mkdir(parents=True)
    facts = write_character(folder, CharacterInfo("toy", (), ()))
    card = ModelCard(
        character="toy", version="v1", landmarks=NAMES, input_size=64, colour_space="sRGB",
        normalisation={}, crop=CropRule(), training_data_sha256="0" * 64,
        files={facts.name: file_sha256(facts)}, metrics={}, lineage={}, created="2026-01-01T00:00:00+00:00",
        seamroto_version="0", precision="fp32",
    )
    write_card(folder, card)
    return folder


def test_copy_gets_the_prior_and_a_card_that_verifies_and_the_source_is_untouched(tmp_path: Path) -> None:
    src = _model(tmp_path)
    before = (src / "card.json").read_text(encoding="utf-8")
    out = add_to_model(src, learned(), tmp_path / "v1_prior")
    card = read_card(out)
    assert card.files[shapeprior.SHAPE_PRIOR_FILE] == file_sha256(out / shapeprior.SHAPE_PRIOR_FILE)
    verify_files(out, card)
    assert shapeprior.load_shape_prior(out) is not None
    assert (src / "card.json").read_text(encoding="utf-8") == before
    assert not (src / shapeprior.SHAPE_PRIOR_FILE).exists()
    with pytest.raises(OutputExistsError):
        add_to_model(src, learned(), out)


def test_in_place_and_a_later_edit_is_caught(tmp_path: Path) -> None:
    src = _model(tmp_path)
    add_to_model(src, learned())
    assert shapeprior.load_shape_prior(src) is not None
    path = src / shapeprior.SHAPE_PRIOR_FILE
    path.write_text(path.read_text(encoding="utf-8") + " ", encoding="utf-8")
    with pytest.raises(ModelChecksumError):
        shapeprior.load_shape_prior(src)


def test_installing_a_calibrated_prior_checks_its_landmarks(tmp_path: Path) -> None:
    src = _model(tmp_path)
    good = tmp_path / "cal.json"
    good.write_text(json.dumps(learned().to_dict()), encoding="utf-8")
    assert main(["--model", str(src), "--prior-from", str(good), "-o", str(tmp_path / "v1_cal")]) == 0
    assert shapeprior.load_shape_prior(tmp_path / "v1_cal") is not None
    doc = learned().to_dict()
    doc["targets"][0] = "ear"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ModelError):
        read_prior_file(src, bad)
