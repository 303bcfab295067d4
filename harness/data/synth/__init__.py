"""The built-in procedural pedestrian dataset (``synth``): runs everywhere with nothing downloaded."""
from .generate import SynthPEDES, build_synth  # noqa: F401
