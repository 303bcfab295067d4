"""Make mmengine checkpoints loadable under torch's ``weights_only=True`` default (torch >= 2.6).

mmengine pickles its message hub, whose ``HistoryBuffer`` objects carry bound methods (pickled via
``getattr``, which must never be allow-listed). We register a ``copyreg`` reducer that saves a
buffer as plain float lists, then allow-list only ``HistoryBuffer`` itself and the numpy types
that appear in runtime info; ``weights_only`` stays on.
"""
from __future__ import annotations

import collections
import copyreg

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


def _reduce_history_buffer(buf: HistoryBuffer):
    logs = [float(x) for x in np.asarray(buf._log_history).ravel()]
    counts = [float(x) for x in np.asarray(buf._count_history).ravel()]
    return HistoryBuffer, (logs, counts, buf.max_length)


copyreg.pickle(HistoryBuffer, _reduce_history_buffer)

_SAFE = [HistoryBuffer, collections.OrderedDict, collections.defaultdict, np.ndarray, np.dtype]
try:  # numpy >= 2 location of the array/scalar reconstruct helpers
    from numpy._core.multiarray import _reconstruct, scalar
    _SAFE += [_reconstruct, scalar]
except Exception:  # pragma: no cover
    pass
_SAFE += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
torch.serialization.add_safe_globals(_SAFE)
