"""Real-ESRGAN's second-order degradation, batched on the training device, plus the pieces the
recipes share: blur kernels (Gaussian iso/aniso, generalized, plateau, sinc), resizing, Gaussian
and Poisson noise, JPEG (BasicSR's DiffJPEG, or a model of libjpeg), unsharp masking, the bicubic
LR of the synthetic recipe, and the training-pair queue. The steps follow Real-ESRGAN's
realesrgan/models/realesrgan_model.py (feed_data) and BasicSR's basicsr/data/degradations.py.

Randomness comes from two generators that the resume state carries: one on the CPU for the
parameters (kernel shapes, scales, qualities), one on the device for the noise images.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..resample import resize
from .config import DegradationConfig, DegradationRound

RESIZE_MODES = ("area", "bilinear", "bicubic")


# ---------------------------------------------------------------- filtering


def filter2d(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve each sample of N×C×H×W with its own k×k kernel (N×k×k, or k×k for all);
    reflect padding, replicate where the image is smaller than the kernel's reach."""
    n, c, h, w = x.shape
    if kernels.dim() == 2:
        kernels = kernels.expand(n, -1, -1)
    k = kernels.shape[-1]
    pad = k // 2
    mode = "reflect" if pad < min(h, w) else "replicate"
    padded = F.pad(x, (pad, pad, pad, pad), mode=mode)
    weight = kernels.to(x.dtype).repeat_interleave(c, dim=0).unsqueeze(1)
    out = F.conv2d(padded.reshape(1, n * c, h + 2 * pad, w + 2 * pad), weight, groups=n * c)
    return out.view(n, c, h, w)


def gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).float()


def _separable_blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    pad = kernel.numel() // 2
    mode = "reflect" if pad < min(h, w) else "replicate"
    flat = x.reshape(n * c, 1, h, w)
    k = kernel.to(x)
    flat = F.conv2d(F.pad(flat, (pad, pad, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, pad, pad), mode=mode), k.view(1, 1, -1, 1))
    return flat.view(n, c, h, w)


# BasicSR's usm_sharp blurs with cv2.GaussianBlur(img, (size, size), 0); for sizes up to 9
# OpenCV's getGaussianKernel(size, 0) takes these fixed taps instead of its sigma formula
_OPENCV_SMALL_GAUSSIANS = {1: [1], 3: [1, 2, 1], 5: [1, 4, 6, 4, 1], 7: [2, 7, 14, 18, 14, 7, 2],
                           9: [4, 13, 30, 51, 60, 51, 30, 13, 4]}


def opencv_gaussian(size: int) -> torch.Tensor:
    """cv2.getGaussianKernel(size, 0) for an odd size: the Gaussian OpenCV blurs with when no
    sigma is given."""
    if size in _OPENCV_SMALL_GAUSSIANS:
        taps = torch.tensor(_OPENCV_SMALL_GAUSSIANS[size], dtype=torch.float64)
        return (taps / taps.sum()).float()
    return gaussian_1d(size, 0.3 * ((size - 1) * 0.5 - 1) + 0.8)


