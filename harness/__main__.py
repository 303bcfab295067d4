"""``python -m harness`` (also what ``torchrun -m harness run ... --launcher pytorch`` starts)."""
import sys

from .cli import main

sys.exit(main())
