"""napari-ldl: super-resolution of napari image layers with the ldl-video engine, plus an
artifact-map overlay that shows where the result is likely invented rather than recovered, and
fine-tuning a model on the open layers.

Rooms: `_widget` (the Upscale dock widget, magicgui: choices in, layers out, never computes),
`_worker` (the thread that runs the engine plane by plane), `_finetune` (the Fine-tune dock
widget), `_finetune_worker` (the engine's trainer in a thread), `_finetune_data` (layers as
training planes, the microscope degradation), `_plot` (the loss curve), `_planes` (which axes
are planes, colour, channels), `_intensity` (normalisation to [0, 1] and back), `_layers` (output
layers and their world alignment), `_models` (the model cache and the shared model list),
`_samples` (File > Open Sample).
Importing this package imports neither Qt nor torch.
"""

__version__ = "0.1.0"