def usm_sharpen(img: torch.Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10.0) -> torch.Tensor:
    """Real-ESRGAN's unsharp mask: sharpen by `weight` where the detail exceeds `threshold`
    (8-bit levels), blended through a blurred mask. OpenCV's Gaussian of size radius|1."""
    size = radius + 1 if radius % 2 == 0 else radius
    kernel = opencv_gaussian(size)
    residual = img - _separable_blur(img, kernel)
    mask = ((residual.abs() * 255) > threshold).to(img.dtype)
    soft = _separable_blur(mask, kernel)
    sharp = (img + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * img


# ---------------------------------------------------------------- kernels


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    return torch.meshgrid(ax, ax, indexing="ij")  # (y, x)


def shaped_kernel(kind: str, size: int, sigma_x: float, sigma_y: float, theta: float, beta: float = 1.0) -> torch.Tensor:
    """A size×size blur kernel, sum 1. kind: gaussian (exp(-q/2)), generalized (exp(-q^β/2)) or
    plateau (1 / (1 + q^β)), where q = xᵀ Σ⁻¹ x and Σ = R(θ) diag(σx², σy²) R(θ)ᵀ."""
    yy, xx = _grid(size)
    cos, sin = math.cos(theta), math.sin(theta)
    u = cos * xx + sin * yy  # coordinates along the kernel's own axes
    v = -sin * xx + cos * yy
    q = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    if kind == "gaussian":
        kernel = torch.exp(-0.5 * q)
    elif kind == "generalized":
        kernel = torch.exp(-0.5 * q.pow(beta))
    elif kind == "plateau":
        kernel = 1.0 / (1.0 + q.pow(beta))
    else:
        raise ValueError(f"unknown kernel kind {kind!r}")
    return (kernel / kernel.sum()).float()


def sinc_kernel(size: int, omega_c: float) -> torch.Tensor:
    """Circular low-pass (2-D sinc) kernel with cut-off `omega_c`, sum 1: ringing and overshoot."""
    yy, xx = _grid(size)
    r = torch.sqrt(xx**2 + yy**2)
    safe = torch.where(r == 0, torch.ones_like(r), r)
    kernel = omega_c * torch.special.bessel_j1(omega_c * safe) / (2 * math.pi * safe)
    kernel = torch.where(r == 0, torch.full_like(r, omega_c**2 / (4 * math.pi)), kernel)
    return (kernel / kernel.sum()).float()


def _pad_to(kernel: torch.Tensor, size: int) -> torch.Tensor:
    pad = (size - kernel.shape[-1]) // 2
    return F.pad(kernel, (pad, pad, pad, pad))


def identity_kernel(size: int) -> torch.Tensor:
    kernel = torch.zeros(size, size)
    kernel[size // 2, size // 2] = 1.0
    return kernel


# ---------------------------------------------------------------- JPEG

_LUMA_Q = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
], dtype=torch.float32)
_CHROMA_Q = torch.full((8, 8), 99.0)
_CHROMA_Q[:4, :4] = torch.tensor([[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]], dtype=torch.float32)


def _dct_matrix() -> torch.Tensor:
    n = torch.arange(8, dtype=torch.float64)
    basis = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    basis[0] /= math.sqrt(2)
    return basis  # orthonormal; equals JPEG's DCT scaling


# The 2-D DCT of a row-major flattened 8×8 block is one 64×64 matrix: D B Dᵀ = (D ⊗ D) vec(B).
_DCT64 = torch.kron(_dct_matrix(), _dct_matrix())  # float64; cast to the plane's dtype where used


def quant_tables(quality: torch.Tensor, model: str = "libjpeg") -> tuple[torch.Tensor, torch.Tensor]:
    """Luma and chroma quantisation tables at per-sample `quality` (N) -> N×8×8 each, indexed
    [vertical frequency, horizontal frequency].

    libjpeg: the standard tables scaled as libjpeg's jpeg_quality_scaling does, in integers (the
    scale factor 5000/q or 200 - 2q truncated, then (base·scale + 50) / 100 truncated), clamped to
    [1, 255]. diffjpeg: as BasicSR's basicsr/utils/diffjpeg.py (the JPEG of Real-ESRGAN's and
    LDL's training): the tables transposed (its y_table and c_table are the standard ones with .T)
    and multiplied by quality_to_factor(q) = (5000/q or 200 - 2q) / 100, no floor and no clamp."""
    q = quality.double().clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q).view(-1, 1, 1)

    def table(base: torch.Tensor) -> torch.Tensor:
        base = base.to(q)
        if model == "diffjpeg":
            return base.t() * scale / 100
        # jcparam.c's jpeg_quality_scaling works in integers: 5000 / quality truncates first
        return torch.floor((base * torch.floor(scale) + 50) / 100).clamp(1, 255)

    return table(_LUMA_Q), table(_CHROMA_Q)


