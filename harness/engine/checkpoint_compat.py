"""Make mmengine checkpoints loadable under torch's ``weights_only=True`` default (torch >= 2.6).

mmengine saves its message hub (``HistoryBuffer``), numpy scalars/arrays and ``OrderedDict`` in the
checkpoint ``meta``; ``torch.load`` refuses them unless they are allow-listed. We allow-list exactly
those types instead of turning ``weights_only`` off.
"""
from __future__ import annotations

import collections

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

_SAFE = [HistoryBuffer, collections.OrderedDict, collections.defaultdict, np.ndarray, np.dtype]
try:  # numpy >= 2 moved the reconstruct helper
    from numpy._core.multiarray import _reconstruct, scalar
    _SAFE += [_reconstruct, scalar]
except Exception:  # pragma: no cover
    pass
_SAFE += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
torch.serialization.add_safe_globals([s for s in _SAFE if s is not None])
