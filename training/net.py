"""The landmark network: a small MobileNetV2-style encoder, an FPN decoder and a soft-argmax head.

The head turns one heatmap per landmark into sub-pixel (x, y) in crop pixels (integral
regression, so the coordinate is differentiable and not quantised to the heatmap grid) plus a
confidence from the spread of the heatmap: a sharp, single peak means the net is sure.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Mapping, Tuple

import torch
from torch import nn
from torch.nn import functional as F

logger = logging.getLogger(__name__)

ARCH_NAME = "seamroto_fpn_softargmax.1"
# Spread (crop px, RMS of the heatmap distribution) at which confidence falls to 1/e.
CONF_SPREAD_PX = 3.0
BN_MOMENTUM = 0.05


@dataclass(frozen=True)
class NetConfig:
    """Everything needed to rebuild the network; stored in the model card and in checkpoints.

    ``heatmap_stride`` is 2 or 4: finer heatmaps cost decoder compute but help sub-pixel work.
    """

    num_landmarks: int
    input_size: int = 128
    stem: int = 16
    widths: Tuple[int, int, int, int] = (24, 32, 64, 96)
    repeats: Tuple[int, int, int, int] = (2, 3, 3, 2)
    expand: int = 4
    decoder: int = 48
    heatmap_stride: int = 4
    conf_spread_px: float = CONF_SPREAD_PX
    arch: str = field(default=ARCH_NAME)

    def to_json(self) -> Dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NetConfig:
        """Inverse of ``to_json``; refuses another architecture name."""
        if d.get("arch", ARCH_NAME) != ARCH_NAME:
            raise ValueError(f"architecture {d.get('arch')!r} is not {ARCH_NAME!r}")
        kw: Dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)

    @property
    def heatmap_size(self) -> int:
        """Side of the square heatmap in cells."""
        return self.input_size // self.heatmap_stride


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 project, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(cin, hidden, 1))
        layers += [
            _conv_bn(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, cin, H, W) -> (N, cout, H/stride, W/stride)."""
        y = self.body(x)
        return x + y if self.residual else y


class SeparableConv(nn.Module):
    """Depthwise 3x3 + pointwise 1x1: the decoder's cheap smoothing after each upsample."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.dw = _conv_bn(cin, cin, 3, groups=cin)
        self.pw = _conv_bn(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same spatial size, ``cout`` channels."""
        return self.pw(self.dw(x))


class SoftArgmax(nn.Module):
    """Heatmap logits -> expected (x, y) in crop px, the softmax, and a spread-based confidence.

    Cell j's centre sits at crop x = (j + 0.5) * stride (crop origin at the top-left corner),
    so the mapping to crop pixels is exact. Kept as its own module so INT8 export can leave it
    (by name, ``softargmax``) in float: quantising it costs several pixels.
    """

    def __init__(self, size: int, stride: int, conf_spread_px: float) -> None:
        super().__init__()
        grid = (torch.arange(size, dtype=torch.float32) + 0.5) * stride
        self.grid: torch.Tensor
        self.register_buffer("grid", grid, persistent=False)
        self.size = size
        self.conf_spread_px = conf_spread_px

    def forward(self, logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (N, L, H, W) -> points (N, L, 2) crop px, conf (N, L), prob (N, L, H, W)."""
        n, c, h, w = logits.shape
        prob = F.softmax(logits.reshape(n, c, h * w), dim=-1).reshape(n, c, h, w)
        px = prob.sum(dim=2)  # (N, L, W) marginal over rows
        py = prob.sum(dim=3)  # (N, L, H)
        x = (px * self.grid).sum(-1)
        y = (py * self.grid).sum(-1)
        var = (px * self.grid**2).sum(-1) - x * x + (py * self.grid**2).sum(-1) - y * y
        spread = torch.sqrt(torch.clamp(var, min=1e-6))
        conf = torch.exp(-spread / self.conf_spread_px)
        return torch.stack([x, y], dim=-1), conf, prob


class LandmarkNet(nn.Module):
    """Crop (N, 3, S, S) in the model's colour space, [0, 1] -> points (N, L, 2) crop px, conf (N, L).

    Normalisation is inside the graph so the exported IR takes plain [0, 1] RGB and nobody can
    apply the wrong mean/std at inference.
    """

    MEAN = (0.45, 0.45, 0.45)
    STD = (0.25, 0.25, 0.25)

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        if cfg.heatmap_stride not in (2, 4):
            raise ValueError("heatmap_stride must be 2 or 4")
        if cfg.input_size % 16:
            raise ValueError("input_size must be a multiple of 16")
        self.cfg = cfg
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)
        w4, w8, w16, w16b = cfg.widths
        r4, r8, r16, r16b = cfg.repeats
        self.stem = nn.Sequential(_conv_bn(3, cfg.stem, 3, 2), InvertedResidual(cfg.stem, cfg.stem, 1, 1))
        self.s4 = self._stage(cfg.stem, w4, r4, cfg.expand)
        self.s8 = self._stage(w4, w8, r8, cfg.expand)
        s16: list[nn.Module] = [self._stage(w8, w16, r16, cfg.expand)]
        s16 += [InvertedResidual(w16 if i == 0 else w16b, w16b, 1, cfg.expand) for i in range(r16b)]
        self.s16 = nn.Sequential(*s16)
        d = cfg.decoder
        self.lat16 = nn.Conv2d(w16b, d, 1)
        self.lat8 = nn.Conv2d(w8, d, 1)
        self.lat4 = nn.Conv2d(w4, d, 1)
        self.smooth8 = SeparableConv(d, d)
        self.smooth4 = SeparableConv(d, d)
        if cfg.heatmap_stride == 2:
            self.lat2 = nn.Conv2d(cfg.stem, d, 1)
            self.smooth2 = SeparableConv(d, d)
        self.head = nn.Conv2d(d, cfg.num_landmarks, 1)
        self.softargmax = SoftArgmax(cfg.heatmap_size, cfg.heatmap_stride, cfg.conf_spread_px)
        self._init_weights()

    @staticmethod
    def _stage(cin: int, cout: int, repeats: int, expand: int) -> nn.Sequential:
        blocks = [InvertedResidual(cin, cout, 2, expand)]
        blocks += [InvertedResidual(cout, cout, 1, expand) for _ in range(repeats - 1)]
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.head.weight, std=0.01)

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """Heatmap logits (N, L, S/stride, S/stride)."""
        x = (x - self.mean) / self.std
        f2 = self.stem(x)
        f4 = self.s4(f2)
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        p = self.lat16(f16)
        p = self.smooth8(F.interpolate(p, scale_factor=2.0, mode="nearest") + self.lat8(f8))
        p = self.smooth4(F.interpolate(p, scale_factor=2.0, mode="nearest") + self.lat4(f4))
        if self.cfg.heatmap_stride == 2:
            p = self.smooth2(F.interpolate(p, scale_factor=2.0, mode="nearest") + self.lat2(f2))
        return self.head(p)

    def forward_train(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Points, confidence and the heatmap probabilities (for the heatmap-shape loss)."""
        return self.softargmax(self.heatmaps(x))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Crops (N, 3, S, S) -> points (N, L, 2) crop px, conf (N, L): the exported graph."""
        points, conf, _ = self.softargmax(self.heatmaps(x))
        return points, conf


def build_net(cfg: NetConfig) -> LandmarkNet:
    """A fresh network for ``cfg`` (weights from the current torch RNG state)."""
    net = LandmarkNet(cfg)
    n_params = sum(p.numel() for p in net.parameters())
    logger.debug("built %s with %.2fM parameters", cfg.arch, n_params / 1e6)
    return net