def _blockwise(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Quantise N×H×W (H, W multiples of 8) in 8×8 DCT blocks with per-sample N×8×8 tables."""
    n, h, w = plane.shape
    dct = _DCT64.to(plane)
    blocks = plane.view(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4).reshape(n, -1, 64)
    table = table.to(plane).reshape(n, 1, 64)
    coeffs = torch.round((blocks @ dct.t()) / table) * table
    blocks = (coeffs @ dct).view(n, h // 8, w // 8, 8, 8)
    return blocks.permute(0, 1, 3, 2, 4).reshape(n, h, w)


def jpeg(img: torch.Tensor, quality: torch.Tensor, model: str = "libjpeg") -> torch.Tensor:
    """Baseline JPEG round trip of N×3×H×W in [0, 1] at per-sample `quality` (1..100): YCbCr,
    4:2:0 chroma (2×2 mean, nearest-neighbour back), 8×8 DCT quantisation. Runs on any device, in
    float64 when given float64.

    `model` picks the tables and the padding to a multiple of 16: libjpeg (libjpeg's tables,
    edge pixels repeated, as an encoder does) or diffjpeg (BasicSR's DiffJPEG with rounding, as in
    Real-ESRGAN's training: transposed unclamped tables, zero padding; see quant_tables)."""
    n, _, h, w = img.shape
    work = torch.float64 if img.dtype == torch.float64 else torch.float32
    x = img.to(work).clamp(0, 1) * 255
    pad_h, pad_w = (-h) % 16, (-w) % 16
    if model == "diffjpeg":
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="constant", value=0.0)
    else:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    r, g, b = x.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    luma_q, chroma_q = quant_tables(quality.to(img.device), model)
    y = _blockwise(y - 128, luma_q) + 128
    chroma = F.avg_pool2d(torch.stack((cb, cr), 1), 2)
    cb_q = _blockwise(chroma[:, 0] - 128, chroma_q)
    cr_q = _blockwise(chroma[:, 1] - 128, chroma_q)
    chroma = F.interpolate(torch.stack((cb_q, cr_q), 1), scale_factor=2, mode="nearest")
    cb, cr = chroma.unbind(1)
    rgb = torch.stack((y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb), 1)
    return (rgb[..., :h, :w] / 255).clamp(0, 1).to(img.dtype)


# ---------------------------------------------------------------- the pipeline


def to_8bit(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp((x * 255.0).round(), 0, 255) / 255.0


def poisson_levels(img: torch.Tensor) -> torch.Tensor:
    """Per sample of N×C×H×W: the number of distinct values rounded up to a power of two, the
    photon count per unit of intensity that generate_poisson_noise_pt (BasicSR) uses."""
    counts = torch.tensor([float(torch.unique(sample).numel()) for sample in img], dtype=torch.float64)
    return torch.exp2(torch.ceil(torch.log2(counts))).to(img).view(-1, 1, 1, 1)


def poisson_noise(img: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Poisson noise (unit scale) for 8-bit-rounded N×C×H×W, each sample at its own level count."""
    levels = poisson_levels(img)
    return torch.poisson(img * levels, generator=generator) / levels - img


def bicubic_lr(gt: torch.Tensor, scale: int) -> torch.Tensor:
    """The synthetic recipe's LR: antialiased bicubic downscale, rounded to 8 bits."""
    h, w = gt.shape[-2:]
    return to_8bit(resize(gt, h // scale, w // scale, "bicubic"))


class Degrader:
    """HR batch -> LR batch with Real-ESRGAN's two rounds and the final sinc/JPEG step."""

    def __init__(self, config: DegradationConfig, scale: int, device: torch.device, seed: int) -> None:
        self.config = config
        self.scale = scale
        self.device = device
        self.params = torch.Generator().manual_seed(seed)
        self.noise = torch.Generator(device=device).manual_seed(seed + 1)
        self.kernel_size = max(config.first.kernel_range[1], config.second.kernel_range[1])

    # -- randomness
    def _rand(self) -> float:
        return float(torch.rand((), generator=self.params))

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._rand()

    def _choice(self, options, probs=None):
        if probs is None:
            index = int(torch.randint(len(options), (), generator=self.params))
        else:
            index = int(torch.multinomial(torch.tensor(probs, dtype=torch.float64), 1, generator=self.params))
        return options[index]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"params": self.params.get_state(), "noise": self.noise.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.params.set_state(state["params"])
        self.noise.set_state(state["noise"])

    # -- kernels
    def _odd_size(self, low: int, high: int) -> int:
        return self._choice(list(range(low, high + 1, 2)))

    def _blur_kernel(self, r: DegradationRound) -> torch.Tensor:
        size = self._odd_size(*r.kernel_range)
        if self._rand() < r.sinc_prob:
            omega = self._uniform(math.pi / 3, math.pi) if size < 13 else self._uniform(math.pi / 5, math.pi)
            return _pad_to(sinc_kernel(size, omega), self.kernel_size)
        kind = self._choice(r.kernel_list, r.kernel_prob)
        sx = self._uniform(*r.blur_sigma)
        if kind.endswith("iso") and not kind.endswith("aniso"):
            sy, theta = sx, 0.0
        else:
            sy, theta = self._uniform(*r.blur_sigma), self._uniform(-math.pi, math.pi)
        beta = 1.0
        if kind.startswith(("generalized", "plateau")):
            beta_range = r.betag_range if kind.startswith("generalized") else r.betap_range
            beta = self._uniform(beta_range[0], 1.0) if self._rand() < 0.5 else self._uniform(1.0, beta_range[1])
        shape = "gaussian" if kind in ("iso", "aniso") else kind.split("_")[0]
        return _pad_to(shaped_kernel(shape, size, sx, sy, theta, beta), self.kernel_size)

    def _final_kernel(self) -> torch.Tensor:
        if self._rand() < self.config.final_sinc_prob:
            size = self._odd_size(*self.config.first.kernel_range)
            return _pad_to(sinc_kernel(size, self._uniform(math.pi / 3, math.pi)), self.kernel_size)
        return identity_kernel(self.kernel_size)

    def _kernels(self, n: int, make) -> torch.Tensor:
        return torch.stack([make() for _ in range(n)]).to(self.device)

    # -- steps
    def _resize(self, x: torch.Tensor, size: tuple[int, int], factor: float | None = None) -> torch.Tensor:
        """To `size`; with `factor`, sampled at that factor (the first round of Real-ESRGAN's
        realesrgan_model.py calls F.interpolate(scale_factor=...), which places samples slightly
        differently from the size-based call of the later steps)."""
        mode = self._choice(RESIZE_MODES)
        options = {} if mode == "area" else {"align_corners": False}
        if factor is not None and min(size) >= 1:
            return F.interpolate(x, scale_factor=factor, mode=mode, **options)
        size = (max(1, size[0]), max(1, size[1]))
        return F.interpolate(x, size=size, mode=mode, **options)

    def _resize_factor(self, r: DegradationRound) -> float:
        kind = self._choice(("up", "down", "keep"), r.resize_prob)
        if kind == "up":
            return self._uniform(1.0, r.resize_range[1])
        if kind == "down":
            return self._uniform(r.resize_range[0], 1.0)
        return 1.0

    def _per_sample(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.tensor([self._uniform(low, high) for _ in range(n)], device=self.device)

    def _noise(self, x: torch.Tensor, r: DegradationRound) -> torch.Tensor:
        """Real-ESRGAN's random_add_gaussian_noise_pt / random_add_poisson_noise_pt (BasicSR's
        basicsr/data/degradations.py): Gaussian or Poisson for the whole batch, strength and gray
        or colour per sample."""
        n = x.shape[0]
        gray = torch.tensor([self._rand() < r.gray_noise_prob for _ in range(n)], device=self.device).view(n, 1, 1, 1)
        if self._rand() < r.gaussian_noise_prob:
            sigma = self._per_sample(n, *r.noise_range).view(n, 1, 1, 1) / 255.0
            color = torch.randn(x.shape, generator=self.noise, device=self.device)
            # one gray pattern for the batch, scaled per sample (generate_gaussian_noise_pt draws
            # randn(h, w) once and multiplies it by each sample's sigma)
            mono = torch.randn(x.shape[-2:], generator=self.noise, device=self.device).expand(n, 1, -1, -1)
            noise = torch.where(gray, mono.expand_as(x), color) * sigma
        else:
            scale = self._per_sample(n, *r.poisson_scale_range).view(n, 1, 1, 1)
            color = poisson_noise(to_8bit(x), self.noise)
            # generate_poisson_noise_pt: torchvision's rgb_to_grayscale of the image as it comes
            # (a sinc blur or bicubic resize overshoots [0, 1]), only then rounded and clipped
            luma = to_8bit(0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
            mono = poisson_noise(luma, self.noise)
            noise = torch.where(gray, mono.expand_as(x), color) * scale
        return (x + noise).clamp(0, 1)

    def _jpeg(self, x: torch.Tensor, r: DegradationRound) -> torch.Tensor:
        quality = self._per_sample(x.shape[0], *r.jpeg_range)
        return jpeg(x.clamp(0, 1), quality, self.config.jpeg)

    @torch.no_grad()
    def __call__(self, gt: torch.Tensor) -> torch.Tensor:
        """N×3×H×W HR in [0, 1] -> N×3×(H/scale)×(W/scale) LR, rounded to 8 bits."""
        c, n = self.config, gt.shape[0]
        h, w = gt.shape[-2:]
        out = gt.float()
        if self._rand() < c.first.blur_prob:
            out = filter2d(out, self._kernels(n, lambda: self._blur_kernel(c.first)))
        factor = self._resize_factor(c.first)
        out = self._resize(out, (int(h * factor), int(w * factor)), factor)
        out = self._jpeg(self._noise(out, c.first), c.first)

        if self._rand() < c.second.blur_prob:
            out = filter2d(out, self._kernels(n, lambda: self._blur_kernel(c.second)))
        factor = self._resize_factor(c.second)
        out = self._resize(out, (int(h / self.scale * factor), int(w / self.scale * factor)))
        out = self._noise(out, c.second)

        final = self._kernels(n, self._final_kernel)
        lr_size = (h // self.scale, w // self.scale)
        if self._rand() < 0.5:
            out = filter2d(self._resize(out, lr_size), final)
            out = self._jpeg(out, c.second)
        else:
            out = self._jpeg(out, c.second)
            out = filter2d(self._resize(out, lr_size), final)
        return to_8bit(out)


class PairQueue:
    """Real-ESRGAN's training-pair pool: fill with the first batches, then each batch goes in at
    a random place of the shuffled pool and the batch it displaces comes out, so one batch mixes
    degradations drawn at different steps."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lq: torch.Tensor | None = None
        self.gt: torch.Tensor | None = None
        self.count = 0

    def __call__(self, lq: torch.Tensor, gt: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.size == 0:
            return lq, gt
        b = lq.shape[0]
        if self.lq is None:
            self.lq = lq.new_zeros((self.size, *lq.shape[1:]))
            self.gt = gt.new_zeros((self.size, *gt.shape[1:]))
        if self.count < self.size:
            self.lq[self.count : self.count + b] = lq
            self.gt[self.count : self.count + b] = gt
            self.count += b
            return lq, gt
        order = torch.randperm(self.size, generator=generator).to(lq.device)
        self.lq, self.gt = self.lq[order], self.gt[order]
        out_lq, out_gt = self.lq[:b].clone(), self.gt[:b].clone()
        self.lq[:b], self.gt[:b] = lq, gt
        return out_lq, out_gt

    def state_dict(self) -> dict:
        if self.lq is None:
            return {"count": 0}
        return {"count": self.count, "lq": _pack(self.lq[: self.count]), "gt": _pack(self.gt[: self.count])}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.count = int(state["count"])
        if self.count == 0:
            self.lq = self.gt = None
            return
        lq, gt = _unpack(state["lq"]).to(device), _unpack(state["gt"]).to(device)
        self.lq = lq.new_zeros((self.size, *lq.shape[1:]))
        self.gt = gt.new_zeros((self.size, *gt.shape[1:]))
        self.lq[: self.count], self.gt[: self.count] = lq, gt


def _pack(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """8-bit when that is exact (it is for 8-bit sources): a 180-pair queue of 256 px crops
    then takes 40 MB in the resume state instead of 160 MB."""
    x = x.detach().cpu()
    as_bytes = (x * 255).round().clamp(0, 255).to(torch.uint8)
    if torch.equal(as_bytes.float() / 255, x.float()) and x.dtype == torch.float32:
        return {"u8": as_bytes}
    return {"raw": x.clone()}


def _unpack(packed: dict[str, torch.Tensor]) -> torch.Tensor:
    return packed["u8"].float() / 255 if "u8" in packed else packed["raw"]
