"""Model folders without torch: card schema, checksums before reading, discovery, one Core."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from seamroto import models
from seamroto.errors import ModelChecksumError, ModelError, ModelSchemaError

SIZE = 32


def write_model(folder: Path) -> Path:
    """A constant-output IR (points = crop centre) with a valid card."""
    folder.mkdir(parents=True, exist_ok=True)
    x = ops.parameter(ov.PartialShape([-1, 3, SIZE, SIZE]), np.float32, name="input")
    mean = ops.reduce_mean(x, np.array([1, 2, 3]), keep_dims=False)  # (N,)
    zero = ops.multiply(ops.reshape(mean, np.array([-1, 1, 1], np.int64), False), np.float32(0.0))
    points = ops.add(zero, np.full((1, 1, 2), SIZE / 2, np.float32))
    conf = ops.add(ops.reshape(zero, np.array([-1, 1], np.int64), False), np.float32(1.0))
    ov.save_model(ov.Model([points, conf], [x], "const"), str(folder / "model.xml"), compress_to_fp16=False)
    card = models.ModelCard(
        character=folder.parent.name, version=folder.name, landmarks=("p0",), input_size=SIZE,
        colour_space="sRGB Encoded Rec.709 (sRGB)", normalisation={}, crop=models.CropRule(1.4),
        training_data_sha256="0" * 64,
        files={n: models.file_sha256(folder / n) for n in ("model.xml", "model.bin")},
        metrics={}, lineage={}, created="2026-01-01T00:00:00+00:00", seamroto_version="test",
        precision="fp32",
    )
    models.write_card(folder, card)
    return folder


def test_card_round_trips_through_json(tmp_path: Path) -> None:
    d = write_model(tmp_path / "c" / "v1")
    card = models.read_card(d)
    assert models.ModelCard.from_json(json.loads(json.dumps(card.to_json()))) == card
    assert json.loads((d / "card.json").read_text())["schema"] == "SeamRotoModelCard.1"


def test_load_records_precision_and_uses_one_core(tmp_path: Path) -> None:
    a = models.load_model(write_model(tmp_path / "c" / "v1"))
    b = models.load_model(write_model(tmp_path / "c" / "v2"))
    assert a.precision == "fp32" and a.inference_precision == "f32"
    assert models.get_core() is models.get_core()
    assert a.compiled is not b.compiled


def test_checksum_is_checked_before_openvino_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = write_model(tmp_path / "c" / "v1")
    with open(d / "model.xml", "a") as fh:
        fh.write(" ")
    monkeypatch.setattr(models, "get_core", lambda: pytest.fail("OpenVINO touched"))
    with pytest.raises(ModelChecksumError, match="model.xml") as info:
        models.load_model(d)
    assert info.value.path is not None and info.value.path.endswith("model.xml")


def test_schema_and_missing_card_errors(tmp_path: Path) -> None:
    d = write_model(tmp_path / "c" / "v1")
    data = json.loads((d / "card.json").read_text())
    (d / "card.json").write_text(json.dumps({**data, "schema": "Other.2"}))
    with pytest.raises(ModelSchemaError, match=r"'Other\.2'.*SeamRotoModelCard\.1"):
        models.load_model(d)
    (d / "card.json").unlink()
    with pytest.raises(ModelError, match="card.json"):
        models.load_model(d)
    with pytest.raises(ModelError, match="precision"):
        models.load_model(d, precision="fp16")


def test_card_listing_a_path_outside_the_folder_is_refused(tmp_path: Path) -> None:
    d = write_model(tmp_path / "c" / "v1")
    data = json.loads((d / "card.json").read_text())
    data["files"]["../evil"] = "0" * 64
    (d / "card.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="plain file name"):
        models.load_model(d)


def test_find_models_walks_search_paths_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_model(tmp_path / "a" / "mara" / "v001")
    write_model(tmp_path / "a" / "mara" / "v002")
    write_model(tmp_path / "b" / "otto" / "v001")
    (tmp_path / "a" / "junk").mkdir()
    monkeypatch.setenv(models.MODELS_ENV, str(tmp_path / "b") + ":" + str(tmp_path / "missing"))
    found = [(e.character, e.version) for e in models.find_models([tmp_path / "a", *models.default_search_paths()[1:]])]
    assert found == [("mara", "v001"), ("mara", "v002"), ("otto", "v001")]
