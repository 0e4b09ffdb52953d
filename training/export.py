"""Export a trained LandmarkNet to OpenVINO IR: FP32 always, INT8 only when it keeps accuracy.

``openvino.convert_model`` traces the torch module directly (no ONNX step). The IR takes a
dynamic batch of NCHW crops in [0, 1] and returns ``points`` (N, L, 2) in crop px and ``conf``
(N, L). INT8 goes through NNCF post-training quantisation with the soft-argmax kept in float
(NNCF's default INT8 soft-argmax costs pixels, see STACK.md), and is kept only if its held-out
error stays within ``INT8_TOLERANCE_PX`` of FP32.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import openvino as ov
import torch

from seamroto.models import IR_FILES, compile_config, get_core
from training.net import LandmarkNet

logger = logging.getLogger(__name__)

INT8_TOLERANCE_PX = 0.1
CALIBRATION_MAX = 300
# Node-name pattern of the head that must stay float (module name in net.py).
SOFTARGMAX_PATTERN = r".*softargmax.*"
OUTPUT_NAMES = ("points", "conf")

# (points_crop (N, L, 2), conf (N, L)) for crops (N, S, S, 3) -> frame-px mean error.
ErrorFn = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class ExportResult:
    """What export wrote and measured; goes into the model card."""

    precisions: tuple
    precision: str
    fp32_error_px: Optional[float]
    int8_error_px: Optional[float]
    int8_kept: bool
    int8_reason: str

    def to_json(self) -> Dict[str, Any]:
        """JSON-ready dict."""
        return {
            "precisions": list(self.precisions),
            "precision": self.precision,
            "fp32_mean_px": self.fp32_error_px,
            "int8_mean_px": self.int8_error_px,
            "int8_kept": self.int8_kept,
            "int8_reason": self.int8_reason,
            "int8_tolerance_px": INT8_TOLERANCE_PX,
        }


def convert_to_ov(net: LandmarkNet) -> Any:
    """Trace ``net`` (eval mode) to an ``openvino.Model`` with a dynamic batch."""
    s = net.cfg.input_size
    net = net.eval()
    with torch.no_grad():
        model = ov.convert_model(
            net, example_input=torch.zeros(1, 3, s, s), input=[ov.PartialShape([-1, 3, s, s])]
        )
    for out, name in zip(model.outputs, OUTPUT_NAMES):
        out.get_tensor().set_names({name})
    return model


def compile_cpu(model: Any) -> Any:
    """Compile as ``seamroto.models.load_model`` does (f32 pinned, machine threads)."""
    return get_core().compile_model(model, "CPU", compile_config())


def export_fp32(net: LandmarkNet, xml_path: Path) -> Path:
    """Write one FP32 IR (``.xml`` + ``.bin`` beside it); used for the refiner."""
    ov.save_model(convert_to_ov(net), str(xml_path), compress_to_fp16=False)
    return Path(xml_path)


def run_compiled(compiled: Any, crops: np.ndarray, batch: int = 16) -> tuple:
    """Points and conf for crops (N, S, S, 3) through a compiled model (synchronous)."""
    req = compiled.create_infer_request()
    pts, conf = [], []
    for i in range(0, len(crops), batch):
        x = np.ascontiguousarray(crops[i : i + batch].transpose(0, 3, 1, 2), dtype=np.float32)
        res = req.infer({0: x})
        pts.append(np.array(res[compiled.outputs[0]]))
        conf.append(np.array(res[compiled.outputs[1]]))
    return np.concatenate(pts), np.concatenate(conf)


def quantize_int8(model: Any, calibration_crops: np.ndarray) -> Any:
    """NNCF post-training INT8 with the soft-argmax head left in float."""
    import nncf

    nncf.set_log_level(logging.WARNING)  # it logs every ignored node at INFO
    data = [c.transpose(2, 0, 1)[None].astype(np.float32) for c in calibration_crops[:CALIBRATION_MAX]]
    return nncf.quantize(
        model,
        nncf.Dataset(data),
        subset_size=len(data),
        ignored_scope=nncf.IgnoredScope(patterns=[SOFTARGMAX_PATTERN]),
    )


def export_ir(
    net: LandmarkNet,
    out_dir: Path,
    *,
    calibration_crops: Optional[np.ndarray] = None,
    heldout_crops: Optional[np.ndarray] = None,
    heldout_error: Optional[Callable[[np.ndarray], float]] = None,
    int8: bool = True,
) -> ExportResult:
    """Write ``model.xml/.bin`` (FP32) and, if it holds accuracy, ``model_int8.xml/.bin``.

    Args:
        net: trained network.
        out_dir: model folder being built (staged).
        calibration_crops: (N, S, S, 3) model-space crops for INT8 calibration (training crops).
        heldout_crops: crops to compare FP32 and INT8 on.
        heldout_error: maps predicted crop points (N, L, 2) to a mean frame-px error.
        int8: try INT8 at all.

    Returns:
        Which precisions were written and why.
    """
    out_dir = Path(out_dir)
    model = convert_to_ov(net)
    xml, _ = IR_FILES["fp32"]
    ov.save_model(model, str(out_dir / xml), compress_to_fp16=False)
    fp32_err: Optional[float] = None
    if heldout_crops is not None and heldout_error is not None:
        fp32_err = heldout_error(run_compiled(compile_cpu(model), heldout_crops)[0])
    if not int8 or calibration_crops is None or len(calibration_crops) == 0:
        return ExportResult(("fp32",), "fp32", fp32_err, None, False, "INT8 not attempted")
    try:
        q = quantize_int8(model, calibration_crops)
    except (RuntimeError, ValueError) as err:  # NNCF raises plain errors on odd graphs
        logger.warning("INT8 quantisation failed, keeping FP32 only: %s", err)
        return ExportResult(("fp32",), "fp32", fp32_err, None, False, f"quantisation failed: {err}")
    int8_err: Optional[float] = None
    if heldout_crops is not None and heldout_error is not None:
        int8_err = heldout_error(run_compiled(compile_cpu(q), heldout_crops)[0])
    if fp32_err is None or int8_err is None:
        return ExportResult(("fp32",), "fp32", fp32_err, int8_err, False, "no held-out data to check INT8")
    if int8_err - fp32_err > INT8_TOLERANCE_PX:
        reason = f"INT8 held-out error {int8_err:.3f} px > FP32 {fp32_err:.3f} + {INT8_TOLERANCE_PX} px"
        logger.info("INT8 dropped: %s", reason)
        return ExportResult(("fp32",), "fp32", fp32_err, int8_err, False, reason)
    xml8, _ = IR_FILES["int8"]
    ov.save_model(q, str(out_dir / xml8), compress_to_fp16=False)
    reason = f"INT8 held-out error {int8_err:.3f} px within {INT8_TOLERANCE_PX} px of FP32 {fp32_err:.3f}"
    logger.info("INT8 kept: %s", reason)
    return ExportResult(("fp32", "int8"), "int8", fp32_err, int8_err, True, reason)
