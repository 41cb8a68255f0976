"""LDL training: a typed recipe (config), data and degradations, losses, one loop, DDP set-up.

    from ldl_video.train import load_config, train
    train("training/smoke.yaml", ["train.iterations=50"])
"""

from .cli import train
from .config import Config, load_config

__all__ = ["Config", "load_config", "train"]
