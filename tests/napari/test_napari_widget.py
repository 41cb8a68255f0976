"""The Upscale dock widget in a real viewer (under Xvfb): found through the npe2 manifest, runs
off the GUI thread, adds two aligned layers, cancels, and reports bad input as notifications."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import skimage.data
import torch
from napari.utils.notifications import NotificationSeverity
from napari_ldl import _models
from napari_ldl._widget import UpscaleWidget

from ldl_video import SRModel

RUN_TIMEOUT_MS = 120_000  # generous: the machine is shared; nothing here is timed


@pytest.fixture
def viewer_and_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-ldl", "Upscale")
    return viewer, widget


def _choose(widget: UpscaleWidget, layer: str, model: str = "bicubic", scale: int = 2, tile: int = 0, **choices) -> None:
    """Set the choices as a user would pick them in the dock's lists."""
    widget.image.value = widget.viewer.layers[layer]
    widget.model.value = model
    widget.scale.value = scale
    widget.tile.value = tile
    widget.device.value = "cpu"
    if "truth" in choices:
        widget.ground_truth.value = widget.viewer.layers[choices["truth"]]


def _run(qtbot, widget: UpscaleWidget) -> None:
    widget.run_button.native.click()
    assert widget.running
    qtbot.waitUntil(lambda: not widget.running, timeout=RUN_TIMEOUT_MS)


def _stack16() -> np.ndarray:
    """A small 16-bit z-stack in 12 bits, like a fluorescence series."""
    cell = skimage.data.cell()[200:224, 200:232].astype(np.float64)
    return np.stack([100 + cell * 12, 100 + cell[::-1] * 10, 100 + cell * 8]).astype(np.uint16)


