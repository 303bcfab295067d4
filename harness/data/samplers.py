"""Training samplers. ``identity`` is the P x K sampler that IVT (and many TIPR methods) train with: every
batch holds P distinct identities with K items each. Losses that treat every same-identity pair as positive
(CMPM, SDM) need it to see positives beyond the diagonal."""
from __future__ import annotations

from collections import defaultdict

import torch
from mmengine.dist import get_dist_info
from torch.utils.data import Sampler

from ..errors import ConfigError
from .loading import sample_seed


class IdentitySampler(Sampler):
    """The released ``RandomIdentitySamplerCUHK`` (PersonRetrieval-IVT datasets/sampler.py:104-130), drawn from
    a generator seeded by (seed, epoch) instead of Python's global ``random``:

    per identity, shuffle its items (an identity with fewer than K is first resampled to K with replacement)
    and cut them into groups of K, dropping a remainder; then, while at least P = batch_size // K identities
    still hold a group, pick P distinct ones uniformly and take the next group of each. The groups left
    when fewer than P identities remain are not used this epoch. Under DDP rank r takes batches r, r+W, ...
    (the last ones repeated from the start so every rank has as many).
    """

    def __init__(self, dataset, num_instances: int = 4, seed: int | None = None, batch_size: int | None = None):
        if num_instances < 1 or (batch_size is not None and (batch_size < num_instances or batch_size % num_instances)):
            raise ConfigError(f"identity sampler: batch_size={batch_size} must be a multiple of num_instances="
                              f"{num_instances} >= 1")
        self.k, self.seed, self.epoch = num_instances, int(seed or 0), 0
        self.p = (batch_size or num_instances) // num_instances
        self.rank, self.world = get_dist_info()
        self.by_pid = defaultdict(list)  # first-appearance order of the identities, as the released dict
        for i, pid in enumerate(dataset.item_pids):
            self.by_pid[pid].append(i)
        self._cache: tuple[int, list[int]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """This epoch's batches over all ranks, each P identities x K items."""
        # the harness's one seed mixing (data.loading.sample_seed): one stream per epoch, its (seed, 0, epoch) element
        g = torch.Generator().manual_seed(sample_seed(self.seed, 0, self.epoch))
        groups = {}
        for pid, idx in self.by_pid.items():
            if len(idx) < self.k:
                idx = [idx[i] for i in torch.randint(len(idx), (self.k,), generator=g).tolist()]
            idx = [idx[i] for i in torch.randperm(len(idx), generator=g).tolist()]
            groups[pid] = [idx[i:i + self.k] for i in range(0, len(idx) - self.k + 1, self.k)]
        avail, out = list(self.by_pid), []
        while len(avail) >= self.p:
            picked = [avail[i] for i in torch.randperm(len(avail), generator=g)[: self.p].tolist()]
            batch = []
            for pid in picked:
                batch += groups[pid].pop(0)
                if not groups[pid]:
                    avail.remove(pid)
            out.append(batch)
        return out

    def _order(self) -> list[int]:
        if self._cache is None or self._cache[0] != self.epoch:
            batches = self.batches()
            per_rank = -(-len(batches) // self.world)
            batches += batches[: per_rank * self.world - len(batches)]  # equal length on every rank
            mine = batches[self.rank::self.world]
            self._cache = (self.epoch, [i for b in mine for i in b])
        return self._cache[1]

    def __iter__(self):
        return iter(self._order())

    def __len__(self) -> int:
        return len(self._order())


def sampler_config(train_cfg, seed: int) -> dict:
    """``train.sampler`` (validated by the config schema): 'random' (mmengine DefaultSampler) or
    dict(type='identity', num_instances=K), whose batches of ``train.batch_size`` hold batch_size // K
    distinct identities."""
    spec = dict(train_cfg.get("sampler", dict(type="random")))
    if spec.pop("type", "random") == "random":
        return dict(type="DefaultSampler", shuffle=True, seed=seed)
    return dict(type=IdentitySampler, seed=seed, batch_size=int(train_cfg["batch_size"]), **spec)
