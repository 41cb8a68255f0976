"""The Fine-tune dock widget in a real viewer (under Xvfb): it trains the engine's trainer on
the open layers, previews, cancels keeping the weights, writes a checkpoint that the engine,
BasicSR-style loaders and the Upscale widget take, and reports held-out scores that agree with
scikit-image's metrics. Plus the data side: the microscope degradation against SciPy, and the
×4 -> ×2 compact fold against pooling the ×4 output."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import skimage.measure
import skimage.metrics
import skimage.transform
import torch
from napari.utils.notifications import NotificationSeverity
from napari_ldl import _models
from napari_ldl._finetune_data import Microscope, microscope_lr

import ldl_video

RUN_TIMEOUT_MS = 240_000  # generous: the machine is shared; nothing here is timed
START = "realesr-animevideov3-x2"


@pytest.fixture
def docked(make_napari_viewer):
    viewer = make_napari_viewer()
    _, upscale = viewer.window.add_plugin_dock_widget("napari-ldl", "Upscale")
    _, finetune = viewer.window.add_plugin_dock_widget("napari-ldl", "Fine-tune")
    return viewer, upscale, finetune


def _cells16() -> np.ndarray:
    """A 16-bit z-stack of three 64×64 planes in 12 bits, and a fourth plane kept apart."""
    cell = skimage.data.cell().astype(np.float64)
    planes = [cell[i * 64 : i * 64 + 64, 100:164] for i in range(4)]
    return (100 + np.stack(planes) * 14).astype(np.uint16)


def _settings(tmp_path, **extra) -> dict:
    return dict(model=START, scale=2, device="cpu", patch=32, batch=2, folder=str(tmp_path), **extra)


def test_finetune_trains_previews_saves_and_feeds_upscale(qtbot, docked, tmp_path, notifications):
    viewer, upscale, finetune = docked
    cells = _cells16()
    stack = viewer.add_image(cells[:3], name="stack", scale=(0.5, 0.2, 0.2))
    held = viewer.add_image(cells[3], name="held", scale=(0.2, 0.2), translate=(4.0, 2.0))
    previews = []
    finetune(images=[stack], held_out=held, steps=12, preview_every=4, **_settings(tmp_path))
    assert finetune.running
    viewer.layers.events.inserted.connect(lambda event: previews.append(event.value.name))
    qtbot.waitUntil(lambda: not finetune.running, timeout=RUN_TIMEOUT_MS)
    result = finetune.last_result
    assert result is not None and result.steps == 12 and not result.stopped_early

    # one preview layer and its artifact overlay, replaced in place, on top of the held-out plane they
    # restore (made from its LR); the overlay fades as the model learns the specimen
    assert previews == ["held fine-tune preview", "held fine-tune artifact map"]
    preview, overlay = viewer.layers["held fine-tune preview"], viewer.layers["held fine-tune artifact map"]
    for layer in (preview, overlay):
        assert layer.data.shape == (64, 64)
        np.testing.assert_allclose(layer.scale, (0.2, 0.2))
        np.testing.assert_allclose(layer.data_to_world((-0.5, -0.5)), held.data_to_world((-0.5, -0.5)))
    np.testing.assert_allclose(preview.data, result.preview.mean(axis=-1))
    np.testing.assert_array_equal(overlay.data, result.preview_artifacts)
    assert overlay.blending == "additive" and overlay.colormap.colors[0][3] == 0
    assert result.after.artifacts < result.before.artifacts == pytest.approx(float(np.mean(_start_overlay(result))))

    # the scores shown are scikit-image's PSNR and SSIM of the held-out results, and training helped
    for scores, outputs in ((result.before, result.outputs_before), (result.after, result.outputs_after)):
        (out,), (target,) = outputs, result.targets
        assert scores.psnr == pytest.approx(skimage.metrics.peak_signal_noise_ratio(target, out, data_range=1.0), abs=1e-3)
        eight = [np.round(np.clip(x, 0, 1) * 255) for x in (out, target)]
        reference = skimage.metrics.structural_similarity(*eight, data_range=255, channel_axis=-1, gaussian_weights=True,
                                                          sigma=1.5, use_sample_covariance=False)
        assert scores.ssim == pytest.approx(reference, abs=2e-3)
    assert result.after.psnr > result.before.psnr
    assert f"{result.before.psnr:.2f} → {result.after.psnr:.2f} dB" in finetune.scores.value
    assert f"artifact map {result.before.artifacts:.3f} → {result.after.artifacts:.3f}" in finetune.scores.value

    # the checkpoint: in the chosen folder, BasicSR layout, the final EMA weights, named in a notification
    path = result.checkpoint
    assert path.parent == tmp_path and path.suffix == ".pth"
    state = torch.load(path, weights_only=True)
    assert list(state) == ["params_ema"] and "body.0.weight" in state["params_ema"]
    model = ldl_video.load_model(str(path))
    assert model.scale == 2
    lr = torch.from_numpy(_lr_of(result)).permute(2, 0, 1)[None]
    with torch.no_grad():
        again = model.net(lr).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(again, result.outputs_after[0], atol=1e-5)
    assert any(str(path) in n.message for n in notifications if n.severity == NotificationSeverity.INFO)

    # ... and is in the Upscale widget's model list at once, ready to run
    assert str(path) in [value for _, value in _combo_items(upscale.model)]
    upscale.image.value = held
    upscale.model.value = str(path)
    upscale.device.value = "cpu"
    before = len(viewer.layers)
    upscale.run_button.native.click()
    qtbot.waitUntil(lambda: not upscale.running, timeout=RUN_TIMEOUT_MS)
    assert len(viewer.layers) == before + 2 and viewer.layers[before].data.shape == (128, 128)


def _start_overlay(result) -> np.ndarray:
    """The overlay of the starting model's held-out result, recomputed from its output."""
    from napari_ldl._finetune_worker import overlay

    lr = torch.from_numpy(_lr_of(result)).permute(2, 0, 1)[None]
    return overlay(result.outputs_before[0], result.targets[0], lr)


