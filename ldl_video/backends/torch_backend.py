"""Eager PyTorch: today's path, in channels-last, with CPU bf16 through autocast."""

from __future__ import annotations

import torch
from torch import nn

from ..model import SRModel


class _EndConv2d(nn.Conv2d):
    """A convolution that computes in fp32 while CPU autocast is on (and is a plain Conv2d
    otherwise). The first layer sees the 8-bit picture, whose levels bf16's 8-bit mantissa
    does not keep, and the last one writes the result: in bf16 these two cost RRDBNet
    3-4 dB against fp32 and are a small share of its work."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_autocast_enabled("cpu"):
            return super().forward(x)
        with torch.autocast("cpu", enabled=False):
            return super().forward(x.float())


def keep_ends_fp32(net: nn.Module) -> None:
    """Make the first and the last plain convolution (module order) fp32 under autocast."""
    convs = [m for m in net.modules() if type(m) is nn.Conv2d]
    for conv in {id(c): c for c in convs[:1] + convs[-1:]}.values():
        conv.__class__ = _EndConv2d


class TorchBackend:
    """The network in eager PyTorch. On the GPU its weights are cast to the precision; on the
    CPU, bf16 runs as autocast over fp32 weights with the first and last convolution in fp32
    (the same speed as casting the weights, 1-5 dB closer to fp32)."""

    name = "torch"
    channels_last = True

    def __init__(self, model: SRModel, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.autocast = device.type == "cpu" and dtype == torch.bfloat16
        self.input_dtype = torch.float32 if self.autocast else dtype
        # NHWC is cuDNN's fast layout and oneDNN's on the CPU (25-35 % faster here for RRDBNet
        # and SRVGGNetCompact); the network's weights are converted once.
        self.net = model.net.to(device, self.input_dtype).eval()
        try:
            self.net.to(memory_format=torch.channels_last)
        except RuntimeError:  # weights that are not 4-D (AuraSR's 5-D modulated kernels) stay as they are
            pass
        if self.autocast:
            keep_ends_fp32(self.net)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self.input_dtype).contiguous(memory_format=torch.channels_last)
        if self.autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.net(x).float()
        return self.net(x).float()
