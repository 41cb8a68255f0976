"""Video front end: PyAV reader, writer and the streaming decode -> upscale -> encode pipeline."""

from .run import upscale_video

__all__ = ["upscale_video"]
