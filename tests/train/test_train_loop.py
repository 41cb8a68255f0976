"""The training loop on tiny recipes: it learns, resumes exactly, validates, writes what ldl-video
reads, loads VGG weights from a file, and stops cleanly on bad data or diverging losses."""

from __future__ import annotations

import json

import numpy as np
import torch
from conftest import SMOKE, tiny

from ldl_video.archs.vgg import VGG19Features
from ldl_video.images import write_image
from ldl_video.train import train
from ldl_video.train.cli import main


def _log(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_loss_decreases(tmp_path, image_folder):
    overrides = tiny(tmp_path, "learn", f"data.hr={image_folder}", "data.gt_size=48", "data.hflip=false", "data.rotate=false",
                     "data.degradation=bicubic", "discriminator.arch=none", "losses.gan=0", "losses.pixel=1",
                     "losses.pixel_target=gt", "optim.lr_g=2e-3", "train.iterations=40", "train.save_every=1000")
    train(SMOKE, overrides)
    pixel = [row["l_pix"] for row in _log(tmp_path / "runs" / "learn") if "l_pix" in row]
    assert len(pixel) == 40
    assert np.mean(pixel[-5:]) < 0.7 * np.mean(pixel[:5])


def test_resume_equals_uninterrupted(tmp_path, image_folder):
    common = tiny(tmp_path, "x", f"data.hr={image_folder}", "train.save_every=3")  # real-world degradations, queue, GAN
    whole = train(SMOKE, [*common, "name=whole", "train.iterations=8"])
    train(SMOKE, [*common, "name=parts", "train.iterations=5"])  # states at 3 and 5: mid-epoch, queue full
    parts = train(SMOKE, [*common, "name=parts", "train.iterations=8"], resume=True)
    a, b = torch.load(whole, weights_only=True), torch.load(parts, weights_only=True)
    assert set(a) == {"params", "params_ema"}
    for key in a:
        for name, tensor in a[key].items():
            torch.testing.assert_close(b[key][name], tensor, rtol=0, atol=1e-6)
    d_a = torch.load(tmp_path / "runs" / "whole" / "models" / "net_d_latest.pth", weights_only=True)["params"]
    d_b = torch.load(tmp_path / "runs" / "parts" / "models" / "net_d_latest.pth", weights_only=True)["params"]
    assert all(torch.allclose(d_a[k].float(), d_b[k].float(), rtol=0, atol=1e-6) for k in d_a)
    assert sorted(p.name for p in (tmp_path / "runs" / "parts" / "training_states").iterdir()) == ["6.state", "8.state"]


def test_run_folder_and_validation(tmp_path, image_folder):
    train(SMOKE, tiny(tmp_path, "val", f"data.hr={image_folder}", "train.iterations=2", "val.hr=skimage:val",
                      "val.crop=64", "val.max_images=2", "val.every=2", "val.save_images=1"))
    run = tmp_path / "runs" / "val"
    assert (run / "recipe.yaml").is_file() and list((run / "tb").iterdir())
    assert [p.name for p in (run / "samples" / "2").iterdir()] == ["chelsea.png"]
    metrics = [row for row in _log(run) if "val/psnr" in row]
    assert metrics and 5 < metrics[0]["val/psnr"] < 60 and 0 < metrics[0]["val/ssim"] <= 1
    assert 5 < metrics[0]["val/psnr_y"] < 60 and 0 < metrics[0]["val/ssim_y"] <= 1  # the paper's tables: Y channel
    # a new run under the same name keeps the old one aside
    train(SMOKE, tiny(tmp_path, "val", f"data.hr={image_folder}", "train.iterations=1"))
    assert len(list((tmp_path / "runs").glob("val_archived_*"))) == 1


def _tiny_vgg(path):
    net = VGG19Features(["conv5_4"], widths=(4, 4, 8, 8, 8))
    torch.save(net.state_dict(), path)  # torchvision's names: features.N.weight


def test_perceptual_and_relativistic_gan_with_vgg_discriminator(tmp_path, image_folder):
    base = tiny(tmp_path, "percep", f"data.hr={image_folder}", "losses.perceptual=1", "train.iterations=2")
    _tiny_vgg(tmp_path / "vgg.pth")
    extra = [f"losses.vgg_weights={tmp_path / 'vgg.pth'}", "discriminator.arch=vgg128", "data.gt_size=128",
             "losses.gan_type=ragan", "losses.gan=5e-3", "data.degradation=bicubic", "optim.grad_clip=0.5"]
    big = tmp_path / "big"
    big.mkdir()
    for i in range(2):
        write_image(big / f"{i}.png", np.random.default_rng(i).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    train(SMOKE, [*base, *extra, f"data.hr={big}"])
    row = [r for r in _log(tmp_path / "runs" / "percep") if "l_percep" in r][-1]
    assert row["l_percep"] > 0 and "l_d_real" in row and "l_ldl" in row


def test_missing_vgg_weights_say_how_to_get_or_disable(tmp_path, image_folder, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    args = [SMOKE]
    for o in tiny(tmp_path, "novgg", f"data.hr={image_folder}", "losses.perceptual=1"):
        args += ["--set", o]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "vgg19-dcbb9e9d.pth" in err and "losses.perceptual=0" in err


def test_too_small_images_and_empty_folder_are_one_line(tmp_path, capsys):
    small = tmp_path / "small"
    small.mkdir()
    write_image(small / "a.png", np.zeros((1, 20, 3), np.uint8))
    for folder, message in ((small, "needs at least 2 px"), (tmp_path / "nothing", "does not exist")):
        args = [SMOKE]
        for o in tiny(tmp_path, "bad", f"data.hr={folder}"):
            args += ["--set", o]
        assert main(args) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_non_finite_losses_are_skipped_then_stop(tmp_path, capsys):
    import tifffile

    bad = tmp_path / "nan"
    bad.mkdir()
    for i in range(2):
        image = np.random.default_rng(i).random((32, 32, 3)).astype(np.float32)
        image[5, 5, 0] = np.nan
        tifffile.imwrite(bad / f"{i}.tif", image, photometric="rgb")
    args = [SMOKE]
    for o in tiny(tmp_path, "nan", f"data.hr={bad}", "data.degradation=bicubic", "train.max_nan_steps=3", "train.iterations=10"):
        args += ["--set", o]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("step skipped") == 3
    last = err.strip().splitlines()[-1]
    assert "3 non-finite losses in a row" in last and "optim.lr_g" in last


def test_ctrl_c_saves_the_state_and_resume_continues(tmp_path, image_folder):
    import os
    import signal
    import subprocess
    import sys

    args = [sys.executable, "-m", "ldl_video.train", SMOKE]
    for o in tiny(tmp_path, "stop", f"data.hr={image_folder}", "train.iterations=100000", "train.save_every=100000"):
        args += ["--set", o]
    # SIGINT as from a terminal, also where the test runs in the background (an ignored SIGINT is inherited)
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stderr:
        if "iter 3/" in line:
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130
    assert "stopped at iteration" in rest and "--resume" in rest
    states = list((tmp_path / "runs" / "stop" / "training_states").iterdir())
    assert len(states) == 1 and int(states[0].stem) >= 3
    resumed = main([SMOKE, "--resume", *[a for o in tiny(tmp_path, "stop", f"data.hr={image_folder}",
                                                         f"train.iterations={int(states[0].stem) + 1}") for a in ("--set", o)]])
    assert resumed == 0
