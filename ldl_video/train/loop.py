"""The one training loop. The recipe switches its parts: which losses have weight, whether a
discriminator plays, where LR comes from (given, bicubic, or Real-ESRGAN's degradation).

One iteration:
  1. LR for the HR crop (degradation and the training-pair queue on the device).
  2. Generator step: pixel L1 and perceptual loss (against the unsharp-masked GT by default),
     LDL (the artifact map from the generator's and the EMA generator's residuals, plain GT),
     GAN; a step whose loss is not finite is skipped on every process, and a streak stops the run.
  3. EMA update (every step).
  4. Discriminator step on GT and the detached output.
"""

from __future__ import annotations

import bisect
import json
import signal
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from ..devices import PRECISIONS
from ..errors import LdlError
from ..ldl import ldl_loss
from . import state as run_files
from .config import Config
from .data import ResumableSampler, training_dataset
from .degradations import Degrader, PairQueue, bicubic_lr, usm_sharpen
from .distributed import World, any_true, barrier, broadcast_flag, mean_over
from .losses import PerceptualLoss, discriminator_gan_loss, generator_gan_loss
from .models import build_discriminator, build_generator, ema_copy, update_ema


def resolve_train_precision(spec: str, device: torch.device) -> torch.dtype:
    if spec == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    if spec == "fp16" and device.type != "cuda":
        raise LdlError("train.precision fp16 needs a CUDA GPU; use fp32 or bf16 on the CPU")
    return PRECISIONS[spec]


