"""Model folders: the card schema, checksum-verified loading of the OpenVINO IR, and discovery.

A model is ``models/<character>/<version>/{model.xml, model.bin, [model_int8.xml/.bin],
card.json}``. Loading checks every sha256 in the card before OpenVINO reads a byte of the IR,
and never unpickles or executes anything: the IR is a graph description plus raw weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from seamroto.errors import ModelChecksumError, ModelError, ModelSchemaError

logger = logging.getLogger(__name__)

CARD_SCHEMA = "SeamRotoModelCard.1"
CARD_NAME = "card.json"
IR_FILES: Mapping[str, Tuple[str, str]] = {
    "fp32": ("model.xml", "model.bin"),
    "int8": ("model_int8.xml", "model_int8.bin"),
}
PRECISIONS = tuple(IR_FILES)
MODELS_ENV = "SEAMROTO_MODELS"
# models/ next to the package (repo checkout layout), never relative to the cwd.
BUNDLED_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
HASH_CHUNK_BYTES = 1 << 20
# OpenVINO silently runs "FP32" as bf16 on AVX512_BF16 CPUs unless told otherwise (STACK.md).
INFERENCE_PRECISION = "f32"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class CropRule:
    """How a face box becomes the square crop the model sees.

    The crop is centred on the box centre with side ``max(w, h) * scale``, where the box is the
    bounding box of the landmarks (``box_from = "landmarks_bbox"``); it is then resampled to
    ``input_size`` x ``input_size``. Because the crop is normalised by the box, plates at another
    resolution than the training plates work unchanged.
    """

    scale: float = 1.4
    box_from: str = "landmarks_bbox"
    square: bool = True

    def to_json(self) -> Dict[str, Any]:
        """JSON-ready dict."""
        return {"scale": self.scale, "box_from": self.box_from, "square": self.square}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CropRule:
        """Inverse of ``to_json``."""
        return cls(float(d["scale"]), str(d.get("box_from", "landmarks_bbox")), bool(d.get("square", True)))


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to use, trust and reproduce a model (``card.json``)."""

    character: str
    version: str
    landmarks: Tuple[str, ...]
    input_size: int
    colour_space: str
    normalisation: Mapping[str, Any]
    crop: CropRule
    training_data_sha256: str
    files: Mapping[str, str]
    metrics: Mapping[str, Any]
    lineage: Mapping[str, Any]
    created: str
    seamroto_version: str
    precision: str
    precisions: Tuple[str, ...] = ("fp32",)
    input_layout: str = "NCHW"
    architecture: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    refiner: Optional[RefinerInfo] = None
    schema: str = CARD_SCHEMA

    def to_json(self) -> Dict[str, Any]:
        """JSON-ready dict in schema order."""
        return {
            "schema": self.schema,
            "character": self.character,
            "version": self.version,
            "landmarks": list(self.landmarks),
            "input_size": self.input_size,
            "input_layout": self.input_layout,
            "colour_space": self.colour_space,
            "normalisation": dict(self.normalisation),
            "crop": self.crop.to_json(),
            "training_data_sha256": self.training_data_sha256,
            "files": dict(sorted(self.files.items())),
            "metrics": dict(self.metrics),
            "lineage": dict(self.lineage),
            "created": self.created,
            "seamroto_version": self.seamroto_version,
            "precision": self.precision,
            "precisions": list(self.precisions),
            "architecture": dict(self.architecture),
            "training": dict(self.training),
            "refiner": None if self.refiner is None else self.refiner.to_json(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any], path: Optional[PathLike] = None) -> ModelCard:
        """Parse a card dict; refuse any schema but ``CARD_SCHEMA``.

        Raises:
            ModelSchemaError: the card names another (or no) schema.
            ModelError: a required field is missing or malformed.
        """
        where = None if path is None else str(path)
        schema = d.get("schema") if isinstance(d, Mapping) else None
        if schema != CARD_SCHEMA:
            raise ModelSchemaError(
                f"model card has schema {schema!r}, but this SeamRoto version reads only "
                f"{CARD_SCHEMA!r}; use a SeamRoto version that matches the model, or retrain it",
                path=where,
            )
        try:
            return cls(
                character=str(d["character"]),
                version=str(d["version"]),
                landmarks=tuple(str(n) for n in d["landmarks"]),
                input_size=int(d["input_size"]),
                colour_space=str(d["colour_space"]),
                normalisation=dict(d["normalisation"]),
                crop=CropRule.from_json(d["crop"]),
                training_data_sha256=str(d["training_data_sha256"]),
                files={str(k): str(v) for k, v in d["files"].items()},
                metrics=dict(d.get("metrics", {})),
                lineage=dict(d.get("lineage", {})),
                created=str(d["created"]),
                seamroto_version=str(d["seamroto_version"]),
                precision=str(d["precision"]),
                precisions=tuple(d.get("precisions", ("fp32",))),
                input_layout=str(d.get("input_layout", "NCHW")),
                architecture=dict(d.get("architecture", {})),
                training=dict(d.get("training", {})),
                refiner=RefinerInfo.from_json(d["refiner"]) if d.get("refiner") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ModelError(
                f"model card is malformed ({type(err).__name__}: {err}); re-export the model",
                path=where,
            ) from err


@dataclass(frozen=True)
class ModelEntry:
    """One model found on the search paths, for pickers: ``character``/``version`` at ``path``."""

    character: str
    version: str
    path: Path


@dataclass(frozen=True)
class RefinerInfo:
    """The optional second stage: per-landmark patches around the first stage's points.

    A patch is ``patch_size`` px square, centred on a landmark, oriented and scaled like the
    face crop, covering ``patch_fraction`` of the face crop's side: fine detail the face crop
    had to shrink away.
    """

    patch_size: int
    patch_fraction: float
    xml: str = "refiner.xml"
    bin: str = "refiner.bin"
    architecture: Mapping[str, Any] = field(default_factory=dict)
    # Per landmark, a 2x2 gain (face-crop axes) applied to the refiner's correction: ~identity
    # where the patch pins the landmark, ~0 along a featureless contour (fitted in training).
    blend: Optional[Tuple[Tuple[Tuple[float, float], Tuple[float, float]], ...]] = None

    def to_json(self) -> Dict[str, Any]:
        """JSON-ready dict."""
        return {"patch_size": self.patch_size, "patch_fraction": self.patch_fraction, "xml": self.xml,
                "bin": self.bin, "architecture": dict(self.architecture),
                "blend": None if self.blend is None else [[list(r) for r in m] for m in self.blend]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RefinerInfo:
        """Inverse of ``to_json``."""
        blend = d.get("blend")
        return cls(int(d["patch_size"]), float(d["patch_fraction"]), str(d.get("xml", "refiner.xml")),
                   str(d.get("bin", "refiner.bin")), dict(d.get("architecture", {})),
                   None if blend is None else tuple(
                       tuple((float(r[0]), float(r[1])) for r in m) for m in blend  # type: ignore[misc]
                   ))


class CompiledNet:
    """One compiled IR and its cached async request queues."""

    def __init__(self, compiled: Any, input_size: int, num_landmarks: int) -> None:
        self.compiled = compiled
        self.input_size = input_size
        self.num_landmarks = num_landmarks
        self._lock = threading.Lock()
        self._queues: Dict[int, Any] = {}
        self._requests = threading.local()

    def infer_one(self, batch: Any) -> Tuple[Any, Any]:
        """Points and confidences of one batch (N, 3, S, S), on this thread's own request.

        Why: a frame's face crop and its refiner patches are one batch each, and for them the
        async queue's callback and copies cost half as much again as the network itself.
        """
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        request.infer({0: batch}, share_inputs=True)
        return request.get_output_tensor(0).data.copy(), request.get_output_tensor(1).data.copy()

    def infer_queue(self, jobs: int) -> Any:
        """A cached ``openvino.AsyncInferQueue`` with ``jobs`` requests (one per size)."""
        import openvino as ov

        with self._lock:
            q = self._queues.get(jobs)
            if q is None:
                q = ov.AsyncInferQueue(self.compiled, jobs)
                self._queues[jobs] = q
            return q


class LandmarkModel:
    """A loaded, compiled landmark model; ``landmarks.predict_landmarks`` runs it.

    ``precision`` is the IR used ("fp32" or "int8"); ``inference_precision`` is what OpenVINO
    reports it computes float layers in (pinned to f32 so results match across CPUs).
    ``refiner`` is the compiled second stage, when the model has one.
    """

    def __init__(
        self,
        path: Path,
        card: ModelCard,
        compiled: Any,
        precision: str,
        inference_precision: str,
        refiner: Optional[Any] = None,
    ) -> None:
        self.path = path
        self.card = card
        self.compiled = compiled
        self.precision = precision
        self.inference_precision = inference_precision
        self.net = CompiledNet(compiled, card.input_size, len(card.landmarks))
        self.refiner: Optional[CompiledNet] = None
        if refiner is not None and card.refiner is not None:
            self.refiner = CompiledNet(refiner, card.refiner.patch_size, len(card.landmarks))

    @property
    def input_size(self) -> int:
        """Crop side in pixels."""
        return self.card.input_size

    @property
    def landmark_names(self) -> Tuple[str, ...]:
        """Landmark names in output order."""
        return self.card.landmarks

    def infer_queue(self, jobs: int) -> Any:
        """The first stage's async queue (see ``CompiledNet.infer_queue``)."""
        return self.net.infer_queue(jobs)

    def __repr__(self) -> str:
        return (
            f"LandmarkModel({self.card.character!r}, {self.card.version!r}, "
            f"precision={self.precision!r}, path={str(self.path)!r})"
        )


_CORE: Any = None
_CORE_LOCK = threading.Lock()


def get_core() -> Any:
    """The process's one ``openvino.Core`` (created on first use: importing is not free)."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            import openvino as ov

            _CORE = ov.Core()
        return _CORE


def machine_threads() -> int:
    """Cores this process may use (affinity-aware where the OS tells us)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def file_sha256(path: PathLike) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def read_card(model_dir: PathLike) -> ModelCard:
    """Read and validate ``card.json`` of a model folder.

    Raises:
        ModelError: no card, or it is not JSON.
        ModelSchemaError: the card is for another schema.
    """
    card_path = Path(model_dir) / CARD_NAME
    if not card_path.is_file():
        raise ModelError(
            f"no {CARD_NAME} in the model folder; a model folder needs model.xml, model.bin and "
            f"{CARD_NAME} (re-export or copy the whole folder)",
            path=str(Path(model_dir)),
        )
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read the model card: {err}", path=str(card_path)) from err
    return ModelCard.from_json(data, path=card_path)


def write_card(model_dir: PathLike, card: ModelCard) -> Path:
    """Write ``card.json`` atomically (sorted, indented: it is read by people too)."""
    from seamroto.fileio import atomic_write_text

    return atomic_write_text(
        Path(model_dir) / CARD_NAME, json.dumps(card.to_json(), indent=2) + "\n"
    )


def verify_files(model_dir: PathLike, card: ModelCard) -> None:
    """Check every file the card lists against its sha256.

    Raises:
        ModelError: a listed file is missing.
        ModelChecksumError: a file's content differs from the card (truncated, edited, swapped).
    """
    root = Path(model_dir)
    for name, expected in sorted(card.files.items()):
        if Path(name).name != name:
            raise ModelError(f"card lists {name!r}, which is not a plain file name", path=str(root))
        p = root / name
        if not p.is_file():
            raise ModelError(
                f"model file {name} is missing (the card lists it); copy the whole model folder",
                path=str(p),
            )
        actual = file_sha256(p)
        if actual != expected:
            raise ModelChecksumError(
                f"model file {name} does not match its card (sha256 {actual[:12]}..., card says "
                f"{expected[:12]}...): it was truncated or edited; re-copy or re-export the model",
                path=str(p),
            )


def read_listed_json(model_dir: PathLike, name: str, what: str, fix: str) -> Optional[Dict[str, Any]]:
    """A JSON file a model folder may hold beside its IR (shape prior, print library), verified.

    A file the folder's card does not list is ignored with a warning: every file a model uses
    is verified against the card, so a farm render reproduces the result.

    Args:
        model_dir: the model folder.
        name: the file's name in it.
        what: what it is, for messages ("shape prior").
        fix: what to do when it does not match its card.

    Returns:
        The parsed document, or None when the folder has no such file (or the card omits it).

    Raises:
        ModelChecksumError: the file does not match the sha256 in the card.
        ModelError: it cannot be read as JSON.
    """
    root = Path(model_dir)
    path = root / name
    if not path.is_file():
        return None
    try:
        listed = json.loads((root / CARD_NAME).read_text(encoding="utf-8")).get("files", {})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        listed = {}
    if name not in listed:
        logger.warning("%s is not listed in %s: ignored", path, CARD_NAME)
        return None
    actual, expected = file_sha256(path), str(listed[name])
    if actual != expected:
        raise ModelChecksumError(
            f"{name} does not match its card (sha256 {actual[:12]}..., card says {expected[:12]}...): {fix}",
            path=str(path),
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read the {what}: {err}", path=str(path)) from err
    if not isinstance(doc, dict):
        raise ModelError(f"the {what} is not a JSON object", path=str(path))
    return doc


def load_model(model_dir: PathLike, precision: str = "fp32", *, threads: Optional[int] = None) -> LandmarkModel:
    """Verify and compile a model folder for CPU inference.

    Args:
        model_dir: ``models/<character>/<version>`` folder.
        precision: "fp32" or "int8" (the INT8 IR exists only when export kept it).
        threads: inference threads; None = every core (a tracker that decodes plates on
            another thread leaves that core to it).

    Returns:
        The compiled model with its card.

    Raises:
        ModelSchemaError: the card is for another schema.
        ModelChecksumError: a file does not match its recorded sha256 (checked before reading).
        ModelError: a file is missing, the precision is not available, or OpenVINO cannot read it.
    """
    root = Path(model_dir)
    if precision not in IR_FILES:
        raise ModelError(f"precision {precision!r} is not one of {PRECISIONS}", path=str(root))
    card = read_card(root)
    xml_name, bin_name = IR_FILES[precision]
    for name in (xml_name, bin_name):
        if name not in card.files:
            avail = ", ".join(card.precisions)
            raise ModelError(
                f"this model has no {precision} IR ({name} not in its card; available: {avail})",
                path=str(root),
            )
    if card.refiner is not None:
        for name in (card.refiner.xml, card.refiner.bin):
            if name not in card.files:
                raise ModelError(f"the card's refiner names {name}, which its file list lacks", path=str(root))
    verify_files(root, card)
    if card.refiner is None:
        compiled, refiner = _compile(root, xml_name, bin_name, threads), None
    else:
        # OpenVINO compiles without the GIL: the two networks side by side take half the time
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="seamroto-compile") as pool:
            first = pool.submit(_compile, root, xml_name, bin_name, threads)
            second = pool.submit(_compile, root, card.refiner.xml, card.refiner.bin, threads)
            compiled, refiner = first.result(), second.result()
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    got = str(hint.get_type_name()) if hasattr(hint, "get_type_name") else str(hint)
    logger.info(
        "loaded model %s/%s (%s IR, inference precision %s%s)", card.character, card.version, precision, got,
        ", with refiner" if refiner is not None else "",
    )
    return LandmarkModel(root, card, compiled, precision, got, refiner)


def compile_config(threads: Optional[int] = None) -> Dict[str, Any]:
    """CPU compile properties every SeamRoto model uses (f32 pinned, this machine's threads)."""
    return {
        "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION,
        "INFERENCE_NUM_THREADS": max(1, threads or machine_threads()),
        "PERFORMANCE_HINT": "LATENCY",
    }


def _compile(root: Path, xml_name: str, bin_name: str, threads: Optional[int] = None) -> Any:
    """Read and compile one verified IR."""
    core = get_core()
    try:
        ov_model = core.read_model(str(root / xml_name), str(root / bin_name))
        return core.compile_model(ov_model, "CPU", compile_config(threads))
    except RuntimeError as err:
        raise ModelError(f"OpenVINO cannot load the IR: {err}", path=str(root / xml_name)) from err


def default_search_paths() -> List[Path]:
    """``models/`` of this checkout, then every folder on ``SEAMROTO_MODELS`` (os.pathsep list)."""
    paths = [BUNDLED_MODELS_DIR]
    env = os.environ.get(MODELS_ENV, "")
    paths += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    return paths


def find_models(search_paths: Optional[Iterable[PathLike]] = None) -> List[ModelEntry]:
    """Every ``<character>/<version>/card.json`` under the search paths, for pickers.

    Only the card's location is used (nothing is verified or compiled), so listing is cheap.
    Later search paths do not hide earlier ones; duplicates by path are dropped.

    Args:
        search_paths: folders holding ``<character>/<version>`` trees; defaults to
            ``default_search_paths()``.

    Returns:
        Entries sorted by character then version.
    """
    roots: Sequence[PathLike] = (
        default_search_paths() if search_paths is None else list(search_paths)
    )
    seen: set[Path] = set()
    out: List[ModelEntry] = []
    for root in roots:
        base = Path(root)
        if not base.is_dir():
            continue
        for card_path in sorted(base.glob(f"*/*/{CARD_NAME}")):
            model_dir = card_path.parent.resolve()
            if model_dir in seen or model_dir.name.startswith("."):
                continue
            seen.add(model_dir)
            out.append(ModelEntry(model_dir.parent.name, model_dir.name, model_dir))
    out.sort(key=lambda e: (e.character, e.version, str(e.path)))
    return out