def test_16_bit_stack_with_scale_and_translate(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    stack = _stack16()
    source = viewer.add_image(stack, name="stack", scale=(0.5, 0.2, 0.1), translate=(10.0, 5.0, -3.0),
                              contrast_limits=(100, 2500))
    _choose(widget, "stack", "bicubic", scale=2)
    _run(qtbot, widget)

    upscaled, overlay = viewer.layers[-2], viewer.layers[-1]
    assert len(viewer.layers) == 3
    assert upscaled.data.dtype == np.uint16 and upscaled.data.shape == (3, 48, 64)
    assert overlay.data.dtype == np.float32 and overlay.data.shape == (3, 48, 64)
    for layer in (upscaled, overlay):
        np.testing.assert_allclose(layer.scale, (0.5, 0.1, 0.05))
        np.testing.assert_allclose(layer.translate, (10.0, 5.0 - 0.05, -3.0 - 0.025))  # + scale·(1/f − 1)/2
    assert upscaled.blending == source.blending and tuple(upscaled.contrast_limits) == (100, 2500)
    assert overlay.blending == "additive" and overlay.opacity < 1 and tuple(overlay.contrast_limits) == (0, 1)
    assert overlay.colormap.colors[0][3] == 0  # transparent where nothing is suspicious
    # values stay meaningful: the original range, not squeezed into or stretched to 0..65535
    assert stack.min() <= upscaled.data.min() and upscaled.data.max() <= stack.max()
    assert abs(float(upscaled.data.mean()) - float(stack.mean())) < 0.02 * float(stack.mean())
    normalisation = upscaled.metadata["ldl"]["normalisation"]
    assert normalisation["method"] == "min/max" and normalisation["low"] == [float(stack.min())]
    assert overlay.metadata["ldl"]["artifact_map"]["kind"] == "blind"


def test_compact_model_on_rgb_keeps_the_model_between_runs(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    viewer.add_image(skimage.data.astronaut()[100:132, 180:220], name="face", rgb=True)
    _choose(widget, "face", "realesr-animevideov3-x2", scale=2, tile=16)
    _run(qtbot, widget)
    upscaled = viewer.layers[1]
    assert upscaled.rgb and upscaled.data.shape == (64, 80, 3) and upscaled.data.dtype == np.uint8
    assert viewer.layers[2].data.shape == (64, 80)
    hits = _models.cache_info().hits
    viewer.layers.remove(viewer.layers[2])
    viewer.layers.remove(viewer.layers[1])
    _run(qtbot, widget)
    assert _models.cache_info().hits == hits + 1
    assert len(viewer.layers) == 3


def test_ground_truth_layer_gives_the_reference_map(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    truth = skimage.data.moon()[200:264, 200:264]
    viewer.add_image(truth[::2, ::2].copy(), name="small")
    viewer.add_image(truth, name="truth")
    _choose(widget, "small", "bicubic", scale=2, truth="truth")
    _run(qtbot, widget)
    overlay = viewer.layers[-1]
    assert overlay.metadata["ldl"]["artifact_map"]["kind"] == "reference" and overlay.data.shape == (64, 64)


def test_lazy_4d_float_stack_with_a_channel_axis(qtbot, viewer_and_widget):
    import dask.array as da

    viewer, widget = viewer_and_widget
    moon = skimage.data.moon()[240:256, 240:264].astype(np.float32)
    channels = np.stack([moon / 255, 1000 + moon * 4])  # two channels, very different ranges
    data = da.from_array(np.stack([channels, channels[:, ::-1]]), chunks=(1, 1, 16, 24))  # t, c, y, x
    viewer.add_image(data, name="tcyx")
    _choose(widget, "tcyx", "bicubic", scale=2)
    widget.channel_axis.value = 1
    _run(qtbot, widget)
    upscaled = viewer.layers[1]
    assert isinstance(upscaled.data, np.ndarray) and upscaled.data.shape == (2, 2, 32, 48)
    assert upscaled.data.dtype == np.float32
    normalisation = upscaled.metadata["ldl"]["normalisation"]
    assert normalisation["low"] == [float(channels[0].min()), float(channels[1].min())]
    assert upscaled.data[:, 1].min() >= 1000 and upscaled.data[:, 0].max() <= 1


class _GatedNet(torch.nn.Module):
    """×2 nearest-neighbour that waits at its first call until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release, self.calls = threading.Event(), threading.Event(), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.entered.set()
        self.release.wait(timeout=60)
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def test_cancel_stops_within_a_plane_and_adds_nothing(qtbot, viewer_and_widget, monkeypatch):
    viewer, widget = viewer_and_widget
    net = _GatedNet()
    monkeypatch.setattr(_models, "cached_model", lambda *args: SRModel("gated", net, 2, "test", weights=False))
    viewer.add_image(np.zeros((2, 64, 64), np.float32), name="planes")
    _choose(widget, "planes", "bicubic", scale=2, tile=16)
    widget.run_button.native.click()
    try:
        assert net.entered.wait(timeout=60)  # the worker is inside the first tile of plane 1
        widget.cancel_button.native.click()
    finally:
        net.release.set()
    qtbot.waitUntil(lambda: not widget.running, timeout=RUN_TIMEOUT_MS)
    assert net.calls == 1  # stopped after the first batch of tiles, not at the end of the plane
    assert [layer.name for layer in viewer.layers] == ["planes"]
    assert "cancelled" in widget.status.value and widget.run_button.enabled


def test_bad_layers_give_notifications_and_no_layers(qtbot, viewer_and_widget, notifications):
    viewer, widget = viewer_and_widget
    labels = viewer.add_labels(np.zeros((16, 16), np.int32), name="cells")
    assert widget.upscale(labels) is None
    viewer.add_image(np.zeros((1, 1), np.uint8), name="dot")
    _choose(widget, "dot")
    widget.run_button.native.click()
    assert not widget.running
    messages = [n.message for n in notifications if n.severity == NotificationSeverity.ERROR]
    assert any("Labels layer" in m for m in messages) and any("1×1-pixel" in m for m in messages)
    assert [layer.name for layer in viewer.layers] == ["cells", "dot"]


def test_failure_in_the_worker_is_a_notification(qtbot, viewer_and_widget, notifications, tmp_path):
    viewer, widget = viewer_and_widget
    viewer.add_image(np.zeros((16, 16), np.uint8), name="image")
    _choose(widget, "image")
    not_a_checkpoint = tmp_path / "weights.pth"
    not_a_checkpoint.write_text("not a checkpoint")
    widget.model.value = _models.add_checkpoint(not_a_checkpoint)  # what the … button does
    _run(qtbot, widget)
    qtbot.waitUntil(lambda: any(n.severity == NotificationSeverity.ERROR for n in notifications), timeout=10_000)
    (error,) = [n for n in notifications if n.severity == NotificationSeverity.ERROR]
    assert error.message.startswith("napari-ldl: ") and "\n" not in error.message
    assert [layer.name for layer in viewer.layers] == ["image"] and widget.run_button.enabled


def test_sample_stack_opens_and_upscales(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    viewer.open_sample("napari-ldl", "cell_stack_16bit")
    (stack,) = viewer.layers
    assert stack.data.dtype == np.uint16 and stack.ndim == 3
    np.testing.assert_allclose(stack.scale, (0.5, 0.1, 0.1))


def test_models_without_weights_are_greyed_out_until_their_file_arrives(viewer_and_widget, tmp_path, monkeypatch):
    viewer, widget = viewer_and_widget
    monkeypatch.setenv("LDL_MODEL_DIR", str(tmp_path))
    widget.reset_choices()
    items = {widget.model.native.itemData(i): widget.model.native.model().item(i) for i in range(widget.model.native.count())}
    assert items["bicubic"].isEnabled() and items["realesr-animevideov3-x2"].isEnabled()
    assert not items["ldl-rrdb-x4"].isEnabled() and "net_g_DF2K_RRDB+LDL.pth" in items["ldl-rrdb-x4"].toolTip()
    (tmp_path / "net_g_DF2K_RRDB+LDL.pth").write_bytes(b"")  # the user drops the official file in the model folder
    widget.reset_choices()
    index = widget.model.native.findData("ldl-rrdb-x4")
    assert widget.model.native.model().item(index).isEnabled()


def test_widget_is_scriptable_like_a_magicgui_function(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    layer = viewer.add_image(skimage.data.moon()[:24, :32], name="moon")
    assert tuple(widget.backend.choices[:2]) == ("auto", "torch")  # tensorrt only where it can run
    worker = widget(image=layer, model="realesr-animevideov3-x2", scale=2, tile=0, device="cpu", artifact_map=False,
                    backend="torch")
    assert worker is not None
    qtbot.waitUntil(lambda: not widget.running, timeout=RUN_TIMEOUT_MS)
    assert viewer.layers[0].name == "moon" and len(viewer.layers) == 2
    assert viewer.layers[1].data.shape == (48, 64) and viewer.layers[1].metadata["ldl"]["backend"] == "torch"
    with pytest.raises(TypeError, match="no setting 'colour'"):
        widget(colour="red")