class Trainer:
    """`dataset`, for use from Python (benchmarks, notebooks): any Dataset indexed by (index, epoch)
    that returns {"gt": 3×S×S} (and "lq" for paired data) in place of the recipe's data.hr.
    `on_step(trainer, terms)` is called after every iteration (progress, previews, a time budget in
    a GUI); setting `stop_requested` from any thread stops after the step, saving the state."""

    def __init__(self, config: Config, world: World, resume: bool = False, say=print, dataset: Dataset | None = None,
                 on_step: Callable[[Trainer, dict[str, torch.Tensor]], None] | None = None) -> None:
        self.config, self.world, self.device = config, world, world.device
        self.on_step = on_step
        self.say = say if world.main else (lambda *a, **k: None)
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        torch.manual_seed(config.seed)
        self.amp_dtype = resolve_train_precision(config.train.precision, self.device)
        self.channels_last = config.train.channels_last and self.device.type == "cuda"
        self._build_networks()
        self._build_optimisers()
        self._build_data(dataset)
        self.iteration = self.epoch = self.batches_done = self.nan_streak = 0
        self.running: dict[str, torch.Tensor] = {}
        self.running_steps = 0
        self.stop_requested = False
        self.log: RunLog | None = None  # opened by fit(), after the caller has set up the run folder
        self.validator = None
        if config.val.hr:
            from .validation import Validator

            self.validator = Validator(config, self.size_multiple)
        if resume:
            self._resume()

    # ------------------------------------------------------------ set-up

    def _build_networks(self) -> None:
        c, device = self.config, self.device
        net_g, self.g_description, self.size_multiple = build_generator(c)
        memory = torch.channels_last if self.channels_last else torch.preserve_format
        self.net_g_raw = net_g.to(device, memory_format=memory).train()
        self.net_g_ema = ema_copy(self.net_g_raw)
        net_d = build_discriminator(c)
        self.net_d_raw = net_d.to(device, memory_format=memory).train() if net_d is not None else None
        self.net_g, self.net_d = self.net_g_raw, self.net_d_raw
        if self.world.distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.net_g = DistributedDataParallel(self.net_g_raw, device_ids=ids)
            if self.net_d_raw is not None:
                self.net_d = DistributedDataParallel(self.net_d_raw, device_ids=ids)
        if c.train.compile:
            self.net_g = torch.compile(self.net_g)
        self.perceptual = None
        if c.losses.perceptual > 0:
            self.perceptual = PerceptualLoss(c.losses.perceptual_layers, c.losses.vgg_weights).to(device, memory_format=memory)

    def _build_optimisers(self) -> None:
        o = self.config.optim
        betas = (o.betas[0], o.betas[1])
        self.opt_g = torch.optim.Adam(self.net_g_raw.parameters(), lr=o.lr_g, betas=betas, weight_decay=o.weight_decay)
        self.opt_d = None
        if self.net_d_raw is not None:
            self.opt_d = torch.optim.Adam(self.net_d_raw.parameters(), lr=o.lr_d, betas=betas, weight_decay=o.weight_decay)
        fp16 = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)

    def _build_data(self, dataset: Dataset | None) -> None:
        c, w = self.config, self.world
        d = c.data
        self.dataset = dataset if dataset is not None else training_dataset(c)
        self.sampler = ResumableSampler(len(self.dataset), w.size, w.rank, c.seed, d.batch_size)
        if self.sampler.batches_per_epoch < 1:
            raise LdlError(f"data.hr gives {len(self.dataset)} images, fewer than data.batch_size ({d.batch_size}) × "
                           f"{w.size} process(es); add images or lower data.batch_size")
        self.loader = DataLoader(self.dataset, batch_size=d.batch_size, sampler=self.sampler, num_workers=d.num_workers,
                                 drop_last=True, pin_memory=self.device.type == "cuda", persistent_workers=d.num_workers > 0)
        self.degrader = None
        if d.degradation == "realesrgan":
            self.degrader = Degrader(c.degradation, c.scale, self.device, c.seed + 7919 * (w.rank + 1))
        self.queue = PairQueue(c.degradation.queue_size if self.degrader else 0)

    def _autocast(self):
        if self.amp_dtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # ------------------------------------------------------------ one iteration

    def _inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        gt = batch["gt"].to(self.device, non_blocking=True)
        if "lq" in batch:
            lq = batch["lq"].to(self.device, non_blocking=True)
        elif self.degrader is not None:
            lo = self.config.losses
            sharpened = usm_sharpen(gt, lo.usm_weight, lo.usm_radius, lo.usm_threshold)
            lq = self.degrader(sharpened)  # as Real-ESRGAN: the degradation starts from the sharpened GT
            lq, gt = self._paired_crop(lq, gt)
            lq, gt = self.queue(lq, gt, self.degrader.params)
        else:
            lq = bicubic_lr(gt, self.config.scale)
        if self.channels_last:
            gt, lq = gt.contiguous(memory_format=torch.channels_last), lq.contiguous(memory_format=torch.channels_last)
        return lq, gt

    def _paired_crop(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gt_size crop (and its LR) out of a larger degraded source crop, one place per batch."""
        size, s = self.config.data.gt_size, self.config.scale
        if gt.shape[-1] == size and gt.shape[-2] == size:
            return lq, gt
        small = size // s
        gen = self.degrader.params
        top = int(torch.randint(lq.shape[-2] - small + 1, (), generator=gen))
        left = int(torch.randint(lq.shape[-1] - small + 1, (), generator=gen))
        lq = lq[..., top : top + small, left : left + small]
        gt = gt[..., top * s : (top + small) * s, left * s : (left + small) * s]
        return lq.contiguous(), gt.contiguous()

    def _set_lr(self) -> None:
        o = self.config.optim
        factor = o.gamma ** bisect.bisect_right(o.milestones, self.iteration - 1)
        for opt, base in ((self.opt_g, o.lr_g), (self.opt_d, o.lr_d)):
            for group in (opt.param_groups if opt else []):
                group["lr"] = base * factor

    def _generator_losses(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        lo = self.config.losses
        usm = None
        if (lo.pixel and lo.pixel_target == "usm") or (lo.perceptual and lo.perceptual_target == "usm"):
            usm = usm_sharpen(gt, lo.usm_weight, lo.usm_radius, lo.usm_threshold)
        with self._autocast():
            sr = self.net_g(lq)
        sr32, terms = sr.float(), {}
        if lo.pixel:
            terms["l_pix"] = lo.pixel * F.l1_loss(sr32, usm if lo.pixel_target == "usm" else gt)
        if self.perceptual is not None:
            with self._autocast():
                terms["l_percep"] = lo.perceptual * self.perceptual(sr, usm if lo.perceptual_target == "usm" else gt).float()
        if lo.ldl:
            with torch.no_grad(), self._autocast():
                sr_ema = self.net_g_ema(lq)
            terms["l_ldl"] = lo.ldl * ldl_loss(sr32, gt.float(), sr_ema.float(), lo.ldl_kernel)  # fp32, map not detached
        if self.net_d_raw is not None:
            self.net_d_raw.requires_grad_(False)
            with self._autocast():
                fake = self.net_d_raw(sr)  # the bare module: D's weights get no gradient here, nothing to sync
                real = self.net_d_raw(gt).detach() if lo.gan_type == "ragan" else None
            terms["l_g_gan"] = lo.gan * generator_gan_loss(lo.gan_type, fake.float(), None if real is None else real.float())
        return sr, terms

    def _step(self, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, params) -> None:
        clip = self.config.optim.grad_clip
        if clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, clip)
        scaler.step(opt)
        scaler.update()

    def _discriminator_step(self, sr: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        kind = self.config.losses.gan_type
        self.net_d_raw.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        fake_in = sr.detach()
        with self._autocast():
            fake_ref = None
            if kind == "ragan":
                with torch.no_grad():
                    fake_ref = self.net_d(fake_in).float()
            real_pred = self.net_d(gt).float()
            l_real = discriminator_gan_loss(kind, real_pred, fake_ref, real=True)
        self.scaler_d.scale(l_real).backward()
        with self._autocast():
            fake_pred = self.net_d(fake_in).float()
            l_fake = discriminator_gan_loss(kind, fake_pred, real_pred, real=False)
        self.scaler_d.scale(l_fake).backward()
        terms = {"l_d_real": l_real.detach(), "l_d_fake": l_fake.detach(),
                 "out_d_real": real_pred.detach().mean(), "out_d_fake": fake_pred.detach().mean()}
        if any_true(self.world, not bool(torch.isfinite(l_real + l_fake))):
            self.opt_d.zero_grad(set_to_none=True)
            self.say(f"iteration {self.iteration}: non-finite discriminator loss, its step skipped")
            return {}
        self._step(self.opt_d, self.scaler_d, self.net_d_raw.parameters())
        return terms

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One iteration; {} when the generator's loss was not finite and the step was skipped."""
        self._set_lr()
        lq, gt = self._inputs(batch)
        self.opt_g.zero_grad(set_to_none=True)
        sr, terms = self._generator_losses(lq, gt)
        total = torch.stack(list(terms.values())).sum()
        if any_true(self.world, not bool(torch.isfinite(total))):
            self._non_finite(terms)
            return {}
        self.nan_streak = 0
        self.scaler_g.scale(total).backward()
        self._step(self.opt_g, self.scaler_g, self.net_g_raw.parameters())
        update_ema(self.net_g_ema, self.net_g_raw, self.config.train.ema_decay)
        if self.net_d_raw is not None:
            terms.update(self._discriminator_step(sr, gt))
        return {k: v.detach() for k, v in terms.items()}

    def _non_finite(self, terms: dict[str, torch.Tensor]) -> None:
        self.opt_g.zero_grad(set_to_none=True)
        self.nan_streak += 1
        values = ", ".join(f"{k} {float(v.detach()):.4g}" for k, v in terms.items())
        self.say(f"iteration {self.iteration}: non-finite loss ({values}); step skipped "
                 f"({self.nan_streak} in a row, stopping at {self.config.train.max_nan_steps})")
        if self.nan_streak >= self.config.train.max_nan_steps:
            last = run_files.latest_state(self.config.run_dir)
            where = f"; the last good state is {last}" if last else ""
            raise LdlError(f"stopped: {self.nan_streak} non-finite losses in a row at iteration {self.iteration}{where}; "
                           "lower optim.lr_g, set optim.grad_clip, or use train.precision=bf16 or fp32")

    # ------------------------------------------------------------ the run

    def fit(self) -> Path | None:
        c = self.config
        total = c.train.iterations
        if self.iteration >= total:
            self.say(f"{c.run_dir}: already at iteration {self.iteration} of {total}; raise train.iterations to go on")
            return c.run_dir / "models" / "net_g_latest.pth"
        if self.world.main and self.log is None:
            self.log = RunLog(c.run_dir)
        self._announce()
        previous = self._install_signal_handlers()
        try:
            return self._run(total)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self, total: int) -> Path:
        c = self.config
        started, start_iter = time.perf_counter(), self.iteration
        last_log = (started, self.iteration)
        saved_at = -1
        while self.iteration < total and not self.stop_requested:
            self.sampler.set_position(self.epoch, self.batches_done)
            for batch in self.loader:
                self.iteration += 1
                terms = self.train_step(batch)
                self._advance_position()
                self._accumulate(terms)
                if self.on_step is not None:
                    self.on_step(self, terms)
                if self.iteration % c.train.log_every == 0 or self.iteration == total:
                    last_log = self._write_log(last_log)
                if self.validator is not None and (self.iteration % c.val.every == 0 or self.iteration == total):
                    self.validate()
                if self.iteration % c.train.save_every == 0 or self.iteration == total:
                    self.save()
                    saved_at = self.iteration
                self.stop_requested = broadcast_flag(self.world, self.stop_requested)
                if self.iteration >= total or self.stop_requested:
                    break
        if saved_at != self.iteration:
            self.save()
        elapsed = time.perf_counter() - started
        speed = (self.iteration - start_iter) / max(elapsed, 1e-9)
        self.say(f"{'stopped' if self.stop_requested else 'finished'} at iteration {self.iteration} ({speed:.2f} it/s); "
                 f"generator: {c.run_dir / 'models' / 'net_g_latest.pth'}")
        if self.stop_requested:
            raise KeyboardInterrupt  # the state is saved; ldl-train says how to continue and exits 130
        return c.run_dir / "models" / "net_g_latest.pth"

    def _advance_position(self) -> None:
        self.batches_done += 1
        if self.batches_done >= self.sampler.batches_per_epoch:
            self.epoch, self.batches_done = self.epoch + 1, 0

    def _install_signal_handlers(self) -> dict:
        """Ctrl-C / SIGTERM: finish the step, save, stop. Returns the handlers to put back."""
        def request_stop(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True
            self.say("stopping after this iteration and saving the state (press again to quit at once)")

        previous = {}
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, request_stop)
        except ValueError:  # not the main thread (e.g. called from a worker thread): no handlers
            pass
        return previous

    def _announce(self) -> None:
        c, w = self.config, self.world
        d = "none" if self.net_d_raw is None else f"{c.discriminator.arch} ({c.losses.gan_type} GAN, weight {c.losses.gan})"
        self.say(f"run {c.run_dir}: generator {self.g_description}; discriminator {d}")
        self.say(f"data: {len(self.dataset)} HR sources, LR by {c.data.degradation}, crop {c.data.gt_size}, "
                 f"batch {c.data.batch_size} × {w.size} process(es); device {self.device}, "
                 f"{str(self.amp_dtype).removeprefix('torch.')}; iterations {self.iteration} -> {c.train.iterations}")

    # ------------------------------------------------------------ logging, validation, files

    def _accumulate(self, terms: dict[str, torch.Tensor]) -> None:
        if not terms:
            return
        for k, v in terms.items():
            self.running[k] = self.running.get(k, 0.0) + v.float()
        self.running_steps += 1

    def _write_log(self, last: tuple[float, int]) -> tuple[float, int]:
        now = time.perf_counter()
        values = {k: float(v) / self.running_steps for k, v in self.running.items()} if self.running_steps else {}
        values = mean_over(self.world, values)
        self.running, self.running_steps = {}, 0
        speed = (self.iteration - last[1]) / max(now - last[0], 1e-9)
        lr = self.opt_g.param_groups[0]["lr"]
        if self.log is not None:
            self.log.scalars(self.iteration, {**values, "lr_g": lr, "it_per_s": speed})
        text = " ".join(f"{k} {v:.4g}" for k, v in values.items())
        self.say(f"iter {self.iteration}/{self.config.train.iterations} | {text} | lr {lr:.2e} | {speed:.2f} it/s")
        return now, self.iteration

    def validate(self) -> dict[str, float] | None:
        """The EMA generator on the validation images (rank 0; the others wait)."""
        metrics = None
        if self.world.main:
            sample_dir = self.config.run_dir / "samples" / str(self.iteration)
            metrics, samples = self.validator(self.net_g_ema, self.device, sample_dir)
            self.log.scalars(self.iteration, {f"val/{k}": v for k, v in metrics.items()})
            self.log.images(self.iteration, samples)
            self.say(f"validation at {self.iteration}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        barrier(self.world)
        return metrics

    def _rank_state(self) -> dict:
        return {"degrader": self.degrader.state_dict() if self.degrader else {}, "queue": self.queue.state_dict()}

    def save(self) -> None:
        ranks = [self._rank_state()]
        if self.world.distributed:
            import torch.distributed as dist

            gathered = [None] * self.world.size if self.world.main else None
            dist.gather_object(ranks[0], gathered, dst=0)
            ranks = gathered
        if self.world.main:
            run_dir = self.config.run_dir
            run_files.save_networks(run_dir, self.iteration, self.net_g_raw, self.net_g_ema, self.net_d_raw)
            state = {
                "iteration": self.iteration, "epoch": self.epoch, "batches_done": self.batches_done,
                "world_size": self.world.size, "nan_streak": self.nan_streak,
                "net_g": self.net_g_raw.state_dict(), "net_g_ema": self.net_g_ema.state_dict(),
                "net_d": self.net_d_raw.state_dict() if self.net_d_raw is not None else {},
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict() if self.opt_d else {},
                "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict(),
                "ranks": ranks, "config": self.config.to_dict(),
            }
            run_files.save_state(run_dir, self.iteration, state, self.config.train.keep_states)
        barrier(self.world)

    def _resume(self) -> None:
        path = run_files.latest_state(self.config.run_dir)
        if path is None:
            raise LdlError(f"--resume: {self.config.run_dir} holds no training state; start without --resume")
        state = run_files.load_state(path)
        self.net_g_raw.load_state_dict(state["net_g"])
        self.net_g_ema.load_state_dict(state["net_g_ema"])
        if self.net_d_raw is not None and state["net_d"]:
            self.net_d_raw.load_state_dict(state["net_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.opt_d is not None and state["opt_d"]:
            self.opt_d.load_state_dict(state["opt_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.iteration, self.epoch, self.batches_done = state["iteration"], state["epoch"], state["batches_done"]
        self.nan_streak = state["nan_streak"]
        if state["world_size"] != self.world.size:
            self.say(f"resuming a {state['world_size']}-process run on {self.world.size}: data order and degradation "
                     "streams restart, so the result will differ from an uninterrupted run")
            self.sampler.set_position(self.epoch, 0)
            self.batches_done = 0
        elif self.world.rank < len(state["ranks"]):
            mine = state["ranks"][self.world.rank]
            if self.degrader is not None and mine["degrader"]:
                self.degrader.load_state_dict(mine["degrader"])
            self.queue.load_state_dict(mine["queue"], self.device)
        shape = self.g_description.removesuffix(", fresh").split(" from ")[0]
        self.g_description = f"{shape}, weights from {path}"
        self.say(f"resumed from {path} at iteration {self.iteration}")


class RunLog:
    """log.jsonl always; TensorBoard (runs/<name>/tb) when the tensorboard package is here."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "log.jsonl"
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            self.tb = None

    def scalars(self, iteration: int, values: dict[str, float]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"iter": iteration, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, iteration)
            self.tb.flush()

    def images(self, iteration: int, samples: list) -> None:
        if self.tb is not None:
            for name, image in samples:
                self.tb.add_image(f"samples/{name}", image.clamp(0, 1), iteration)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def echo(*args, **kwargs) -> None:
    print(*args, **kwargs, file=sys.stderr, flush=True)
