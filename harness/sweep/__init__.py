"""``harness sweep``: the benchmark grid as submitit jobs (local or SLURM), resumable and skip-finished."""
from .folder import SweepFolder, default_name, latest_sweep  # noqa: F401
from .grid import JobSpec, expand_grid, finished_records  # noqa: F401
from .options import JobResources, build_resources  # noqa: F401
