"""The compact ResUNet: residual blocks, GroupNorm (works at batch size 1), optional attention on skips.

Input ``(N, 1, H, W)`` float32 grayscale normalised to about 0..1, with ``H`` and ``W`` multiples of
:meth:`ResUNetConfig.multiple`. Output ``(N, 2, H, W)`` logits:

- channel 0, **foreground**: the pixel belongs to a spheroid (a hollow spheroid's lumen does not);
- channel 1, **core**: the pixel lies in the inner part of its spheroid (distance to the spheroid's edge
  more than :data:`CORE_FRACTION` of that spheroid's largest such distance). Cores of touching spheroids
  never touch, so they seed a watershed that splits them (see :mod:`cluster.model.decoding`).

Layout: a stem convolution, ``len(widths)`` encoder levels of ``blocks`` residual blocks each (the first
level at full resolution, each next one after a stride-2 convolution), and a decoder that upsamples
bilinearly, adds a 1x1 projection of the skip (gated by an attention gate when ``attention`` is on) and
runs one residual block per level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F  # noqa: N812 - the universal alias
from torch import Tensor, nn

__all__ = ["CORE_FRACTION", "OUTPUT_CHANNELS", "ResUNet", "ResUNetConfig"]

CORE_FRACTION = 0.4
"""A pixel is *core* when its distance to the edge is above this fraction of its spheroid's maximum."""

OUTPUT_CHANNELS = ("foreground", "core")


@dataclass(frozen=True)
class ResUNetConfig:
    """Architecture hyper-parameters; stored in the model card so weights always rebuild their network."""

    widths: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    """Channels at each resolution level, full resolution first."""
    blocks: int = 1
    """Residual blocks per encoder level."""
    groups: int = 8
    """GroupNorm groups (every width must be divisible by it)."""
    attention: bool = False
    """Attention gates on the skip connections."""

    def __post_init__(self) -> None:
        if not self.widths or any(w <= 0 or w % self.groups for w in self.widths):
            raise ValueError(
                f"every width must be a positive multiple of groups={self.groups}: {self.widths}"
            )
        if self.blocks < 1:
            raise ValueError(f"blocks must be at least 1, not {self.blocks}")

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return int(2 ** (len(self.widths) - 1))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResUNetConfig:
        return cls(
            widths=tuple(int(w) for w in data["widths"]),
            blocks=int(data.get("blocks", 1)),
            groups=int(data.get("groups", 8)),
            attention=bool(data.get("attention", False)),
        )


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels)


class ResidualBlock(nn.Module):
    """conv3x3-norm-act-conv3x3, scaled, plus the input (projected when the width changes), then act."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm1 = _norm(out_channels, groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=True)
        # One normalisation per block (it is half the cost of a block on CPUs); the residual branch has a
        # per-channel gain that starts at zero, so each block starts as the identity (stable from step 1).
        self.gain = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.skip: nn.Module = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.silu(self.norm1(self.conv1(x)))
        out = self.conv2(out) * self.gain
        return F.silu(out + self.skip(x))


class AttentionGate(nn.Module):
    """Additive attention (Oktay et al. 2018): the decoder's context decides which skip pixels pass."""

    def __init__(self, skip_channels: int, gate_channels: int) -> None:
        super().__init__()
        inner = max(skip_channels // 2, 8)
        self.theta = nn.Conv2d(skip_channels, inner, 1, bias=False)
        self.phi = nn.Conv2d(gate_channels, inner, 1)
        self.psi = nn.Conv2d(inner, 1, 1)
        nn.init.zeros_(self.psi.weight)
        nn.init.constant_(cast(Tensor, self.psi.bias), 2.0)  # starts nearly open

    def forward(self, skip: Tensor, gate: Tensor) -> Tensor:
        weight = torch.sigmoid(self.psi(F.silu(self.theta(skip) + self.phi(gate))))
        return skip * weight


class ResUNet(nn.Module):
    """The spheroid network; see the module docstring for inputs and outputs."""

    def __init__(self, config: ResUNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ResUNetConfig()
        widths, groups = config.widths, config.groups
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, padding=1, bias=False), _norm(widths[0], groups))
        self.down = nn.ModuleList()
        self.encoder = nn.ModuleList()
        for level, width in enumerate(widths):
            previous = widths[max(level - 1, 0)]
            if level > 0:
                self.down.append(
                    nn.Sequential(
                        nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False), _norm(width, groups)
                    )
                )
            self.encoder.append(
                nn.Sequential(*[ResidualBlock(width, width, groups) for _ in range(config.blocks)])
            )
        self.lateral = nn.ModuleList()
        self.decoder = nn.ModuleList()
        self.gates = nn.ModuleList()
        for level in range(len(widths) - 2, -1, -1):
            self.lateral.append(nn.Conv2d(widths[level + 1], widths[level], 1, bias=False))
            if config.attention:
                self.gates.append(AttentionGate(widths[level], widths[level]))
            self.decoder.append(ResidualBlock(widths[level], widths[level], groups))
        self.head = nn.Conv2d(widths[0], len(OUTPUT_CHANNELS), 1)
        nn.init.constant_(cast(Tensor, self.head.bias), 0.0)

    def forward(self, x: Tensor) -> Tensor:
        x = F.silu(self.stem(x))
        skips: list[Tensor] = []
        for level, blocks in enumerate(self.encoder):
            if level > 0:
                x = F.silu(self.down[level - 1](x))
            x = blocks(x)
            skips.append(x)
        x = skips.pop()
        for index, (lateral, block) in enumerate(zip(self.lateral, self.decoder, strict=True)):
            skip = skips.pop()
            up = F.interpolate(lateral(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            if self.config.attention:
                skip = self.gates[index](skip, up)
            x = block(up + skip)
        return cast(Tensor, self.head(x))

    def place(self, device: torch.device, channels_last: bool) -> ResUNet:
        """Move to ``device``, in channels_last memory format when asked; returns ``self``."""
        memory = torch.channels_last if channels_last else torch.contiguous_format
        self.to(device)
        self.to(memory_format=memory)  # type: ignore[call-overload]
        return self

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops(self, height: int, width: int) -> float:
        """Multiply-adds times two of the convolutions for one ``height`` x ``width`` input."""
        total = 0.0
        hooks = []

        def count(module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
            nonlocal total
            conv = cast(nn.Conv2d, module)
            kernel = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels // conv.groups
            total += 2.0 * kernel * output.numel()

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                hooks.append(module.register_forward_hook(count))
        try:
            with torch.no_grad():
                self(torch.zeros(1, 1, height, width))
        finally:
            for hook in hooks:
                hook.remove()
        return total
