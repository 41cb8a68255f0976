"""napari-ldl: super-resolution of napari image layers with the ldl-video engine, plus an
artifact-map overlay that shows where the result is likely invented rather than recovered.

Rooms: `_widget` (the dock widget: choices in, layers out, never computes), `_worker` (the
thread that runs the engine plane by plane), `_planes` (which axes are planes, colour,
channels), `_intensity` (normalisation to [0, 1] and back), `_layers` (output layers and their
world alignment), `_models` (the model cache), `_samples` (File > Open Sample).
Importing this package imports neither Qt nor torch.
"""

__version__ = "0.1.0"
