"""Periodic validation: the EMA generator on held-out images; PSNR and SSIM on 8-bit values with
`scale` border pixels cropped, both on RGB (psnr, ssim) and on the BT.601 luma Y (psnr_y, ssim_y:
what the LDL paper's tables report, BasicSR's calculate_psnr / calculate_ssim with
test_y_channel true and crop_border 4 for ×4, as in the official train_Synthetic_LDL.yml); LPIPS
when the `lpips` package and its AlexNet weights are already here; the first few results saved as
PNG."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .config import Config
from .data import validation_images
from .degradations import Degrader, bicubic_lr, usm_sharpen

VAL_SEED = 2_147_483_647  # validation LR is the same in every run of a recipe


def psnr(sr: torch.Tensor, gt: torch.Tensor, border: int, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB of two 3×H×W images in [0, 1], on 8-bit values; on the
    luma Y (BT.601, studio range) when `y_channel`."""
    sr, gt = _prepare(sr, gt, border, y_channel)
    mse = F.mse_loss(sr, gt).item()
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim(sr: torch.Tensor, gt: torch.Tensor, border: int, y_channel: bool = False) -> float:
    """Structural similarity (Gaussian window 11, σ 1.5), mean over the channels (or of Y)."""
    sr, gt = _prepare(sr, gt, border, y_channel)
    channels = sr.shape[0]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = torch.exp(-0.5 * ((torch.arange(11, dtype=torch.float64) - 5) / 1.5) ** 2)
    g = g / g.sum()
    window = (g[:, None] @ g[None, :]).expand(channels, 1, 11, 11).contiguous()

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x[None], window, groups=channels)

    mu_x, mu_y = blur(sr), blur(gt)
    var_x = blur(sr * sr) - mu_x**2
    var_y = blur(gt * gt) - mu_y**2
    cov = blur(sr * gt) - mu_x * mu_y
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.mean().item()


def _prepare(sr: torch.Tensor, gt: torch.Tensor, border: int, y_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    sr = (sr.double().clamp(0, 1) * 255).round()
    gt = (gt.double().clamp(0, 1) * 255).round()
    if border:
        sr, gt = sr[:, border:-border, border:-border], gt[:, border:-border, border:-border]
    if y_channel:
        sr, gt = luma(sr), luma(gt)
    return sr.cpu(), gt.cpu()


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """1×H×W BT.601 Y in [16, 235] of 3×H×W RGB in [0, 255], unrounded (BasicSR's rgb2ycbcr, y_only)."""
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=rgb.dtype, device=rgb.device) / 255
    return (rgb * weights.view(3, 1, 1)).sum(0, keepdim=True) + 16


def lpips_metric() -> nn.Module | None:
    """LPIPS (AlexNet) if `lpips` is installed and torchvision's AlexNet weights are in torch's
    hub cache; None otherwise (nothing is downloaded)."""
    try:
        import lpips
    except ImportError:
        return None
    alexnet = Path(torch.hub.get_dir()) / "checkpoints" / "alexnet-owt-7be5be79.pth"
    if not alexnet.is_file():
        return None
    try:
        return lpips.LPIPS(net="alex", verbose=False).eval()
    except Exception:  # a broken install must not stop training
        return None


class Validator:
    def __init__(self, config: Config, size_multiple: int) -> None:
        v = config.val
        self.scale = config.scale
        self.images = validation_images(v.hr, v.lr, config.scale, v.crop, v.max_images, size_multiple,
                                        config.data.normalise, config.data.percentiles)
        degrader = Degrader(config.degradation, config.scale, torch.device("cpu"), VAL_SEED)
        lo = config.losses
        self.pairs = []
        for name, hr, lr in self.images:
            if lr is None and v.degradation == "realesrgan":  # from the sharpened HR, as in training
                lr = degrader(usm_sharpen(hr[None], lo.usm_weight, lo.usm_radius, lo.usm_threshold))[0]
            elif lr is None:
                lr = bicubic_lr(hr[None], config.scale)[0]
            self.pairs.append((name, hr, lr))
        self.lpips = lpips_metric()
        self.save_images = v.save_images

    @torch.no_grad()
    def __call__(self, net: nn.Module, device: torch.device, sample_dir: Path | None) -> tuple[dict[str, float], list]:
        """Mean metrics, and [(name, SR image 3×H×W)] for the first `save_images` images."""
        was_training = net.training
        net.eval()
        totals: dict[str, float] = {"psnr": 0.0, "ssim": 0.0, "psnr_y": 0.0, "ssim_y": 0.0}
        samples = []
        for i, (name, hr, lr) in enumerate(self.pairs):
            sr = net(lr[None].to(device)).float().clamp(0, 1)[0].cpu()
            totals["psnr"] += psnr(sr, hr, self.scale)
            totals["ssim"] += ssim(sr, hr, self.scale)
            totals["psnr_y"] += psnr(sr, hr, self.scale, y_channel=True)
            totals["ssim_y"] += ssim(sr, hr, self.scale, y_channel=True)
            if self.lpips is not None:
                totals["lpips"] = totals.get("lpips", 0.0) + self.lpips(sr[None] * 2 - 1, hr[None] * 2 - 1).item()
            if i < self.save_images:
                samples.append((name, sr))
                if sample_dir is not None:
                    from ..images import write_image

                    sample_dir.mkdir(parents=True, exist_ok=True)
                    write_image(sample_dir / f"{name}.png", (sr.permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
        net.train(was_training)
        return {k: v / len(self.pairs) for k, v in totals.items()}, samples
