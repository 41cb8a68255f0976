"""Two processes under torchrun (gloo on the CPU): one set of files, written by rank 0, both
ranks' degradation streams in the resume state, and a resumed run equal to an uninterrupted one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import SMOKE, tiny


def _torchrun(tmp_path, image_folder, name: str, *extra: str, resume: bool = False) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "ldl_video.train", SMOKE]
    for override in tiny(tmp_path, name, f"data.hr={image_folder}", "train.save_every=2", *extra):
        args += ["--set", override]
    args += ["--resume"] if resume else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=Path(SMOKE).parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_process_torchrun_and_exact_resume(tmp_path, image_folder):
    done = _torchrun(tmp_path, image_folder, "whole", "train.iterations=4", "val.hr=skimage:val", "val.crop=64",
                     "val.max_images=1", "val.every=4")
    assert "batch 2 × 2 process(es)" in done.stderr
    assert done.stderr.count("finished at iteration 4") == 1  # only rank 0 speaks
    run = tmp_path / "runs" / "whole"
    state = torch.load(run / "training_states" / "4.state", weights_only=True)
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    assert not torch.equal(state["ranks"][0]["degrader"]["params"], state["ranks"][1]["degrader"]["params"])
    assert [p.name for p in (run / "samples" / "4").iterdir()] == ["chelsea.png"]

    _torchrun(tmp_path, image_folder, "parts", "train.iterations=2")
    _torchrun(tmp_path, image_folder, "parts", "train.iterations=4", resume=True)
    whole = torch.load(run / "models" / "net_g_latest.pth", weights_only=True)
    parts = torch.load(tmp_path / "runs" / "parts" / "models" / "net_g_latest.pth", weights_only=True)
    assert set(whole) == {"params", "params_ema"}
    for key in whole:
        for name, tensor in whole[key].items():
            torch.testing.assert_close(parts[key][name], tensor, rtol=0, atol=1e-6)
