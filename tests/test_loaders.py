"""Loader settings: worker counts, pinned memory, persistent workers that still see each new epoch."""
import copy

import pytest
import torch
from torch.utils.data import DataLoader

from harness.config import load_config
from harness.data.loading import TrainPairs, collate_pairs
from harness.engine.precision import Precision
from harness.engine.settings import EvalSettings, LoaderSettings, train_settings
from harness.data.resolve import resolve_dataset as load_dataset
from harness.errors import ConfigError
from harness.plugin import ImageSpec

TINY_DATA = dict(type="synth", train_ids=4, val_ids=2, test_ids=2, images_per_id=2, xdomain_ids=2, image_size=(32, 16))


def _cfg(**train):
    return load_config("fmfa", "synth", options=dict(dataset=TINY_DATA, cross_domain=[], train=train))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the resolution on a machine without CUDA")
def test_defaults_resolve_for_a_machine_without_cuda():
    cfg = _cfg()
    assert cfg.train.num_workers == "auto" and cfg.train.pin_memory and cfg.train.persistent_workers
    # no GPU: the cores run the model, so no worker processes; nothing to pin; nothing to persist
    settings = train_settings(cfg)
    assert settings.loader == LoaderSettings(num_workers=0, pin_memory=False, persistent_workers=False,
                                             drop_last=False)
    assert settings.eval == EvalSettings(batch_size=256, chunk_size=512, num_workers=0, pin_memory=False,
                                         precision=Precision("off", "cpu"), store_topk=10)
    assert settings.precision is settings.eval.precision  # train.amp resolved once, for both
    assert train_settings(_cfg(num_workers=2)).loader == LoaderSettings(num_workers=2, pin_memory=False,
                                                                        persistent_workers=True, drop_last=False)


@pytest.mark.parametrize("train,message", [
    (dict(num_workers=-1), "train.num_workers=-1: use a number of worker processes >= 0, or 'auto'"),
    (dict(num_workers="many"), "train.num_workers='many'"),
    (dict(pin_memory="yes"), "train.pin_memory='yes': use True or False"),
    (dict(persistent_workers=1), "train.persistent_workers=1: use True or False"),
])
def test_bad_loader_settings_are_config_errors(train, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):  # when the config loads
        _cfg(**train)


def test_persistent_workers_see_every_epoch():
    """The Runner deep-copies its loader config (dataset included) and the workers outlive the
    epoch; the epoch that seeds augmentation must still reach them."""
    splits = load_dataset(TINY_DATA)
    data = copy.deepcopy(TrainPairs(splits.train, splits.image_root, ImageSpec(size=(32, 16)), seed=0))
    loader = DataLoader(data, batch_size=4, num_workers=1, persistent_workers=True, collate_fn=collate_pairs)
    seen, images = [], []
    for epoch in range(3):
        data.set_epoch(epoch)
        batches = list(loader)
        seen.append({int(b["epoch"]) for b in batches})
        images.append(torch.cat([b["images"] for b in batches]))
    assert seen == [{0}, {1}, {2}]
    # the workers augmented exactly as the main process does for that epoch, and epochs differ
    assert torch.equal(images[2], torch.stack([data[i]["image"] for i in range(len(data))]))
    assert not torch.equal(images[0], images[2])
