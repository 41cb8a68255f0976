"""Shared set-up for the training tests: tiny recipes that run in seconds on one CPU thread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# a compact generator, small crops and a short queue; every test adds what it exercises
TINY = [
    "device=cpu", "train.threads=1", "generator.arch=srvgg", "generator.num_feat=8", "generator.num_block=2",
    "discriminator.num_feat=8", "data.gt_size=32", "data.batch_size=2", "data.num_workers=0",
    "degradation.queue_size=4", "degradation.source_size=48", "losses.perceptual=0", "train.log_every=1", "val.hr=[]",
]

SMOKE = str(Path(__file__).resolve().parents[2] / "training" / "smoke.yaml")


def tiny(tmp_path: Path, name: str, *extra: str) -> list[str]:
    """Overrides for a tiny run written to tmp_path/runs/<name>."""
    return [*TINY, f"runs_dir={tmp_path / 'runs'}", f"name={name}", *extra]


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Six 8-bit RGB PNGs of 48×48 with edges and texture."""
    from ldl_video.images import write_image

    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48]
    for i in range(6):
        base = (np.sin(xx / (2 + i)) + np.cos(yy / (3 + i))) * 60 + 128
        image = np.stack([base, np.roll(base, i, 0), base.T], -1) + rng.normal(0, 8, (48, 48, 3))
        write_image(folder / f"img{i}.png", np.clip(image, 0, 255).astype(np.uint8))
    return folder
