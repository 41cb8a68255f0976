"""One fine-tuning run off the GUI thread: the engine's trainer (`ldl_video.train.Trainer`) on
the layers' planes, held-out scores before and after, a preview every few steps, and the final
EMA generator written as a BasicSR checkpoint.

The recipe is fidelity-first: pixel L1 against the plain GT plus the LDL loss (the artifact map
from the generator's and its EMA's residuals), no perceptual loss (no VGG weights offline) and no
GAN unless asked for. Scientists want recovered detail rather than invented texture, and without
the 64-feature U-Net discriminator a step is several times cheaper on a CPU
(benchmarks/bench_finetune.py measures both).

`run_finetune` is a plain function for napari's `thread_worker`; progress goes out through
`report` from the trainer's `on_step` hook. Cancel (or the time budget) stops after the current
step; the weights of that step are still saved. Failures are returned as `Failure` (see _worker).
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ldl_video.errors import LdlError

from ._finetune_data import Microscope, PlaneCrops, make_lr
from ._worker import Failure, UpscaleFailed

HELD_OUT_SEED = 20_220_601  # the held-out LR is the same before and after, and in every run
RATE_STEPS = 10  # steps timed to foresee how many the time budget allows


@dataclass(frozen=True)
class FineTuneRequest:
    planes: list[np.ndarray]  # HR training planes, float32 H×W×3 in [0, 1]
    held_out: list[np.ndarray]  # HR planes to score and preview (training planes when none is held out)
    model: str  # zoo name or checkpoint to start from
    scale: int
    folder: Path  # where the checkpoint (and the run's files under runs/) go
    name: str = ""
    lr_from: str = "microscope"
    microscope: Microscope = field(default_factory=Microscope)
    paired: list[np.ndarray] | None = None  # LR planes for lr_from "paired", one per HR plane
    held_out_lr: list[np.ndarray] | None = None  # given LR of the held-out planes (paired data)
    ldl: bool = True
    gan: float = 0.0
    steps: int = 300
    minutes: float = 0.0  # a time budget; 0: none
    device: str = "auto"
    patch: int = 48  # HR crop size
    batch: int = 4
    lr: float = 1e-4  # the paper's; 2e-4 and 5e-4 gained less held-out PSNR in 60 steps (benchmarks/results/finetune.md)
    preview_every: int = 25
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0: half the cores, leaving the rest to the viewer


@dataclass(frozen=True)
class Scores:
    psnr: float  # dB, on [0, 1] intensities
    ssim: float  # BasicSR's SSIM on 8-bit values of the same planes
    artifacts: float  # mean of the artifact overlay of the first held-out plane (0 none .. 1 strong)


@dataclass(frozen=True)
class StepReport:
    step: int
    total: int
    losses: dict[str, float]
    seconds: float
    preview: np.ndarray | None = None  # the first held-out plane upscaled by the current EMA weights, H×W×3
    artifacts: np.ndarray | None = None  # its artifact map against the HR plane (the overlay's values), H×W


@dataclass
class FineTuneResult:
    checkpoint: Path
    steps: int
    stopped_early: bool
    before: Scores
    after: Scores
    preview: np.ndarray  # the first held-out plane by the final weights
    preview_artifacts: np.ndarray  # its artifact overlay
    outputs_before: list[np.ndarray]  # every held-out plane upscaled by the starting / final weights
    outputs_after: list[np.ndarray]
    targets: list[np.ndarray]  # the held-out HR planes they are scored against (cropped to fit)
    seconds: float
    log: list[str]
    ema_decay: float  # the EMA decay the run ended with (sized to the steps the budget allowed)


Report = Callable[[StepReport], None]


def run_finetune(request: FineTuneRequest, cancel: threading.Event, report: Report | None = None
                 ) -> FineTuneResult | Failure:
    try:
        return _run(request, cancel, report or (lambda step: None))
    except Exception as error:
        if isinstance(error, LdlError):
            message = str(error)
        else:
            message = f"fine-tuning failed: {type(error).__name__}: {error}"
        failure = UpscaleFailed(f"napari-ldl: {message}")
        failure.__cause__ = error
        return Failure(failure)


def run_name(model: str) -> str:
    stem = Path(model).stem if Path(model).suffix else model
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"finetuned-{stem}-{time.strftime('%Y%m%d-%H%M%S')}")


def ema_decay_for(steps: int) -> float:
    """An EMA half-life of a tenth of the run: the paper's 0.999 would leave a 300-step run 74 %
    the starting weights."""
    return min(0.999, max(0.9, 0.5 ** (10 / max(1, steps))))


def recipe(request: FineTuneRequest, name: str):
    """The trainer's Config for this request (checked as ldl-train checks a recipe)."""
    from ldl_video.devices import resolve_device
    from ldl_video.train.config import (
        Config,
        DataConfig,
        DegradationConfig,
        DiscriminatorConfig,
        LoopConfig,
        LossConfig,
        OptimConfig,
        ValConfig,
        validate,
    )

    given_lr = request.lr_from in ("microscope", "paired")  # the dataset carries "lq"
    threads = request.threads
    if not threads and resolve_device(request.device).type == "cpu":
        # a small network on a busy CPU: two threads fighting the viewer (and anything else) are slower than one
        threads = max(1, (os.cpu_count() or 2) // 2)
    degradation = {"bicubic": "bicubic", "real-world": "realesrgan"}.get(request.lr_from, "paired")
    steps = max(1, request.steps)
    config = Config(
        name=name, scale=request.scale, seed=request.seed, device=request.device, init=request.model,
        runs_dir=str(Path(request.folder) / "runs"),
        discriminator=DiscriminatorConfig(arch="unet" if request.gan > 0 else "none"),
        data=DataConfig(hr=["napari layers"], lr=["napari layers"] if given_lr else [], degradation=degradation,
                        gt_size=request.patch, batch_size=request.batch, num_workers=0),
        degradation=DegradationConfig(queue_size=0, source_size=0),
        losses=LossConfig(pixel=1.0, pixel_target="gt", perceptual=0.0, ldl=1.0 if request.ldl else 0.0, gan=request.gan),
        optim=OptimConfig(lr_g=request.lr, milestones=[]),
        train=LoopConfig(iterations=steps, ema_decay=ema_decay_for(steps), precision="fp32", threads=threads,
                         log_every=max(1, min(25, steps)), save_every=steps, keep_states=1),
        val=ValConfig(),
    )
    validate(config, "fine-tune settings")
    return config


def _run(request: FineTuneRequest, cancel: threading.Event, report: Report) -> FineTuneResult:
    from ldl_video.devices import resolve_device
    from ldl_video.train.distributed import World

    if not request.planes:
        raise LdlError("choose at least one image layer to fine-tune on")
    name = request.name or run_name(request.model)
    config = recipe(request, name)
    dataset = PlaneCrops(request.planes, request.scale, request.patch, request.seed, request.lr_from,
                         request.microscope, request.paired)
    world = World(device=resolve_device(request.device))
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    try:
        return _train(request, config, dataset, world, cancel, report, started)
    finally:
        torch.set_num_threads(threads_before)  # the trainer set its own; Upscale runs in this process too


def _train(request: FineTuneRequest, config, dataset: PlaneCrops, world, cancel: threading.Event, report: Report,
           started: float) -> FineTuneResult:
    from ldl_video.checkpoints import save_checkpoint
    from ldl_video.train.loop import Trainer

    name = config.name
    log: list[str] = []
    trainer = Trainer(config, world, say=lambda *parts, **_: log.append(" ".join(str(p) for p in parts)), dataset=dataset)
    device = trainer.device
    targets, inputs = _held_out(request)
    outputs_before = [_upscale(trainer.net_g_ema, x, device) for x in inputs]
    targets = [t[: o.shape[0], : o.shape[1]] for t, o in zip(targets, outputs_before, strict=True)]
    before = _scores(outputs_before, targets, inputs[0])
    budget = request.minutes * 60 if request.minutes > 0 else math.inf

    first_step: list[float] = []

    def on_step(trainer: Trainer, terms: dict[str, torch.Tensor]) -> None:
        elapsed = time.perf_counter() - started
        if cancel.is_set() or elapsed > budget:
            trainer.stop_requested = True
        if trainer.iteration == 1:
            first_step.append(elapsed)
        if trainer.iteration == RATE_STEPS + 1 and budget < math.inf:
            # the budget, not the step count, will end this run: size the EMA to the steps it allows
            rate = RATE_STEPS / max(elapsed - first_step[0], 1e-9)
            reachable = min(config.train.iterations, int(trainer.iteration + rate * max(budget - elapsed, 0)))
            trainer.config.train.ema_decay = ema_decay_for(reachable)
        preview = artifacts = None
        if trainer.iteration % max(1, request.preview_every) == 0 and not trainer.stop_requested:
            preview = _upscale(trainer.net_g_ema, inputs[0], device)
            artifacts = overlay(preview, targets[0], inputs[0])
        losses = {k: float(v) for k, v in terms.items()}
        report(StepReport(trainer.iteration, config.train.iterations, losses, elapsed, preview, artifacts))

    trainer.on_step = on_step
    stopped = False
    try:
        trainer.fit()
    except KeyboardInterrupt:  # the loop saved its state and says how to go on; here that is a normal end
        stopped = True
    finally:
        if trainer.log is not None:
            trainer.log.close()
    outputs_after = [_upscale(trainer.net_g_ema, x, device) for x in inputs]
    checkpoint = save_checkpoint(trainer.net_g_ema, Path(request.folder) / f"{name}.pth")
    after = _scores(outputs_after, targets, inputs[0])
    return FineTuneResult(checkpoint, trainer.iteration, stopped, before, after, outputs_after[0],
                          overlay(outputs_after[0], targets[0], inputs[0]), outputs_before, outputs_after, targets,
                          time.perf_counter() - started, log, config.train.ema_decay)


def _held_out(request: FineTuneRequest) -> tuple[list[np.ndarray], list[torch.Tensor]]:
    """(HR planes cropped to a multiple of the scale, their LR as 1×3×h×w tensors)."""
    s, targets, inputs = request.scale, [], []
    for i, plane in enumerate(request.held_out):
        h, w = plane.shape[0] // s * s, plane.shape[1] // s * s
        hr = np.ascontiguousarray(plane[:h, :w])
        if request.held_out_lr is not None:
            lr = torch.from_numpy(np.ascontiguousarray(request.held_out_lr[i][: h // s, : w // s])).permute(2, 0, 1)[None]
        else:
            gt = torch.from_numpy(hr).permute(2, 0, 1)[None]
            lr = make_lr(gt, s, request.lr_from, request.microscope, HELD_OUT_SEED + i)
        targets.append(hr)
        inputs.append(lr.float())
    return targets, inputs


@torch.no_grad()
def _upscale(net: torch.nn.Module, lr: torch.Tensor, device: torch.device) -> np.ndarray:
    training = net.training
    net.eval()
    out = net(lr.to(device)).clamp(0, 1)[0].permute(1, 2, 0).float().cpu().numpy()
    net.train(training)
    return out


def overlay(output: np.ndarray, target: np.ndarray, lr: torch.Tensor) -> np.ndarray:
    """The paper's artifact map of a held-out result against its HR plane (Lanczos from the same
    LR as the reference), on the display curve of Upscale's overlay: H×W in [0, 1]."""
    from ldl_video import Upscaler
    from ldl_video.artifacts import reference_artifact_map, to_display

    sizes = Upscaler("bicubic", scale=output.shape[0] // lr.shape[-2])  # says the output size; the result is `output`
    gt = torch.from_numpy(np.ascontiguousarray(target)).permute(2, 0, 1)[None]
    sr = torch.from_numpy(np.ascontiguousarray(output)).permute(2, 0, 1)[None]
    return to_display(reference_artifact_map(sizes, lr, gt, sr=sr))[0, 0].numpy()


def _scores(outputs: list[np.ndarray], targets: list[np.ndarray], first_lr: torch.Tensor) -> Scores:
    """Mean PSNR (10·log10(1/MSE) on [0, 1] values) and SSIM over the held-out planes, and the
    mean artifact overlay of the first."""
    from ldl_video.train.validation import ssim

    psnrs, ssims = [], []
    for out, target in zip(outputs, targets, strict=True):
        mse = float(np.mean((out.astype(np.float64) - target.astype(np.float64)) ** 2))
        psnrs.append(math.inf if mse == 0 else 10 * math.log10(1.0 / mse))
        ssims.append(ssim(torch.from_numpy(out).permute(2, 0, 1), torch.from_numpy(target).permute(2, 0, 1), 0))
    return Scores(float(np.mean(psnrs)), float(np.mean(ssims)), float(overlay(outputs[0], targets[0], first_lr).mean()))
