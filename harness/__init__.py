"""TIPR benchmark harness: datasets, shared encoders, evaluation and a method plugin interface."""
__version__ = "0.1.0"
