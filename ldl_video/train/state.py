"""What a run leaves in runs/<name>/:

    models/net_g_<iter>.pth, net_g_latest.pth   {"params": ..., "params_ema": ...}  (ldl-video -m takes them)
    models/net_d_<iter>.pth, net_d_latest.pth   {"params": ...}
    training_states/<iter>.state                everything a resumed run needs to continue exactly
    recipe.yaml, log.jsonl, tb/, samples/<iter>/

Every file is written to a temporary name and renamed, so a crash never leaves half a file, and
all are read back with torch.load(weights_only=True).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch
from torch import nn

from ..errors import LdlError

STATE_SUFFIX = ".state"


def _atomic_save(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(obj, tmp)
    tmp.replace(path)


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def save_networks(run_dir: Path, iteration: int, net_g: nn.Module, net_g_ema: nn.Module, net_d: nn.Module | None) -> Path:
    models = run_dir / "models"
    generator = {"params": _cpu(net_g.state_dict()), "params_ema": _cpu(net_g_ema.state_dict())}
    _atomic_save(generator, models / f"net_g_{iteration}.pth")
    _atomic_save(generator, models / "net_g_latest.pth")
    if net_d is not None:
        _atomic_save({"params": _cpu(net_d.state_dict())}, models / f"net_d_{iteration}.pth")
        _atomic_save({"params": _cpu(net_d.state_dict())}, models / "net_d_latest.pth")
    return models / "net_g_latest.pth"


def save_state(run_dir: Path, iteration: int, state: dict, keep: int) -> Path:
    states = run_dir / "training_states"
    path = states / f"{iteration}{STATE_SUFFIX}"
    _atomic_save(state, path)
    ours = [p for p in states.glob(f"*{STATE_SUFFIX}") if _iteration(p) >= 0]  # a user's own files stay
    for old in sorted(ours, key=_iteration)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def _iteration(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        return -1


def latest_state(run_dir: Path) -> Path | None:
    found = [p for p in (run_dir / "training_states").glob(f"*{STATE_SUFFIX}") if _iteration(p) >= 0]
    return max(found, key=_iteration) if found else None


def load_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise LdlError(f"cannot read the training state {path} ({type(exc).__name__}); "
                       "delete it to resume from the one before") from None


def archive_run(run_dir: Path) -> Path | None:
    """A new run under a used name: move the old one aside, as BasicSR does."""
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return None
    target = run_dir.with_name(f"{run_dir.name}_archived_{time.strftime('%Y%m%d_%H%M%S')}")
    shutil.move(str(run_dir), str(target))
    return target
