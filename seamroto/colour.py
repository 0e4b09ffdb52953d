"""Colour conversion into and out of the model's input space, with a built-in OpenColorIO config.

The landmark model sees display-encoded sRGB code values (what an artist sees on an sRGB
monitor, and what PNG training frames hold). EXR plates are scene-linear and must be encoded
first; PNG/JPEG plates are already encoded and pass through. The config is one of OCIO's
built-in configs (no files to install), named by URI so it can be recorded in a model card.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
from typing import Dict, Union

import cv2
import numpy as np
import PyOpenColorIO as ocio

from seamroto.errors import ColourError, ShapeError

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_CONFIG = "ocio://cg-config-latest"
#: The model's input space: sRGB-encoded Rec.709 (alias "sRGB - Texture", "srgb_tx").
MODEL_SPACE = "sRGB Encoded Rec.709 (sRGB)"
#: Linear with Rec.709/sRGB primaries: Nuke's default working space, so the EXR default. The
#: built-in configs' ``scene_linear`` role is ACEScg instead; pass it explicitly for ACES shows.
LINEAR_SPACE = "Linear Rec.709 (sRGB)"
#: Default colour space of a plate by extension. DPX and integer TIFF from stop-motion stills
#: cameras are usually display-encoded; log DPX needs an explicit space (e.g. "ACEScct").
EXTENSION_SPACES: Dict[str, str] = {
    ".exr": LINEAR_SPACE,
    ".hdr": LINEAR_SPACE,
    ".png": MODEL_SPACE,
    ".jpg": MODEL_SPACE,
    ".jpeg": MODEL_SPACE,
    ".tif": MODEL_SPACE,
    ".tiff": MODEL_SPACE,
    ".dpx": MODEL_SPACE,
}
#: How many valid names a ColourError suggests.
NAMES_SHOWN = 6
PROCESSOR_CACHE_SIZE = 32


@functools.lru_cache(maxsize=4)
def get_config(config: str = DEFAULT_CONFIG) -> ocio.Config:
    """Load (once) an OCIO config by built-in URI (``ocio://...``) or file path.

    Raises:
        ColourError: The config cannot be loaded.
    """
    try:
        return ocio.Config.CreateFromFile(config)
    except (ocio.Exception, ocio.ExceptionMissingFile) as err:
        raise ColourError(
            f"cannot load the OpenColorIO config ({err}); use a built-in one such as "
            f"{DEFAULT_CONFIG!r} or 'ocio://studio-config-latest'.",
            path=config,
        ) from err


def resolve_colourspace(name: str, *, config: str = DEFAULT_CONFIG) -> str:
    """The config's canonical colour-space name for ``name`` (a name, alias or role).

    Raises:
        ColourError: Unknown in this config; the message suggests close and common names.
    """
    cfg = get_config(config)
    cs = cfg.getColorSpace(name)
    if cs is not None:
        return str(cs.getName())
    names = [c.getName() for c in cfg.getColorSpaces()]
    names += [a for c in cfg.getColorSpaces() for a in c.getAliases()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    common = [MODEL_SPACE, LINEAR_SPACE, "ACEScg", "scene_linear", "Raw"]
    shown = list(dict.fromkeys(close + common))[:NAMES_SHOWN]
    raise ColourError(
        f"unknown colour space {name!r} in {cfg.getName()}; valid names include " + ", ".join(repr(n) for n in shown),
        path=config,
    )


@functools.lru_cache(maxsize=PROCESSOR_CACHE_SIZE)
def _processor(config: str, src: str, dst: str) -> ocio.CPUProcessor:
    proc = get_config(config).getProcessor(src, dst)
    return proc.getOptimizedCPUProcessor(ocio.OPTIMIZATION_DEFAULT)


def convert(img: np.ndarray, src: str, dst: str, *, config: str = DEFAULT_CONFIG) -> np.ndarray:
    """Convert RGB from ``src`` to ``dst``; the input is not modified.

    Args:
        img: Shape: (..., 3) float, any leading shape (an image (H, W, 3) or points (N, 3)).
        src: Source colour space (name, alias or role).
        dst: Destination colour space.
        config: OCIO config URI or path.

    Returns:
        Shape: same as ``img``, float32.

    Raises:
        ShapeError: The last axis is not 3.
        ColourError: A colour space is unknown.
    """
    arr = np.asarray(img)
    if arr.ndim < 1 or arr.shape[-1] != 3 or arr.dtype.kind != "f":
        raise ShapeError("img", (arr.shape, str(arr.dtype)), "(..., 3) float")
    src_name = resolve_colourspace(src, config=config)
    dst_name = resolve_colourspace(dst, config=config)
    out = np.array(arr, dtype=np.float32, order="C", copy=True)
    if src_name == dst_name or out.size == 0:
        return out
    # Image rows as OCIO lines: one 3-million-pixel line was 3x slower. A packed 3-channel
    # descriptor applied in place beat applyRGB (2.8x) and a packed RGBA buffer (1.6x, counting
    # the packing) on a 2K frame here.
    width = out.shape[-2] if out.ndim >= 2 else 1
    rows = out.reshape(-1, width, 3)
    desc = ocio.PackedImageDesc(rows, width, rows.shape[0], 3)
    _processor(config, src_name, dst_name).apply(desc)
    return out


def to_model_space(
    img: np.ndarray, src_colourspace: str, *, clip: bool = True, config: str = DEFAULT_CONFIG
) -> np.ndarray:
    """Encode a plate for the model (sRGB code values), from its own colour space.

    ``clip`` maps NaN to 0 and clamps to 0..1: the model was trained on 8-bit code values, and
    scene-linear highlights above 1 or negative grain would otherwise reach it.

    Args:
        img: Shape: (H, W, 3) (or (..., 3)) float.
        src_colourspace: The plate's colour space (``colourspace_for`` gives the default).
        clip: Clamp to 0..1 after encoding.
        config: OCIO config URI or path.

    Returns:
        Shape: same as ``img``, float32.
    """
    out = convert(img, src_colourspace, MODEL_SPACE, config=config)
    if clip:
        # fmax/fmin return the number when the other operand is NaN: NaN -> 0, inf -> 1, -inf -> 0,
        # at a third of nan_to_num + clip's cost.
        np.fmax(out, 0.0, out=out)
        np.fmin(out, 1.0, out=out)
    return out


#: Entries of the linear-luma -> model-space grey table: steps of 1.5e-5, finer than one 8-bit
#: sRGB code value even in the shadows (0.0003 linear).
GRAY_TABLE_SIZE = 65536
REC709_LUMA = (0.2126, 0.7152, 0.0722)


@functools.lru_cache(maxsize=PROCESSOR_CACHE_SIZE)
def _gray_table(src_colourspace: str, config: str) -> np.ndarray:
    ramp = np.repeat(np.linspace(0.0, 1.0, GRAY_TABLE_SIZE, dtype=np.float32)[:, None], 3, axis=1)
    encoded = to_model_space(ramp, src_colourspace, config=config) @ np.asarray(REC709_LUMA, np.float32)
    return np.clip(encoded * 255.0 + 0.5, 0, 255).astype(np.uint8)


def model_gray_u8(img: np.ndarray, src_colourspace: str, *, config: str = DEFAULT_CONFIG) -> np.ndarray:
    """8-bit grey in the model space, for optical flow, at a fraction of ``to_model_space``'s cost.

    Luma is taken first and encoded through a 1D table, which is exact for neutral pixels and
    a close monotonic grey for coloured ones: all that LK needs, since it compares a region with
    itself on the next frame.

    Args:
        img: Shape: (H, W, 3) float, in ``src_colourspace``.
        src_colourspace: The plate's colour space.
        config: OCIO config URI or path.

    Returns:
        Shape: (H, W) uint8.
    """
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] < 3 or arr.dtype.kind != "f":
        raise ShapeError("img", (arr.shape, str(arr.dtype)), "(H, W, 3) float")
    rgb = arr[..., :3] if arr.dtype == np.float32 else arr[..., :3].astype(np.float32)
    if resolve_colourspace(src_colourspace, config=config) == resolve_colourspace(MODEL_SPACE, config=config):
        luma = cv2.transform(rgb, np.asarray([REC709_LUMA], np.float32))
        return np.clip(luma * 255.0 + 0.5, 0, 255).astype(np.uint8)
    table = _gray_table(src_colourspace, config)
    top = GRAY_TABLE_SIZE - 1
    luma = cv2.transform(rgb, np.asarray([[*REC709_LUMA, 0.5 / top]], np.float32) * top)
    np.fmax(luma, 0.0, out=luma)  # NaN -> 0 too
    np.fmin(luma, top, out=luma)
    return np.take(table, luma.astype(np.uint16))


def from_model_space(img: np.ndarray, dst_colourspace: str, *, config: str = DEFAULT_CONFIG) -> np.ndarray:
    """Decode model-space code values into ``dst_colourspace`` (e.g. to write an EXR preview).

    Returns:
        Shape: same as ``img``, float32.
    """
    return convert(img, MODEL_SPACE, dst_colourspace, config=config)


def colourspace_for(path: PathLike) -> str:
    """Default colour space of a plate file or pattern, by extension (EXR linear, else encoded)."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    return EXTENSION_SPACES.get(ext, MODEL_SPACE)


def describe(config: str = DEFAULT_CONFIG) -> Dict[str, str]:
    """What colour management a result used, for outputs and model cards.

    Returns:
        ``config`` (URI), ``config_name`` (versioned name inside it), ``ocio_version``,
        ``model_space``, ``linear_space``, ``scene_linear`` (the role's colour space).
    """
    cfg = get_config(config)
    return {
        "config": config,
        "config_name": str(cfg.getName()),
        "ocio_version": str(ocio.__version__),
        "model_space": resolve_colourspace(MODEL_SPACE, config=config),
        "linear_space": resolve_colourspace(LINEAR_SPACE, config=config),
        "scene_linear": resolve_colourspace("scene_linear", config=config),
    }
