"""Training samplers. ``identity`` is the P x K sampler (K captions per identity, groups shuffled)
that IVT and many TIPR methods train with; losses that treat every same-identity pair as positive
(CMPM, SDM) need it to see positives beyond the diagonal."""
from __future__ import annotations

import math
from collections import defaultdict

import torch
from mmengine.dist import get_dist_info
from torch.utils.data import Sampler


class IdentitySampler(Sampler):
    """Each epoch: per identity, shuffle its items and cut them into groups of ``num_instances``
    (identities with fewer items are topped up by resampling; a remainder shorter than K is dropped),
    then shuffle the groups. Deterministic in (seed, epoch); under DDP every rank takes whole groups."""

    def __init__(self, dataset, num_instances: int = 4, seed: int | None = None):
        if num_instances < 1:
            raise ValueError("num_instances must be >= 1")
        self.k, self.seed, self.epoch = num_instances, int(seed or 0), 0
        self.rank, self.world = get_dist_info()
        self.by_pid = defaultdict(list)
        for i, pid in enumerate(dataset.item_pids):
            self.by_pid[pid].append(i)
        self.num_groups = sum(max(1, len(v) // self.k) for v in self.by_pid.values())
        self.per_rank = math.ceil(self.num_groups / self.world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        groups = []
        for pid in sorted(self.by_pid):
            idx = self.by_pid[pid]
            idx = [idx[i] for i in torch.randperm(len(idx), generator=g).tolist()]
            if len(idx) < self.k:
                idx += [idx[i] for i in torch.randint(len(idx), (self.k - len(idx),), generator=g).tolist()]
            groups += [idx[i:i + self.k] for i in range(0, len(idx) - self.k + 1, self.k)]
        groups = [groups[i] for i in torch.randperm(len(groups), generator=g).tolist()]
        groups += groups[: self.per_rank * self.world - len(groups)]  # equal length on every rank
        mine = groups[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]
        return iter([i for grp in mine for i in grp])

    def __len__(self) -> int:
        return self.per_rank * self.k


def sampler_config(train_cfg, seed: int) -> dict:
    """``train.sampler``: 'random' (mmengine DefaultSampler) or dict(type='identity', num_instances=K)."""
    spec = train_cfg.get("sampler", "random")
    spec = dict(type=spec) if isinstance(spec, str) else dict(spec)
    kind = spec.pop("type", "random")
    if kind == "random":
        return dict(type="DefaultSampler", shuffle=True, seed=seed)
    if kind == "identity":
        return dict(type=IdentitySampler, seed=seed, **spec)
    from ..errors import ConfigError
    raise ConfigError(f"train.sampler.type must be 'random' or 'identity', got {kind!r}")
