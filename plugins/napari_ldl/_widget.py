"""The `Upscale` dock widget: choices in, a worker started, two layers out. It never computes:
the worker (_worker) runs the engine, _layers builds the output layers."""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

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


class UpscaleWidget(QWidget):
    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progressed.connect(self._show_progress)
        self._build()
        self.reset_choices()

    # ---- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        self.layer_box = QComboBox(toolTip="The image layer to upscale (the last two axes are the plane)")
        self.model_box = QComboBox()
        for name, present, description in _models.available_models():
            self.model_box.addItem(name, name)
            item = self.model_box.model().item(self.model_box.count() - 1)
            item.setToolTip(description if present else f"weights not here: {description}")
            item.setEnabled(present)
        self.model_box.setCurrentIndex(max(0, self.model_box.findData(DEFAULT_MODEL)))
        browse = QToolButton(text="…", toolTip="Use a checkpoint file (.pth, .safetensors)")
        browse.clicked.connect(self._browse_checkpoint)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_box, 1)
        model_row.addWidget(browse)
        self.scale_box = QComboBox(toolTip="Output size / input size along y and x")
        for scale in SCALES:
            self.scale_box.addItem(f"×{scale}", scale)
        self.tile_box = QSpinBox(minimum=0, maximum=4096, singleStep=64, value=256, suffix=" px", specialValueText="whole plane",
                                 toolTip="Tile size in input pixels: bounds memory, and Cancel acts between tiles")
        self.device_box = QComboBox()
        for device in _devices():
            self.device_box.addItem(device, device)
        self.normalisation_box = QComboBox(toolTip="How intensities are brought to [0, 1] for the model and back "
                                                   "(auto: 8-bit as is, everything else from its own min/max)")
        for method in METHODS:
            self.normalisation_box.addItem(method, method)
        self.channel_box = QComboBox(toolTip="An axis whose entries are separate channels: each is normalised on its own")
        self.map_check = QCheckBox("artifact map overlay", checked=True)
        self.truth_box = QComboBox(toolTip="A high-resolution layer of the same scene: the artifact map from the truth "
                                           "(the paper's map) instead of the blind estimate")
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.progress_bar = QProgressBar(minimum=0, maximum=_BAR_STEPS, value=0)
        self.status = QLabel("", wordWrap=True)

        form = QFormLayout()
        form.addRow("image", self.layer_box)
        form.addRow("model", model_row)
        form.addRow("scale", self.scale_box)
        form.addRow("tile", self.tile_box)
        form.addRow("device", self.device_box)
        form.addRow("intensities", self.normalisation_box)
        form.addRow("channel axis", self.channel_box)
        form.addRow("", self.map_check)
        form.addRow("ground truth", self.truth_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addLayout(buttons)
        column.addWidget(self.progress_bar)
        column.addWidget(self.status)
        column.addStretch(1)

        self.run_button.clicked.connect(lambda: self.upscale())
        self.cancel_button.clicked.connect(self.cancel)
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.layer_box.currentIndexChanged.connect(self._layer_changed)
        self._model_changed()

    # ---- choices ------------------------------------------------------------------------
    def reset_choices(self, *_) -> None:
        """Refresh the layer lists (napari calls this when layers are added, removed, renamed)."""
        from napari.layers import Image

        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        _refill(self.layer_box, [(name, name) for name in names])
        _refill(self.truth_box, [("(none: blind estimate)", None)] + [(name, name) for name in names])
        self._layer_changed()

    def _layer(self, name: str | None):
        return self.viewer.layers[name] if name is not None and name in self.viewer.layers else None

    def _layer_changed(self, *_) -> None:
        layer = self._layer(self.layer_box.currentData())
        choices = [("none", None)]
        if layer is not None:
            leading = layer.ndim - 2
            labels = tuple(layer.axis_labels)
            choices += [(f"axis {axis} ({labels[axis]}, {layer.data.shape[axis]})", axis) for axis in range(leading)]
        _refill(self.channel_box, choices)

    def _model_changed(self, *_) -> None:
        native = _models.native_scale(str(self.model_box.currentData()))
        if native in SCALES:
            self.scale_box.setCurrentIndex(self.scale_box.findData(native))

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint", "", "Checkpoints (*.pth *.pt *.safetensors *.ckpt)")
        if path:
            self.model_box.addItem(path.rsplit("/", 1)[-1], path)
            self.model_box.setCurrentIndex(self.model_box.count() - 1)

    # ---- running ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

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
            self.status.setText(str(error))
            return None
        self._cancel.clear()
        worker = thread_worker(run_upscale, start_thread=False)(request, self._cancel, self._relay.progressed.emit)
        worker.yielded.connect(self._show_progress)
        worker.returned.connect(partial(self._done, source, settings))
        worker.finished.connect(self._finished)
        self.worker = worker
        self._set_running(True)
        self.status.setText(f"upscaling “{request.name}” …")
        worker.start()
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self._cancel.set()
            self.worker.quit()
            self.status.setText("cancelling …")

    def _request(self, layer):
        if layer is None:
            layer = self._layer(self.layer_box.currentData())
        if layer is None:
            raise UnsuitableLayer("there is no image layer to upscale; open one (File > Open Sample > napari-ldl has some)")
        layout = plane_layout(layer, self.channel_box.currentData() if layer.name == self.layer_box.currentData() else None)
        scale = int(self.scale_box.currentData())
        truth = self._layer(self.truth_box.currentData()) if self.map_check.isChecked() else None
        if truth is not None:
            expected = layout.output_shape(round(layout.height * scale), round(layout.width * scale))
            if tuple(truth.data.shape) != expected:
                raise UnsuitableLayer(f"ground truth “{truth.name}” is {tuple(truth.data.shape)} "
                                      f"but the result will be {expected}; "
                                      f"pick a layer of that shape, or none for the blind estimate")
        request = UpscaleRequest(layer.data, layout, layer.name, str(self.model_box.currentData()), scale,
                                 tile=self.tile_box.value(), device=str(self.device_box.currentData()),
                                 normalisation=str(self.normalisation_box.currentData()),
                                 artifact_map=self.map_check.isChecked(),
                                 ground_truth=None if truth is None else truth.data)
        settings = {"scale": scale, "tile": request.tile, "channel_axis": layout.channel_axis,
                    "ground_truth": None if truth is None else truth.name}
        return request, SourceSnapshot.of(layer), settings

    def _show_progress(self, progress: Progress) -> None:
        if self.worker is None or not isinstance(progress, Progress):
            return
        self.progress_bar.setValue(round(progress.fraction * _BAR_STEPS))
        if progress.stage == "loading":
            text = "loading the model …"
        elif progress.stage == "measuring":
            text = f"measuring intensities: plane {progress.done}/{progress.total}"
        else:
            text = f"plane {min(progress.done + 1, progress.total)}/{progress.total}"
            if progress.tiles_total > 1:
                text += f", tile {progress.tiles_done}/{progress.tiles_total}"
        self.status.setText(text)

    def _done(self, source: SourceSnapshot, settings: dict, result: UpscaleResult | Failure | None) -> None:
        from napari.utils.notifications import ErrorNotification, notification_manager

        if result is None:  # cancelled
            return
        if isinstance(result, Failure):
            notification_manager.dispatch(ErrorNotification(result.error))
            self.status.setText(str(result.error))
            return
        layers = output_layers(source, result, settings)  # all built before any is added
        for layer in layers:
            self.viewer.layers.append(layer)
        seconds = sum(result.seconds_per_plane)
        self.status.setText(f"done: {len(result.seconds_per_plane)} plane(s) in {seconds:.1f} s on {result.device}")

    def _finished(self) -> None:
        if self._cancel.is_set() or self.worker.abort_requested:  # our Cancel, or napari's task manager
            self.status.setText("cancelled; no layers added")
        self.worker = None
        self._set_running(False)
        self.progress_bar.setValue(0)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.cancel()
        super().closeEvent(event)


def _refill(box: QComboBox, items: list[tuple[str, object]]) -> None:
    """Replace a combo box's items, keeping the current choice when it is still there."""
    current = box.currentData()
    box.blockSignals(True)
    box.clear()
    for text, data in items:
        box.addItem(text, data)
    index = box.findData(current) if current is not None else -1
    box.setCurrentIndex(index if index >= 0 else 0 if items else -1)
    box.blockSignals(False)


def _devices() -> list[str]:
    import torch

    return ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
