"""Two processes under torchrun (gloo on the CPU): one set of files, written by rank 0, and the
two ranks' data shares and degradation streams both in the resume state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import SMOKE, tiny


def test_two_process_torchrun(tmp_path, image_folder):
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "ldl_video.train", SMOKE]
    for override in tiny(tmp_path, "ddp", f"data.hr={image_folder}", "train.iterations=3", "val.hr=skimage:val",
                         "val.crop=64", "val.max_images=1", "val.every=3"):
        args += ["--set", override]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=Path(SMOKE).parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "batch 2 × 2 process(es)" in done.stderr
    assert done.stderr.count("finished at iteration 3") == 1  # only rank 0 speaks
    run = tmp_path / "runs" / "ddp"
    checkpoint = torch.load(run / "models" / "net_g_latest.pth", weights_only=True)
    assert set(checkpoint) == {"params", "params_ema"}
    state = torch.load(run / "training_states" / "3.state", weights_only=True)
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    assert not torch.equal(state["ranks"][0]["degrader"]["params"], state["ranks"][1]["degrader"]["params"])
    assert [p.name for p in (run / "samples" / "3").iterdir()] == ["chelsea.png"]
