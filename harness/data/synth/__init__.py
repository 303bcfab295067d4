"""The built-in procedural pedestrian dataset (``synth``): runs everywhere with nothing downloaded."""
from .build import SynthPEDES, build_synth  # noqa: F401
