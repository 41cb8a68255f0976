"""The generator's and discriminator's losses other than LDL (which lives in ldl_video.ldl):
pixel L1, the VGG19 perceptual loss, and the GAN losses (vanilla and relativistic average).

VGG19's ImageNet weights are never downloaded: they come from `losses.vgg_weights` or from
torch's hub cache, where torchvision keeps them (`vgg19-dcbb9e9d.pth`).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..archs.vgg import VGG19_WIDTHS, VGG19Features, layer_names
from ..errors import LdlError

VGG19_FILE = "vgg19-dcbb9e9d.pth"


def find_vgg_weights(path: str | None) -> Path:
    if path:
        found = Path(path).expanduser()
        if not found.is_file():
            raise LdlError(f"losses.vgg_weights: {found} does not exist; point it at torchvision's {VGG19_FILE}")
        return found
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    if cached.is_file():
        return cached
    raise LdlError(
        f"the perceptual loss needs VGG19 ImageNet weights ({VGG19_FILE}), not found in {cached.parent}: copy it there "
        "(on a machine with internet: python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\"), "
        "or --set losses.vgg_weights=PATH, or turn the loss off with --set losses.perceptual=0"
    )


def load_vgg(path: Path, layers: list[str]) -> VGG19Features:
    """A frozen VGG19 trunk up to the deepest wanted layer, its widths read from the file."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError) as exc:
        raise LdlError(f"{path} is not a readable VGG19 weight file ({str(exc).splitlines()[0]})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or "features.0.weight" not in state:
        raise LdlError(f"{path} does not hold torchvision VGG19 weights (no features.0.weight)")
    names = layer_names()
    first_conv = {}
    for index, name in enumerate(names):
        stage = name[4:5]
        if name.startswith("conv") and stage not in first_conv:
            first_conv[stage] = index
    widths = tuple(
        state[f"features.{i}.weight"].shape[0] if f"features.{i}.weight" in state else VGG19_WIDTHS[int(s) - 1]
        for s, i in sorted(first_conv.items())
    )
    net = VGG19Features(layers, widths)
    wanted = {k: v for k, v in state.items() if k in net.state_dict()}
    missing = set(net.state_dict()) - set(wanted)
    if missing:
        raise LdlError(f"{path} lacks {len(missing)} VGG19 tensors the chosen layers need (e.g. {sorted(missing)[0]})")
    net.load_state_dict(wanted)
    net.eval().requires_grad_(False)
    return net


class PerceptualLoss(nn.Module):
    """Σ_layer weight · L1(VGG(x)_layer, VGG(gt)_layer), activations before ReLU, ImageNet-normalised
    input (ESRGAN's perceptual loss)."""

    def __init__(self, layer_weights: dict[str, float], weights_path: str | None) -> None:
        super().__init__()
        self.layer_weights = dict(layer_weights)
        self.vgg = load_vgg(find_vgg_weights(weights_path), list(layer_weights))

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()  # frozen, whatever the caller's mode
        return self

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        feats = self.vgg(x)
        with torch.no_grad():
            targets = self.vgg(gt)
        return sum(w * F.l1_loss(feats[k], targets[k]) for k, w in self.layer_weights.items())


def _bce(pred: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    return F.binary_cross_entropy_with_logits(pred.float(), target.float())


def generator_gan_loss(kind: str, fake_pred: torch.Tensor, real_pred: torch.Tensor | None) -> torch.Tensor:
    """Vanilla: fake judged real. Relativistic average (ESRGAN): real judged less real than the
    average fake, and fake more real than the average real; `real_pred` detached."""
    if kind == "vanilla":
        return _bce(fake_pred, True)
    real_pred = real_pred.detach()
    return (_bce(real_pred - fake_pred.mean(), False) + _bce(fake_pred - real_pred.mean(), True)) / 2


def discriminator_gan_loss(kind: str, pred: torch.Tensor, other: torch.Tensor | None, real: bool) -> torch.Tensor:
    """One half of the discriminator's loss: `pred` on real (gt) or fake (the generator's
    detached output) images. Relativistic average, as ESRGAN: judged against the other kind's
    detached mean, and halved."""
    if kind == "vanilla":
        return _bce(pred, real)
    return _bce(pred - other.detach().mean(), real) * 0.5