def _lr_of(result) -> np.ndarray:
    """The held-out LR the run scored on, made again the way the worker makes it."""
    from napari_ldl._finetune_data import make_lr
    from napari_ldl._finetune_worker import HELD_OUT_SEED

    gt = torch.from_numpy(result.targets[0]).permute(2, 0, 1)[None]
    return make_lr(gt, 2, "microscope", Microscope(), HELD_OUT_SEED)[0].permute(1, 2, 0).numpy()


def _combo_items(combo) -> list[tuple[str, object]]:
    native = combo.native
    return [(native.itemText(i), native.itemData(i)) for i in range(native.count())]


def test_cancel_keeps_the_weights_so_far(qtbot, docked, tmp_path):
    viewer, _, finetune = docked
    stack = viewer.add_image(_cells16()[:2], name="stack")
    finetune(images=[stack], steps=100_000, preview_every=1000, **_settings(tmp_path))
    qtbot.waitUntil(lambda: finetune.progress.value >= 3, timeout=RUN_TIMEOUT_MS)
    finetune.cancel_button.native.click()
    qtbot.waitUntil(lambda: not finetune.running, timeout=RUN_TIMEOUT_MS)
    result = finetune.last_result
    assert result.stopped_early and 3 <= result.steps < 100_000
    assert "stopped at step" in finetune.status.value and finetune.run_button.enabled
    start = ldl_video.load_model(START)
    tuned = ldl_video.load_model(str(result.checkpoint))  # the weights of the last step, not the start
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        shrunk = torch.nn.functional.avg_pool2d(ldl_video.load_model("realesr-animevideov3-x4").net(x), 2)
        assert not torch.allclose(tuned.net(x), shrunk, atol=1e-4)
        assert not torch.allclose(tuned.net(x), start.net(x), atol=1e-4)
    assert viewer.layers["stack fine-tune preview"].data.shape == (64, 64)  # the first plane, ×2


