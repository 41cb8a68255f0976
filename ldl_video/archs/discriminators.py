"""The two discriminators of the LDL recipes, with BasicSR / Real-ESRGAN parameter names so their
checkpoints (e.g. RealESRGAN_x4plus_netD.pth) load unchanged.

- `UNetDiscriminatorSN`: a U-Net with spectral normalisation that judges every pixel
  (Real-ESRGAN; the real-world recipe).
- `VGGStyleDiscriminator`: strided convolutions with batch norm and two linear layers, one score
  per image of 128 (or 256) pixels (ESRGAN; the synthetic recipe).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm


class UNetDiscriminatorSN(nn.Module):
    """N×C×H×W -> N×1×H×W realness logits; H and W must be multiples of 8."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        self.skip_connection = skip_connection
        f = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, negative_slope=0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        x4 = x4 + x2 if self.skip_connection else x4
        x5 = act(self.conv5(up(x4)))
        x5 = x5 + x1 if self.skip_connection else x5
        x6 = act(self.conv6(up(x5)))
        x6 = x6 + x0 if self.skip_connection else x6
        out = act(self.conv8(act(self.conv7(x6))))
        return self.conv9(out)


class VGGStyleDiscriminator(nn.Module):
    """N×C×S×S -> N×1 realness logits, S = `input_size` (128 or 256)."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"VGGStyleDiscriminator takes 128 or 256 pixel inputs, not {input_size}")
        self.input_size = input_size
        f = num_feat
        widths = [f, f * 2, f * 4, f * 8, f * 8] + ([f * 8] if input_size == 256 else [])
        self.conv0_0 = nn.Conv2d(num_in_ch, f, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(f, f, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(f, affine=True)
        for level in range(1, len(widths)):
            c_in, c_out = widths[level - 1], widths[level]
            setattr(self, f"conv{level}_0", nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False))
            setattr(self, f"bn{level}_0", nn.BatchNorm2d(c_out, affine=True))
            setattr(self, f"conv{level}_1", nn.Conv2d(c_out, c_out, 4, 2, 1, bias=False))
            setattr(self, f"bn{level}_1", nn.BatchNorm2d(c_out, affine=True))
        self.levels = len(widths)
        self.linear1 = nn.Linear(widths[-1] * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"VGGStyleDiscriminator({self.input_size}) got {tuple(x.shape[-2:])} inputs; "
                             f"set data.gt_size to {self.input_size}")
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for level in range(1, self.levels):
            feat = self.lrelu(getattr(self, f"bn{level}_0")(getattr(self, f"conv{level}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{level}_1")(getattr(self, f"conv{level}_1")(feat)))
        feat = self.lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(feat)
