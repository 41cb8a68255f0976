"""python -m ldl_video.train RECIPE.yaml, and torchrun --nproc-per-node=N -m ldl_video.train RECIPE.yaml."""

import sys

from .cli import main

sys.exit(main())
