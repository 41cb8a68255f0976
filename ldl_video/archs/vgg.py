"""VGG19's convolutional trunk with torchvision's parameter names (`features.N.weight`), so
torchvision's ImageNet file (vgg19-dcbb9e9d.pth) loads into it; it returns the activations
before ReLU at the layers asked for (conv1_2, conv3_4, ...), as the ESRGAN perceptual loss uses.

`widths` shrinks the network for tests; the ImageNet weights need the default (64, 128, 256, 512, 512).
"""

from __future__ import annotations

import torch
from torch import nn

CONVS_PER_STAGE = (2, 2, 4, 4, 4)
VGG19_WIDTHS = (64, 128, 256, 512, 512)


def layer_names() -> list[str]:
    """torchvision's `features` children in order: conv1_1, relu1_1, conv1_2, ..., pool5."""
    names = []
    for stage, count in enumerate(CONVS_PER_STAGE, start=1):
        for i in range(1, count + 1):
            names += [f"conv{stage}_{i}", f"relu{stage}_{i}"]
        names.append(f"pool{stage}")
    return names


class VGG19Features(nn.Module):
    def __init__(self, layers: list[str] | tuple[str, ...], widths: tuple[int, ...] = VGG19_WIDTHS) -> None:
        super().__init__()
        names = layer_names()
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {unknown}; use names like conv1_2, relu3_4, conv5_4")
        last = max(names.index(name) for name in layers)
        modules: list[nn.Module] = []
        channels = 3
        for name in names[: last + 1]:
            stage = int(name[4 if name.startswith("pool") else -3]) - 1
            if name.startswith("conv"):
                modules.append(nn.Conv2d(channels, widths[stage], 3, 1, 1))
                channels = widths[stage]
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        self.names = names[: last + 1]
        self.wanted = set(layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """RGB in [0, 1] (ImageNet-normalised here) -> {layer name: activation}."""
        out = {}
        feat = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        for name, module in zip(self.names, self.features, strict=True):
            feat = module(feat)
            if name in self.wanted:
                out[name] = feat
        return out
