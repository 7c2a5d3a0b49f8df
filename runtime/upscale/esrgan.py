"""The ESRGAN-family networks, written for Yijian (no spandrel: it needs torchvision).

Two architectures cover the models people put in ``models/ESRGAN``:

- ``RRDBNet``, Residual-in-Residual Dense Blocks: ESRGAN, Real-ESRGAN x4plus /
  x2plus / anime_6B, BSRGAN and most community "4x-…" models.  Parameters use
  the Real-ESRGAN names (``conv_first``, ``body.N.rdbK.convJ``, ``conv_body``,
  ``conv_upN``, ``conv_hr``, ``conv_last``); ``runtime.upscale.loader`` renames
  the other layouts to these.
- ``SRVGGNetCompact``: realesr-general-x4v3 and realesr-animevideov3, a plain
  stack of convolutions with PReLU and a pixel shuffle.

Both take and give images in [0, 1], shaped (batch, channels, height, width).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SRNet(nn.Module):
    """What every upscaling network tells its caller."""

    arch: str
    scale: int
    in_channels: int
    out_channels: int
    align: int = 1  # a crop must start on a multiple of this to give the same pixels as the whole image


class DenseBlock(nn.Module):
    """Five 3×3 convolutions, each seeing every earlier feature map; a scaled residual."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        residual: Tensor = self.conv5(torch.cat(features, 1))
        return x + 0.2 * residual


class RRDB(nn.Module):
    """Three dense blocks in a row, inside one more scaled residual."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.rdb1 = DenseBlock(nf, gc)
        self.rdb2 = DenseBlock(nf, gc)
        self.rdb3 = DenseBlock(nf, gc)

    def forward(self, x: Tensor) -> Tensor:
        residual: Tensor = self.rdb3(self.rdb2(self.rdb1(x)))
        return x + 0.2 * residual


class RRDBNet(SRNet):
    """ESRGAN's generator.

    ``unshuffle`` is Real-ESRGAN's trick for ×2 and ×1 models: the input is
    folded into ``unshuffle²`` times the channels first, so the same ×4 tail
    gives ×2 (or ×1).  ``n_up`` nearest-neighbour ×2 stages follow the body.
    """

    arch = "RRDBNet"

    def __init__(
        self,
        *,
        in_nc: int = 3,
        out_nc: int = 3,
        nf: int = 64,
        nb: int = 23,
        gc: int = 32,
        n_up: int = 2,
        unshuffle: int = 1,
    ) -> None:
        super().__init__()
        if (2**n_up) % unshuffle:
            raise ValueError(f"{n_up} ×2 stages cannot undo a pixel unshuffle by {unshuffle}")
        self.scale = 2**n_up // unshuffle
        self.in_channels, self.out_channels = in_nc, out_nc
        self.unshuffle = self.align = unshuffle
        self.conv_first = nn.Conv2d(in_nc * unshuffle * unshuffle, nf, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(nf, gc) for _ in range(nb)))
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.ups = [f"conv_up{i + 1}" for i in range(n_up)]
        for name in self.ups:
            self.add_module(name, nn.Conv2d(nf, nf, 3, 1, 1))
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if self.unshuffle > 1:
            # The fold needs sides divisible by the factor: pad by edge pixels, crop after.
            pad_h, pad_w = -height % self.unshuffle, -width % self.unshuffle
            if pad_h or pad_w:
                x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for name in self.ups:
            conv = self.get_submodule(name)
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2.0, mode="nearest")), 0.2)
        out: Tensor = self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))
        return out[..., : height * self.scale, : width * self.scale]


class SRVGGNetCompact(SRNet):
    """Real-ESRGAN's compact network: conv + PReLU pairs, then a pixel shuffle.

    The parameters are ``body.0`` (first conv), ``body.1`` (its PReLU), …, and
    ``body.{2·n_conv+2}`` (the last conv, ``out_nc·scale²`` channels).  The
    network learns the residual over a nearest-neighbour upscale of the input.
    """

    arch = "SRVGGNetCompact"

    def __init__(self, *, in_nc: int = 3, out_nc: int = 3, nf: int = 64, n_conv: int = 32, scale: int = 4) -> None:
        super().__init__()
        self.scale, self.in_channels, self.out_channels = scale, in_nc, out_nc
        layers: list[nn.Module] = [nn.Conv2d(in_nc, nf, 3, 1, 1), nn.PReLU(nf)]
        for _ in range(n_conv):
            layers += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf)]
        layers.append(nn.Conv2d(nf, out_nc * scale * scale, 3, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = F.pixel_shuffle(self.body(x), self.scale)
        return out + F.interpolate(x, scale_factor=float(self.scale), mode="nearest")
