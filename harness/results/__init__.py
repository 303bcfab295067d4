"""The results store: one atomically written folder per (run, evaluation set)."""
from .store import ResultsStore  # noqa: F401
