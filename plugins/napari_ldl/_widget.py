"""The `Upscale` dock widget (magicgui, napari's convention): choices in, a worker started, two
layers out. It never computes: the worker (_worker) runs the engine, _layers builds the output
layers. The model list is the zoo (models whose weights are missing greyed out) plus every
checkpoint browsed to or made by the Fine-tune widget."""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, Label, ProgressBar, PushButton, SpinBox
from qtpy.QtCore import QObject, Signal

from ldl_video.errors import LdlError

from . import _models
from ._intensity import METHODS
from ._layers import SourceSnapshot, output_layers
from ._planes import UnsuitableLayer, plane_layout
from ._worker import Failure, Progress, UpscaleRequest, UpscaleResult, run_upscale

if TYPE_CHECKING:
    import napari

DEFAULT_MODEL = "realesr-animevideov3-x2"  # fast on a CPU; the zoo's default (x4plus) is ~35× slower
SCALES = (2, 3, 4)
_BAR_STEPS = 1000


class _Relay(QObject):
    """Carries tile progress from the worker thread to the GUI thread (a queued signal)."""

    progressed = Signal(object)


class UpscaleWidget(Container):
    """Scriptable as napari's magicgui widgets are: `widget(image=layer, model="bicubic", scale=2)`
    sets those values and starts a run (the started worker is returned)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.worker = None
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progressed.connect(self._show_progress)
        self._build()
        _models.events.checkpoints_changed.connect(self._models_changed)
        self.reset_choices()

    # ---- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        layers = lambda _: [(layer.name, layer) for layer in _image_layers(self.viewer)]  # noqa: E731
        self.image = ComboBox(label="image", choices=layers,
                              tooltip="The image layer to upscale (the last two axes are the plane)")
        self.model = ComboBox(label="model", choices=lambda _: [(r[0], r[1]) for r in _models.model_choices()])
        self.browse = PushButton(text="checkpoint file …", tooltip="Use a checkpoint file (.pth, .safetensors)")
        self.scale = ComboBox(label="scale", choices=[(f"×{s}", s) for s in SCALES],
                              tooltip="Output size / input size along y and x")
        self.tile = SpinBox(label="tile (px)", min=0, max=4096, step=64, value=256,
                            tooltip="Tile size in input pixels (0: the whole plane): bounds memory; Cancel acts between tiles")
        self.device = ComboBox(label="device", choices=_models.devices())
        self.backend = ComboBox(label="backend", choices=_models.backends(),
                                tooltip="What runs the network: auto (TensorRT on an NVIDIA GPU when installed, else torch)")
        self.intensities = ComboBox(label="intensities", choices=list(METHODS),
                                    tooltip="How intensities are brought to [0, 1] for the model and back "
                                            "(auto: 8-bit as is, everything else from its own min/max)")
        self.channel_axis = ComboBox(label="channel axis", choices=self._channel_choices,
                                     tooltip="An axis whose entries are separate channels: each is normalised on its own")
        self.artifact_map = CheckBox(text="artifact map overlay", value=True)
        self.ground_truth = ComboBox(label="ground truth", choices=lambda _: [("(none: blind estimate)", None)] + layers(None),
                                     tooltip="A high-resolution layer of the same scene: the artifact map from the truth "
                                             "(the paper's map) instead of the blind estimate")
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(min=0, max=_BAR_STEPS, value=0)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.extend([self.image, self.model, self.browse, self.scale, self.tile, self.device, self.backend, self.intensities,
                     self.channel_axis, self.artifact_map, self.ground_truth, self.run_button, self.cancel_button,
                     self.progress, self.status])
        self.run_button.changed.connect(lambda: self.upscale())
        self.cancel_button.changed.connect(self.cancel)
        self.browse.changed.connect(self._browse_checkpoint)
        self.model.changed.connect(self._model_changed)
        self.image.changed.connect(lambda: self.channel_axis.reset_choices())
        self._default_model()

    # ---- choices ------------------------------------------------------------------------
    def reset_choices(self, *_) -> None:
        """Refresh every list (napari calls this when layers are added, removed, renamed)."""
        super().reset_choices()
        self._mark_missing_weights()

    def _models_changed(self) -> None:
        try:
            self.model.reset_choices()
            self._mark_missing_weights()
        except RuntimeError:  # the dock was closed and Qt deleted the widget: stop listening
            _models.events.checkpoints_changed.disconnect(self._models_changed)

    def _mark_missing_weights(self) -> None:
        """Models whose weights are not here stay listed, greyed out, with where to get them."""
        native = self.model.native
        rows = {value: (present, description) for _, value, present, description in _models.model_choices()}
        for i in range(native.count()):
            present, description = rows.get(native.itemData(i), (True, ""))
            item = native.model().item(i)
            item.setEnabled(present)
            item.setToolTip(description if present else f"weights not here: {description}")
        if not rows.get(self.model.value, (True,))[0]:
            self._default_model()

    def _default_model(self) -> None:
        present = [value for _, value, here, _ in _models.model_choices() if here]
        self.model.value = DEFAULT_MODEL if DEFAULT_MODEL in present else present[0]

    def _channel_choices(self, _) -> list[tuple[str, int | None]]:
        layer = self.image.value if hasattr(self, "image") else None
        choices: list[tuple[str, int | None]] = [("none", None)]
        if layer is not None:
            labels = tuple(layer.axis_labels)
            choices += [(f"axis {axis} ({labels[axis]}, {layer.data.shape[axis]})", axis) for axis in range(layer.ndim - 2)]
        return choices

    def _model_changed(self, *_) -> None:
        native = _models.native_scale(str(self.model.value))
        if native in SCALES:
            self.scale.value = native

    def _browse_checkpoint(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, "Checkpoint", "", "Checkpoints (*.pth *.pt *.safetensors *.ckpt)")
        if path:
            self.model.value = _models.add_checkpoint(path)

    # ---- running ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def __call__(self, **values):
        """Set the named values (image=layer, model=..., scale=..., ...) and start; returns the worker."""
        apply_values(self, values, "Upscale")
        return self.upscale()

    def upscale(self, layer=None):
        """What Run does, on `layer` (default: the chosen one). Returns the started worker, or
        None when the choices cannot work (a notification says why)."""
        from napari.qt.threading import thread_worker
        from napari.utils.notifications import show_error

        if self.running:
            return None
        try:
            request, source, settings = self._request(layer)
        except LdlError as error:
            show_error(f"napari-ldl: {error}")
            self.status.value = str(error)
            return None
        self._cancel.clear()
        worker = thread_worker(run_upscale, start_thread=False)(request, self._cancel, self._relay.progressed.emit)
        worker.yielded.connect(self._show_progress)
        worker.returned.connect(partial(self._done, source, settings))
        worker.finished.connect(self._finished)
        self.worker = worker
        self._set_running(True)
        self.status.value = f"upscaling “{request.name}” …"
        worker.start()
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self._cancel.set()
            self.worker.quit()
            self.status.value = "cancelling …"

    def _request(self, layer):
        if layer is None:
            layer = self.image.value
        if layer is None:
            raise UnsuitableLayer("there is no image layer to upscale; open one (File > Open Sample > napari-ldl has some)")
        layout = plane_layout(layer, self.channel_axis.value if layer is self.image.value else None)
        scale = int(self.scale.value)
        truth = self.ground_truth.value if self.artifact_map.value else None
        if truth is not None:
            expected = layout.output_shape(round(layout.height * scale), round(layout.width * scale))
            if tuple(truth.data.shape) != expected:
                raise UnsuitableLayer(f"ground truth “{truth.name}” is {tuple(truth.data.shape)} "
                                      f"but the result will be {expected}; "
                                      f"pick a layer of that shape, or none for the blind estimate")
        request = UpscaleRequest(layer.data, layout, layer.name, str(self.model.value), scale,
                                 tile=int(self.tile.value), device=str(self.device.value),
                                 normalisation=str(self.intensities.value),
                                 artifact_map=bool(self.artifact_map.value),
                                 ground_truth=None if truth is None else truth.data, backend=str(self.backend.value))
        settings = {"scale": scale, "tile": request.tile, "channel_axis": layout.channel_axis,
                    "ground_truth": None if truth is None else truth.name}
        return request, SourceSnapshot.of(layer), settings

    def _show_progress(self, progress: Progress) -> None:
        if self.worker is None or not isinstance(progress, Progress):
            return
        self.progress.value = round(progress.fraction * _BAR_STEPS)
        if progress.stage == "loading":
            text = "loading the model …"
        elif progress.stage == "measuring":
            text = f"measuring intensities: plane {progress.done}/{progress.total}"
        else:
            text = f"plane {min(progress.done + 1, progress.total)}/{progress.total}"
            if progress.tiles_total > 1:
                text += f", tile {progress.tiles_done}/{progress.tiles_total}"
        self.status.value = text

    def _done(self, source: SourceSnapshot, settings: dict, result: UpscaleResult | Failure | None) -> None:
        from napari.utils.notifications import ErrorNotification, notification_manager

        if result is None:  # cancelled
            return
        if isinstance(result, Failure):
            notification_manager.dispatch(ErrorNotification(result.error))
            self.status.value = str(result.error)
            return
        layers = output_layers(source, result, settings)  # all built before any is added
        for layer in layers:
            self.viewer.layers.append(layer)
        seconds = sum(result.seconds_per_plane)
        self.status.value = f"done: {len(result.seconds_per_plane)} plane(s) in {seconds:.1f} s on {result.device}"

    def _finished(self) -> None:
        if self._cancel.is_set() or self.worker.abort_requested:  # our Cancel, or napari's task manager
            self.status.value = "cancelled; no layers added"
        self.worker = None
        self._set_running(False)
        self.progress.value = 0

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running


def _image_layers(viewer) -> list:
    from napari.layers import Image

    return [layer for layer in viewer.layers if isinstance(layer, Image)]


def apply_values(container: Container, values: dict, title: str) -> None:
    """Set a dock widget's settings by name, as a script calling it does."""
    for name, value in values.items():
        widget = getattr(container, name, None)
        if widget is None or not hasattr(widget, "value"):
            raise TypeError(f"{title} has no setting {name!r}")
        widget.value = value
