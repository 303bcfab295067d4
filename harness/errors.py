"""Error types that name the file and field at fault, so the CLI can print one clear line."""


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception's message folded onto one line (cut at ``limit`` characters), or its type's name."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


class HarnessError(Exception):
    """Base class for errors the CLI reports without a traceback (exit code 2)."""


class DataError(HarnessError):
    """A dataset that cannot be used as given (annotation, image, root, split overlap, too few identities);
    the message names the file and says what to do."""


class AnnotationError(DataError):
    """A dataset annotation file is malformed; names the file, the record and the field."""

    def __init__(self, path, message, index=None, field=None):
        where = str(path)
        if index is not None:
            where += f" [record {index}]"
        if field is not None:
            where += f" field '{field}'"
        super().__init__(f"{where}: {message}")
        self.path, self.index, self.field = path, index, field


class ImageError(DataError):
    """An image is missing or cannot be decoded."""


class UnknownNameError(HarnessError):
    """A method, dataset or encoder name that no registry knows."""

    def __init__(self, kind, name, available):
        names = ", ".join(sorted(available)) or "(none)"
        super().__init__(f"unknown {kind} '{name}'; available: {names}")


class ConfigError(HarnessError):
    """A config key that the target does not accept, or a missing required key."""


class TrainingDivergedError(HarnessError):
    """Loss became NaN or infinite; the run is stopped before anything is written to the results store."""


class CheckpointError(HarnessError):
    """A checkpoint, ``last_checkpoint`` or ``harness_config.json`` that cannot be used (missing, truncated,
    damaged, another architecture); the message names the file."""


class OutputError(HarnessError):
    """An output folder (results store, work dir, cache, leaderboard) that cannot be written, or has no room."""


class NonFiniteScoresError(HarnessError, ValueError):
    """Features or similarities that are NaN or infinite (a diverged model): nothing is ranked or stored.
    Also a ``ValueError``, which is what callers of the ranking code caught before it was typed."""
