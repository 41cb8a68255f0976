"""The description of a loaded super-resolution model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .resample import Downscaled

# Architectures whose bf16 result on the CPU (autocast, first and last convolution in fp32)
# stays at or above 50 dB PSNR from fp32 on natural images, so that precision auto may pick
# bf16 on CPUs that have it (benchmarks/bench_precision.py, benchmarks/results/precision.md).
# The others run fp32 there until measured: MSRResNet and SwinIR have no weights offline.
CPU_BF16_ARCHS = frozenset({"RRDBNet", "SRVGGNetCompact"})


@dataclass
class SRModel:
    """A ready network and what callers need to know to run it.

    `net` maps N×3×H×W RGB in [0, 1] to N×3×(H·scale)×(W·scale). `size_multiple` is what H and W
    must be divisible by (the Upscaler pads to it). `weights` is False for classical resampling.
    """

    name: str
    net: nn.Module
    scale: int
    arch: str
    size_multiple: int = 1
    supports_fp16: bool = True
    supports_bf16: bool = True
    weights: bool = True
    source: str = ""

    @property
    def cpu_bf16(self) -> bool:
        """Whether precision auto may run this network in bf16 on a CPU with native bf16."""
        return self.weights and self.arch in CPU_BF16_ARCHS

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters under their BasicSR / Real-ESRGAN names (wrappers unwrapped)."""
        net = self.net.net if isinstance(self.net, Downscaled) else self.net
        return net.state_dict()

    def __repr__(self) -> str:
        return f"SRModel({self.name!r}, arch={self.arch}, scale={self.scale})"
