"""The `Fine-tune` dock widget (magicgui): image layers and settings in, a training run started,
a live loss curve and preview, and at the end a checkpoint that joins every model list.

Scriptable as napari's magicgui widgets are: `widget(images=[layer], steps=200)` sets those
values and starts the run (the started worker is returned); `widget.last_result` holds the
finished run. The widget never computes: _finetune_data turns layers into training planes,
_finetune_worker runs the engine's trainer.
"""

from __future__ import annotations

import sys
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
)
from qtpy.QtCore import QObject, Signal

from ldl_video.errors import LdlError

from . import _models
from ._finetune_data import LR_SOURCES, Microscope, check_planes, unit_planes
from ._layers import ARTIFACT_COLORS, ARTIFACT_OPACITY
from ._planes import UnsuitableLayer
from ._plot import LossCurve
from ._widget import _image_layers, apply_values

if TYPE_CHECKING:
    import napari

DEFAULT_START = "realesr-animevideov3-x2"  # the fast compact network; trains at hundreds of steps a minute on a CPU
HELD_OUT_PLANES = 4  # scored planes of the held-out layer (each costs an inference per preview)


class _Relay(QObject):
    """Carries step reports from the worker thread to the GUI thread (a queued signal)."""

    stepped = Signal(object)


class FineTuneWidget(Container):
    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.worker = None
        self.last_result = None
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.stepped.connect(self._on_step)
        self._build()
        _models.events.checkpoints_changed.connect(self._models_changed)
        self.reset_choices()

    # ---- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        layers = lambda _: [(layer.name, layer) for layer in _image_layers(self.viewer)]  # noqa: E731
        optional = lambda _: [("(none)", None)] + layers(None)  # noqa: E731
        self.images = Select(label="images", choices=layers, tooltip="High-resolution layers to learn from; "
                             "every plane of a z/t stack is a training image")
        self.held_out = ComboBox(label="held out", choices=optional, tooltip="A layer of the same domain kept out "
                                 "of training: scored (PSNR/SSIM) before and after, and previewed. "
                                 "None: the first training plane is previewed and scored")
        self.model = ComboBox(label="start from", choices=self._model_choices, tooltip="The network to fine-tune")
        self.scale = ComboBox(label="scale", choices=[2, 3, 4], value=2)
        self.lr_from = ComboBox(label="LR made by", choices=list(LR_SOURCES), value="microscope",
                                tooltip="microscope: Gaussian PSF blur, binning, shot and read noise; bicubic; "
                                        "real-world: Real-ESRGAN's degradation; paired: the LR layer below")
        self.paired = ComboBox(label="paired LR", choices=optional, tooltip="For 'paired': a layer with the same "
                               "planes as the image layers, at 1/scale size")
        self.sigma_low = FloatSpinBox(label="PSF σ from", value=0.8, min=0.1, max=10.0, step=0.1)
        self.sigma_high = FloatSpinBox(label="PSF σ to", value=1.6, min=0.1, max=10.0, step=0.1)
        self.photons = FloatSpinBox(label="photons", value=300.0, min=1.0, max=1e6, step=100.0,
                                    tooltip="The fewest photons at the brightest pixel (up to ten times more are drawn)")
        self.ldl = CheckBox(label="LDL loss", value=True, tooltip="Penalise where the output invents detail")
        self.gan = FloatSpinBox(label="GAN weight", value=0.0, min=0.0, max=1.0, step=0.01,
                                tooltip="0: fidelity only; above 0 adds the U-Net discriminator (several times slower)")
        self.steps = SpinBox(label="steps", value=300, min=1, max=1_000_000, step=50)
        self.minutes = FloatSpinBox(label="time budget", value=4.0, min=0.0, max=10_000.0, step=1.0,
                                    tooltip="Minutes; stop when spent (0: only the step count stops)")
        self.patch = SpinBox(label="patch", value=48, min=16, max=512, step=16, tooltip="HR crop size in pixels")
        self.batch = SpinBox(label="batch", value=4, min=1, max=64)
        self.device = ComboBox(label="device", choices=_models.devices())
        self.preview_every = SpinBox(label="preview every", value=25, min=1, max=100_000,
                                     tooltip="Steps between previews of the held-out plane")
        self.folder = FileEdit(label="save to", mode="d", value=str(_models.finetuned_dir()))
        self.run_button = PushButton(text="Fine-tune")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0)
        self.status = Label(label="status", value="")
        self.scores = Label(label="scores", value="")
        self.extend([self.images, self.held_out, self.model, self.scale, self.lr_from, self.paired, self.sigma_low,
                     self.sigma_high, self.photons, self.ldl, self.gan, self.steps, self.minutes, self.patch, self.batch,
                     self.device, self.preview_every, self.folder, self.run_button, self.cancel_button, self.progress,
                     self.status, self.scores])
        self.curve = LossCurve()
        self.native.layout().addWidget(self.curve)
        self.run_button.changed.connect(lambda: self.run())
        self.cancel_button.changed.connect(self.cancel)
        self.model.changed.connect(self._model_changed)
        self.lr_from.changed.connect(self._lr_changed)
        self.model.value = DEFAULT_START if DEFAULT_START in [c[1] for c in self._model_choices(None)] else self.model.value
        self._lr_changed()

    def _model_choices(self, _) -> list[tuple[str, str]]:
        return [(label, value) for label, value, present, _ in _models.model_choices(trainable=True) if present]

    def _models_changed(self) -> None:
        try:
            self.model.reset_choices()
        except RuntimeError:  # the dock was closed and Qt deleted the widget: stop listening
            _models.events.checkpoints_changed.disconnect(self._models_changed)

    def _model_changed(self, *_) -> None:
        native = _models.native_scale(str(self.model.value))
        if native in (2, 3, 4):
            self.scale.value = native

    def _lr_changed(self, *_) -> None:
        microscope = self.lr_from.value == "microscope"
        for widget in (self.sigma_low, self.sigma_high, self.photons):
            widget.enabled = microscope
        self.paired.enabled = self.lr_from.value == "paired"

    # ---- running ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def __call__(self, **values):
        """Set the named values (images=[...], steps=..., ...) and start; returns the worker."""
        apply_values(self, values, "Fine-tune")
        return self.run()

    def run(self):
        """What the Fine-tune button does; returns the started worker, or None when the choices
        cannot work (a notification says why)."""
        from napari.qt.threading import thread_worker
        from napari.utils.notifications import show_error

        from ._finetune_worker import run_finetune

        if self.running:
            return None
        try:
            request, preview_source = self._request()
        except LdlError as error:
            show_error(f"napari-ldl: {error}")
            self.status.value = str(error)
            return None
        _import_dynamo_without_triton()
        self._cancel.clear()
        self.curve.clear()
        self.progress.max, self.progress.value = request.steps, 0
        outcome: list = []  # napari emits no `returned` for an aborted worker; the run still ends and saves

        def work():
            outcome.append(run_finetune(request, self._cancel, self._relay.stepped.emit))
            return outcome[0]

        worker = thread_worker(work, start_thread=False)()
        worker.finished.connect(partial(self._finished, preview_source, outcome))
        self.worker = worker
        self._set_running(True)
        self.status.value = f"fine-tuning {request.model} on {len(request.planes)} plane(s) …"
        self.scores.value = ""
        self._preview_target = preview_source
        worker.start()
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self._cancel.set()
            self.status.value = "stopping after this step; the weights so far are kept …"

    def _request(self):
        from ._finetune_worker import FineTuneRequest

        layers = list(self.images.value)
        if not layers:
            raise UnsuitableLayer("choose one or more high-resolution image layers to fine-tune on")
        planes = [plane for layer in layers for plane in unit_planes(layer)]
        lr_from, scale = str(self.lr_from.value), int(self.scale.value)
        paired = held_out_lr = None
        if lr_from == "paired":
            if self.paired.value is None:
                raise UnsuitableLayer("'paired' needs the LR layer: choose it under 'paired LR'")
            paired = unit_planes(self.paired.value)
            if len(paired) != len(planes):
                raise UnsuitableLayer(f"the paired LR layer has {len(paired)} plane(s) but the images have {len(planes)}")
        check_planes(planes, scale, int(self.patch.value), paired)
        held = self.held_out.value
        if held is not None and lr_from != "paired":
            held_out, preview_source = unit_planes(held, limit=HELD_OUT_PLANES), held
        else:  # paired data are scored on the first pair, whose LR is given
            held_out, preview_source = planes[:1], layers[0]
            held_out_lr = paired[:1] if paired else None
        if self.sigma_low.value > self.sigma_high.value:
            raise LdlError("PSF σ 'from' is above 'to'; swap them")
        request = FineTuneRequest(
            planes=planes, held_out=held_out, model=str(self.model.value), scale=scale, folder=Path(self.folder.value),
            lr_from=lr_from, microscope=Microscope((self.sigma_low.value, self.sigma_high.value),
                                                  (self.photons.value, 10 * self.photons.value)),
            paired=paired, held_out_lr=held_out_lr, ldl=bool(self.ldl.value), gan=float(self.gan.value),
            steps=int(self.steps.value), minutes=float(self.minutes.value), device=str(self.device.value),
            patch=int(self.patch.value), batch=int(self.batch.value), preview_every=int(self.preview_every.value))
        return request, preview_source

    def _on_step(self, report) -> None:
        if self.worker is None:
            return
        if self.worker.abort_requested:  # napari's task manager, or the app quitting
            self._cancel.set()
        self.progress.value = min(report.step, self.progress.max)
        total = sum(report.losses.values())
        self.curve.add(report.step, total)
        self.status.value = f"step {report.step}/{report.total}, loss {total:.4g}, {report.seconds:.0f} s"
        if report.preview is not None:
            self._show_preview(report.preview, report.artifacts)

    def _show_preview(self, image, artifacts) -> None:
        """The preview layer and its artifact overlay, replaced in place, on the plane they show
        (the held-out plane is HR, so they share its pixel grid)."""
        from napari.utils.colormaps import Colormap

        source = self._preview_target
        where = {"scale": [float(s) for s in source.scale[-2:]], "translate": [float(t) for t in source.translate[-2:]]}
        name = f"{source.name} fine-tune preview"
        for layer_name, data, look in (
            (name, image if source.rgb else image.mean(axis=-1), {"rgb": source.rgb, "contrast_limits": (0, 1)}),
            (f"{source.name} fine-tune artifact map", artifacts,
             {"colormap": Colormap(ARTIFACT_COLORS, name="ldl artifacts", display_name="ldl artifacts"),
              "contrast_limits": (0.0, 1.0), "blending": "additive", "opacity": ARTIFACT_OPACITY}),
        ):
            if layer_name in self.viewer.layers:
                self.viewer.layers[layer_name].data = data
            else:
                self.viewer.add_image(data, name=layer_name, metadata={"ldl": {"preview_of": source.name}}, **where, **look)

    def _done(self, preview_source, result) -> None:
        from napari.utils.notifications import ErrorNotification, notification_manager, show_info

        from ._worker import Failure

        if isinstance(result, Failure):
            notification_manager.dispatch(ErrorNotification(result.error))
            self.status.value = str(result.error)
            return
        self.last_result = result
        self._preview_target = preview_source
        self._show_preview(result.preview, result.preview_artifacts)
        _models.add_checkpoint(result.checkpoint)
        how = "stopped" if result.stopped_early else "finished"
        self.status.value = f"{how} at step {result.steps} in {result.seconds:.0f} s; saved {result.checkpoint}"
        b, a = result.before, result.after
        self.scores.value = (f"PSNR {b.psnr:.2f} → {a.psnr:.2f} dB, SSIM {b.ssim:.4f} → {a.ssim:.4f}, "
                             f"artifact map {b.artifacts:.3f} → {a.artifacts:.3f}")
        show_info(f"napari-ldl: fine-tuned model saved to {result.checkpoint} (“{result.checkpoint.name}” in "
                  f"Upscale's model list); held-out {self.scores.value}")

    def _finished(self, preview_source, outcome: list) -> None:
        self.worker = None
        self._set_running(False)
        if outcome:
            self._done(preview_source, outcome[0])

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running


def _import_dynamo_without_triton() -> None:
    """torch's optimisers import torch._dynamo, which imports triton when it is installed (the
    CUDA wheels bring it); with Mesa's OpenGL already loaded by the viewer, triton's own LLVM
    crashes the process at import. Fine-tuning never compiles, so triton stays hidden."""
    if "triton" not in sys.modules:
        sys.modules["triton"] = None  # `import triton` now raises ImportError: torch takes it as absent
    import torch._dynamo  # noqa: F401
