"""``report.html``: a self-contained review page (contact sheet, confidence plot, flagged frames first).

Everything is inlined (JPEG thumbnails as data URIs, the plot as SVG), so the page opens from a file
server or as a mail attachment with nothing beside it.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import cv2
import numpy as np

from seamroto.curves import sample_bezier
from seamroto.fileio import atomic_write_text
from seamroto.result import TrackResult

THUMB_WIDTH = 480
JPEG_QUALITY = 82
PLOT_W, PLOT_H = 900, 160
LANDMARK_BGR = (60, 220, 255)
FLAG_BGR = (40, 40, 255)
SHAPE_BGR = (255, 170, 60)
SEAM_BGR = (80, 255, 80)

DisplayFrame = Callable[[int], Optional[np.ndarray]]


def _thumbnail(image_display: np.ndarray, result: TrackResult, frame: int) -> Tuple[bytes, float]:
    """Draw tracks and shapes over one frame; returns JPEG bytes and the thumbnail scale."""
    h, w = image_display.shape[:2]
    scale = THUMB_WIDTH / float(w)
    thumb = cv2.resize(image_display, (THUMB_WIDTH, max(1, int(round(h * scale)))), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(np.clip(thumb * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    flagged = frame in set(result.flagged_frames)
    seam_names = {s.name for s in result.seams}
    for shape in result.shapes:
        pts = shape.keys.get(frame)
        if not pts:
            continue
        arr = np.array([[p.x, p.y, *p.left, *p.right] for p in pts], dtype=np.float64)
        poly = sample_bezier(arr[:, :6], shape.closed, 12) * scale
        colour = SEAM_BGR if (shape.name in seam_names or "seam" in shape.name) else SHAPE_BGR
        cv2.polylines(bgr, [np.round(poly * 4).astype(np.int32)], shape.closed, colour, 1, cv2.LINE_AA, shift=2)
    for track in result.tracks:
        s = track.samples.get(frame)
        if s is None or not np.isfinite(s.x):
            continue
        colour = FLAG_BGR if s.confidence < 0.5 else LANDMARK_BGR
        centre = (int(round(s.x * scale * 4)), int(round(s.y * scale * 4)))
        cv2.circle(bgr, centre, 8, colour, 1, cv2.LINE_AA, shift=2)
    if flagged:
        cv2.rectangle(bgr, (0, 0), (bgr.shape[1] - 1, bgr.shape[0] - 1), FLAG_BGR, 3)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - cv2 always encodes uint8 BGR
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes(), scale


def frame_confidence(result: TrackResult) -> Dict[int, float]:
    """Per-frame minimum landmark confidence (NaN-free; a frame with no landmark scores 0)."""
    out: Dict[int, float] = {}
    for f in range(result.first, result.last + 1):
        values = [t.samples[f].confidence for t in result.tracks if f in t.samples]
        out[f] = float(min(values)) if values else 0.0
    return out


def _confidence_svg(conf: Mapping[int, float], flagged: Iterable[int], threshold: float) -> str:
    frames = sorted(conf)
    if not frames:
        return ""
    f0, f1 = frames[0], max(frames[-1], frames[0] + 1)

    def px(f: int) -> float:
        return 30 + (f - f0) / (f1 - f0) * (PLOT_W - 40)

    def py(c: float) -> float:
        return 10 + (1.0 - c) * (PLOT_H - 30)

    path = " ".join(f"{'M' if i == 0 else 'L'}{px(f):.1f},{py(conf[f]):.1f}" for i, f in enumerate(frames))
    marks = "".join(
        f'<rect x="{px(f) - 1.5:.1f}" y="10" width="3" height="{PLOT_H - 30}" class="flag"/>' for f in flagged
    )
    return (
        f'<svg width="{PLOT_W}" height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}" role="img" '
        f'aria-label="per-frame confidence">{marks}'
        f'<line x1="30" x2="{PLOT_W - 10}" y1="{py(threshold):.1f}" y2="{py(threshold):.1f}" class="thr"/>'
        f'<path d="{path}" class="conf"/>'
        f'<text x="2" y="{py(1.0) + 4:.0f}">1</text><text x="2" y="{py(0.0) + 4:.0f}">0</text>'
        f'<text x="30" y="{PLOT_H - 4}">{f0}</text><text x="{PLOT_W - 50}" y="{PLOT_H - 4}">{frames[-1]}</text>'
        "</svg>"
    )


# Marks the page once every thumbnail decoded, so a headless check (and a curious lead) can see
# that nothing is missing: <body data-images="loaded/total">.
SELF_CHECK_JS = (
    "window.addEventListener('load',function(){var i=document.images,n=0;"
    "for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}"
    "document.body.setAttribute('data-images',n+'/'+i.length);});"
)

STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;background:#1d1f21;color:#ddd}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;background:#2a2c2f;padding:6px;border-radius:4px}
figure.flagged{outline:2px solid #f44}
figcaption{font-size:12px;color:#aaa;max-width:480px}
svg .conf{fill:none;stroke:#6cf;stroke-width:1.5}svg .thr{stroke:#fa0;stroke-dasharray:4 3}
svg .flag{fill:#f44;opacity:.35}svg text{fill:#aaa;font-size:11px}
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #333}
"""


def build_report(
    result: TrackResult,
    display_frame: DisplayFrame,
    *,
    threshold: float,
    max_frames: int = 60,
    title: str = "SeamRoto review",
) -> str:
    """The report's HTML. ``display_frame(frame)`` returns an sRGB-encoded float RGB image or None."""
    conf = frame_confidence(result)
    flagged = sorted(result.flagged_frames)
    rest = [f for f in range(result.first, result.last + 1) if f not in set(flagged)]
    step = max(1, len(rest) // max(1, max_frames - len(flagged)))
    order = flagged + rest[::step]
    figures: List[str] = []
    for f in order[: max(max_frames, len(flagged))]:
        img = display_frame(f)
        if img is None:
            continue
        jpeg, _ = _thumbnail(img, result, f)
        uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        reason = result.flag_reasons.get(f, "")
        cls = ' class="flagged"' if f in set(flagged) else ""
        caption = f"frame {f} · min confidence {conf.get(f, 0.0):.2f}"
        if reason:
            caption += f" · {html.escape(reason)}"
        figures.append(f'<figure{cls}><img src="{uri}" alt="frame {f}"><figcaption>{caption}</figcaption></figure>')
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{'closed' if s.closed else 'open'}</td>"
        f"<td>{s.point_count}</td><td>{len(result.shape_flags.get(s.name, ()))}</td></tr>"
        for s in result.shapes
    )
    model = result.model
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Plates <code>{html.escape(result.plates)}</code>, frames {result.first}–{result.last}, "
        f"{result.width}×{result.height}. Model {html.escape(model.name)} {html.escape(model.version)} "
        f"(sha256 {html.escape(model.sha256[:12])}). "
        f"<b>{len(flagged)}</b> of {result.last - result.first + 1} frames flagged for review "
        f"(confidence below {threshold:.2f} or face lost).</p>"
        f"<h2>Confidence per frame</h2>{_confidence_svg(conf, flagged, threshold)}"
        f"<h2>Shapes</h2><table><tr><th>shape</th><th>type</th><th>points</th><th>flagged frames</th></tr>"
        f"{rows}</table>"
        f"<h2>Frames (flagged first)</h2><div class='grid'>{''.join(figures)}</div>"
        f"<script>{SELF_CHECK_JS}</script>"
        "</body></html>\n"
    )


def write_report(path: Path, html_text: str) -> Path:
    """Write the report atomically."""
    return atomic_write_text(path, html_text)
