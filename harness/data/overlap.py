"""Images and identities shared between splits: a test identity seen in training inflates every metric."""
from __future__ import annotations

from itertools import combinations

from ..errors import DataError
from .splits import SPLITS, Splits


def split_overlaps(splits: Splits) -> dict[str, dict[str, list]]:
    """``{"ids": {"train/test": [pid, ...]}, "images": {"train/test": [path, ...]}}``, non-empty pairs only."""
    ids = {s: {r.pid for r in splits.split(s)} for s in SPLITS}
    paths = {s: {r.path for r in splits.split(s)} for s in SPLITS}
    out: dict[str, dict[str, list]] = {"ids": {}, "images": {}}
    for a, b in combinations(SPLITS, 2):
        if shared := sorted(ids[a] & ids[b]):
            out["ids"][f"{a}/{b}"] = shared
        if shared := sorted(paths[a] & paths[b]):
            out["images"][f"{a}/{b}"] = shared
    return out


def check_split_overlap(splits: Splits) -> None:
    """Refuse to train when an identity is in both the train and the test split; one line naming one."""
    test_ids = {r.pid for r in splits.test}
    shared = sorted({r.pid for r in splits.train} & test_ids)
    if not shared:
        return
    pid = shared[0]
    train_img = next(r.path for r in splits.train if r.pid == pid)
    test_img = next(r.path for r in splits.test if r.pid == pid)
    more = f" ({len(shared) - 1} more such identities)" if len(shared) > 1 else ""
    raise DataError(f"{splits.annotation_file}: identity {pid} is in both the train split (e.g. {train_img}) and "
                    f"the test split (e.g. {test_img}){more}; test identities must be unseen in training, so fix "
                    f"the 'split' fields (`harness data verify` lists every shared identity)")