def test_time_budget_stops_the_run_and_sizes_the_ema_to_it(qtbot, docked, tmp_path):
    from napari_ldl._finetune_worker import ema_decay_for

    viewer, _, finetune = docked
    stack = viewer.add_image(_cells16()[:1], name="one")
    finetune(images=[stack], steps=100_000, minutes=0.1, **_settings(tmp_path))
    qtbot.waitUntil(lambda: not finetune.running, timeout=RUN_TIMEOUT_MS)
    result = finetune.last_result
    assert result.stopped_early and result.steps < 100_000  # the budget, not the step count, ended it
    # a half-life of about a tenth of the steps reached, not of the 100 000 asked for; the steps are
    # foreseen from the speed of the first ten, which a shared machine varies, hence the factor 4
    assert result.ema_decay < ema_decay_for(100_000)
    assert ema_decay_for(result.steps // 4) <= result.ema_decay <= ema_decay_for(result.steps * 4)


def test_napari_task_manager_abort_stops_like_cancel(qtbot, docked, tmp_path):
    viewer, _, finetune = docked
    stack = viewer.add_image(_cells16()[:1], name="one")
    worker = finetune(images=[stack], steps=100_000, minutes=0, **_settings(tmp_path))
    qtbot.waitUntil(lambda: finetune.progress.value >= 2, timeout=RUN_TIMEOUT_MS)
    worker.quit()  # what napari's activity dock and quitting the app do
    qtbot.waitUntil(lambda: not finetune.running, timeout=RUN_TIMEOUT_MS)
    assert finetune.last_result.stopped_early and finetune.last_result.checkpoint.is_file()


def test_bad_choices_are_notifications(qtbot, docked, tmp_path, notifications):
    viewer, _, finetune = docked
    assert finetune(images=[], **_settings(tmp_path)) is None
    tiny = viewer.add_image(np.zeros((16, 16), np.uint8), name="tiny")
    assert finetune(images=[tiny], **_settings(tmp_path)) is None
    viewer.add_image(np.zeros((64, 64), np.uint8), name="ok")
    assert finetune(images=[viewer.layers["ok"]], lr_from="paired", **_settings(tmp_path)) is None
    messages = [n.message for n in notifications if n.severity == NotificationSeverity.ERROR]
    assert any("choose one or more" in m for m in messages)
    assert any("smaller than the 32 px patch" in m for m in messages)
    assert any("paired LR" in m for m in messages)
    assert not finetune.running and list(tmp_path.iterdir()) == []


# ---- the data side -------------------------------------------------------------------------

def test_microscope_lr_is_psf_blur_then_binning_then_shot_noise():
    hr = skimage.data.camera()[100:164, 100:164].astype(np.float32) / 255
    gt = torch.from_numpy(hr)[None, None].expand(1, 3, -1, -1)
    sigma = 1.3
    quiet = Microscope(sigma=(sigma, sigma), photons=(1e9, 1e9), read_noise=0.0)
    lr = microscope_lr(gt, 2, quiet, torch.Generator().manual_seed(0))[0, 0].numpy()
    blurred = scipy.ndimage.gaussian_filter(hr.astype(np.float64), sigma, mode="mirror", truncate=np.ceil(3 * sigma) / sigma)
    np.testing.assert_allclose(lr, skimage.measure.block_reduce(blurred, 2, np.mean), atol=2e-4)

    flat = torch.full((1, 3, 256, 256), 0.5)
    photons = 400.0
    noisy = microscope_lr(flat, 2, Microscope(sigma=(1, 1), photons=(photons, photons), read_noise=0.0),
                          torch.Generator().manual_seed(1))
    assert torch.equal(noisy[:, 0], noisy[:, 2])  # gray stays gray
    assert float(noisy.var()) == pytest.approx(0.5 / photons, rel=0.1)  # Poisson: variance = mean / photons


def test_compact_x4_folds_into_an_exact_x2():
    from ldl_video.train.models import generator_from_init

    net, description, _ = generator_from_init(START, 2)
    x4 = ldl_video.load_model("realesr-animevideov3-x4").net
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        np.testing.assert_allclose(net.eval()(x).numpy(), torch.nn.functional.avg_pool2d(x4(x), 2).numpy(), atol=1e-5)
    assert net.upscale == 2 and "×2" in description


def test_checkpoint_labels_join_the_lists(tmp_path):
    path = tmp_path / "mine.pth"
    path.write_bytes(b"")
    value = _models.add_checkpoint(path)
    assert ("mine.pth", value) in [(r[0], r[1]) for r in _models.model_choices(trainable=True)]
    assert _models.add_checkpoint(path) == value == str(path.resolve())
    assert [r[1] for r in _models.model_choices()].count(value) == 1  # listed once


@pytest.mark.parametrize("lr_from", ["bicubic", "real-world", "paired"])
def test_every_way_of_making_lr_trains(tmp_path, lr_from):
    import threading

    from napari_ldl._finetune_worker import FineTuneRequest, run_finetune

    hr = skimage.data.camera()[:64, :96].astype(np.float32) / 255
    hr3 = np.repeat(hr[..., None], 3, axis=-1)
    lr = skimage.transform.resize(hr3, (32, 48), order=3, anti_aliasing=True).astype(np.float32)  # another library's LR
    paired = lr_from == "paired"
    dark = lr * 0.5  # a held-out LR no degradation of the HR would make
    request = FineTuneRequest([hr3], [hr3], START, 2, tmp_path, lr_from=lr_from, paired=[lr] if paired else None,
                              held_out_lr=[dark] if paired else None, steps=2, patch=32, batch=2, device="cpu")
    result = run_finetune(request, threading.Event())
    assert result.steps == 2 and ldl_video.load_model(str(result.checkpoint)).scale == 2
    assert result.outputs_after[0].shape == (64, 96, 3)
    if paired:  # scored on the given LR, not on one made here
        from ldl_video.train.models import generator_from_init

        with torch.no_grad():
            start = generator_from_init(START, 2)[0].eval()(torch.from_numpy(dark).permute(2, 0, 1)[None])
        expected = skimage.metrics.peak_signal_noise_ratio(hr3, start.clamp(0, 1)[0].permute(1, 2, 0).numpy(), data_range=1.0)
        assert result.before.psnr == pytest.approx(expected, abs=1e-3)


def test_rgb_layers_train_and_preview_in_colour(qtbot, docked, tmp_path):
    viewer, _, finetune = docked
    photo = viewer.add_image(skimage.data.astronaut()[:64, :80], name="photo", rgb=True)
    finetune(images=[photo], steps=2, lr_from="bicubic", **_settings(tmp_path))
    qtbot.waitUntil(lambda: not finetune.running, timeout=RUN_TIMEOUT_MS)
    preview = viewer.layers["photo fine-tune preview"]
    assert preview.rgb and preview.data.shape == (64, 80, 3)
    # the start model on a bicubic LR of a photograph already looks like it: the preview is close
    assert skimage.metrics.peak_signal_noise_ratio(photo.data / 255, preview.data, data_range=1.0) > 20


def test_checkpoints_fine_tuned_in_earlier_sessions_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("LDL_MODEL_DIR", str(tmp_path))
    (tmp_path / "finetuned").mkdir()
    (tmp_path / "finetuned" / "yesterday.pth").write_bytes(b"")
    (tmp_path / "finetuned" / "notes.txt").write_text("not a model")
    rows = {label: value for label, value, *_ in _models.model_choices()}
    assert rows["yesterday.pth"] == str((tmp_path / "finetuned" / "yesterday.pth").resolve())
    assert "notes.txt" not in rows
