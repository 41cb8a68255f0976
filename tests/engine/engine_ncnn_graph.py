"""A small interpreter of ncnn .param graphs, written from ncnn's layer semantics, used to check
that the converted PyTorch networks compute what the ncnn graphs compute."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ldl_video.ncnn import Layer


def _activation(layer: Layer, x: torch.Tensor) -> torch.Tensor:
    kind = layer.int_param(9)
    if kind == 0:
        return x
    if kind == 1:
        return F.relu(x)
    if kind == 2:
        return F.leaky_relu(x, layer.float_list(10)[0])
    raise NotImplementedError(f"activation type {kind}")


def run_graph(layers: list[Layer], image: torch.Tensor) -> torch.Tensor:
    blobs: dict[str, torch.Tensor] = {}
    for layer in layers:
        ins = [blobs[name] for name in layer.inputs]
        if layer.kind == "Input":
            outs = [image]
        elif layer.kind == "Split":
            outs = [ins[0]] * len(layer.outputs)
        elif layer.kind == "Convolution":
            weight = torch.from_numpy(layer.blobs["weight"].copy())
            bias = torch.from_numpy(layer.blobs["bias"].copy()) if "bias" in layer.blobs else None
            y = F.conv2d(ins[0], weight, bias, stride=layer.int_param(3, 1), padding=layer.int_param(4))
            outs = [_activation(layer, y)]
        elif layer.kind == "PReLU":
            outs = [F.prelu(ins[0], torch.from_numpy(layer.blobs["weight"].copy()))]
        elif layer.kind == "Concat":
            outs = [torch.cat(ins, dim=1)]
        elif layer.kind == "Eltwise":  # op 1 = sum with per-input coefficients
            assert layer.int_param(0) == 1
            coeffs = layer.float_list(1) or [1.0] * len(ins)
            outs = [sum(c * t for c, t in zip(coeffs, ins, strict=True))]
        elif layer.kind == "BinaryOp":  # op 0 = add
            assert layer.int_param(0) == 0
            outs = [ins[0] + ins[1]]
        elif layer.kind == "PixelShuffle":
            outs = [F.pixel_shuffle(ins[0], layer.int_param(0))]
        elif layer.kind == "Interp":
            mode = {1: "nearest", 2: "bilinear", 3: "bicubic"}[layer.int_param(0)]
            h, w = ins[0].shape[-2:]
            size = (int(h * float(layer.params[1])), int(w * float(layer.params[2])))
            extra = {} if mode == "nearest" else {"align_corners": False}
            outs = [F.interpolate(ins[0], size=size, mode=mode, **extra)]
        else:
            raise NotImplementedError(layer.kind)
        blobs.update(zip(layer.outputs, outs, strict=True))
    return blobs[layers[-1].outputs[0]]
