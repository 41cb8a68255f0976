"""ldl-video: LDL super-resolution for video, VapourSynth and napari, from one engine."""

from .artifacts import blind_artifact_map, reference_artifact_map
from .checkpoints import save_checkpoint
from .errors import LdlError
from .ldl import artifact_map, ldl_loss
from .model import SRModel
from .upscaler import Upscaler
from .zoo import DEFAULT_MODEL, ZOO, load_model, model_dir

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL", "LdlError", "SRModel", "Upscaler", "ZOO", "artifact_map", "blind_artifact_map",
    "ldl_loss", "load_model", "model_dir", "reference_artifact_map", "save_checkpoint",
]
