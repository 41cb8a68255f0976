"""The VapourSynth front end: `core.ldl.Upscale` and `core.ldl.ArtifactMap`.

plugin.c is a small native VapourSynth plugin, installed into `vapoursynth/plugins/` so that
every core autoloads it. It registers what `_bridge.functions()` declares and hands each frame's
planes to the filter objects that `_bridge.create()` builds (filters.py). Nothing here is
imported by ldl_video; VapourSynth itself is never imported by this package either, so the
plugin works the same in a Python session and under vspipe.
"""
