"""The data rules that follow the released code, pinned to numbers derived by hand from the released definitions:
the IVT identity sampler (PersonRetrieval-IVT@f205788 datasets/sampler.py:104-130), IVT's caption filters
(datasets/rstp_reid.py:59-100, datasets/icfg_pedes.py:79-92), LGUR's last batch (LGUR@c203cc7
data/dataloader.py:32-33), and the flip / pad-crop draws against torchvision's own transforms."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from torchvision import transforms as T

from harness.config import load_config
from harness.data.loading import ImageTransform
from harness.data.samplers import IdentitySampler, sampler_config
from harness.engine.settings import train_settings
from harness.errors import ConfigError
from harness.plugin import CaptionRule, ImageSpec


class _Items:
    def __init__(self, pids):
        self.item_pids = pids


def _batches(pids, k, bs, seed=0, epoch=0):
    s = IdentitySampler(_Items(pids), num_instances=k, seed=seed, batch_size=bs)
    s.set_epoch(epoch)
    order = list(s)
    assert len(order) == len(s)
    return [order[i:i + bs] for i in range(0, len(order), bs)]


def test_every_batch_holds_p_distinct_identities_with_k_items_each():
    pids = [p for p in range(9) for _ in range(2 + p % 4)]  # 2..5 items per identity
    for seed in range(20):
        for b in _batches(pids, k=2, bs=6, seed=seed):
            counts = Counter(pids[i] for i in b)
            assert len(b) == 6 and len(counts) == 3 and set(counts.values()) == {2}  # P = 6 // 2 distinct, K each


def test_three_identities_of_one_group_give_one_batch():
    # 3 identities x 2 items, K = 2, P = 2: the loop takes 2 of the 3 groups, then 1 identity < P remains and the
    # released loop stops (sampler.py:122): always 1 batch of 4, one identity unused (its 2 samples dropped).
    pids = [0, 0, 1, 1, 2, 2]
    for seed in range(10):
        (b,) = _batches(pids, k=2, bs=4, seed=seed)
        assert len(b) == 4 and len({pids[i] for i in b}) == 2


def test_the_number_of_batches_follows_the_released_stopping_rule():
    # 3 identities x 4 items, K = 2, P = 2: group counts (2, 2, 2). The first batch leaves (1, 1, 2); the second
    # takes 2 of the 3 identities uniformly (random.sample): both 1s with probability 1/3 -> (0, 0, 2), only one
    # identity left, stop after 2 batches; otherwise (0, 1, 1) -> a third batch uses everything.
    # So P(2 batches) = 1/3, P(3 batches) = 2/3, never another count.
    pids = [p for p in range(3) for _ in range(4)]
    n = Counter(len(_batches(pids, k=2, bs=4, seed=s)) for s in range(600))
    assert set(n) <= {2, 3}
    frac = n[2] / 600
    assert abs(frac - 1 / 3) < 4 * (1 / 3 * 2 / 3 / 600) ** 0.5  # 4 sigma of the Monte Carlo error (0.019)


def test_small_identities_are_resampled_and_remainders_dropped():
    # K = 2: the 1-item identity is drawn twice with replacement (sampler.py:109-110); the 5-item identity gives
    # 2 groups and leaves 1 item out (sampler.py:112-117); P = 1 takes every group.
    pids = [0, 1, 1, 1, 1, 1]
    order = [i for b in _batches(pids, k=2, bs=2) for i in b]
    c = Counter(order)
    assert c[0] == 2 and sum(c[i] for i in range(1, 6)) == 4 and max(c[i] for i in range(1, 6)) == 1


def test_batches_are_seeded_per_epoch():
    pids = [p for p in range(8) for _ in range(4)]
    assert _batches(pids, 2, 4, seed=1) == _batches(pids, 2, 4, seed=1)
    assert _batches(pids, 2, 4, seed=1, epoch=0) != _batches(pids, 2, 4, seed=1, epoch=1)


def test_sampler_config_keeps_its_keys_and_needs_whole_identities_per_batch():
    cfg = sampler_config(dict(batch_size=28, sampler=dict(type="identity", num_instances=4)), seed=3)
    assert cfg["type"] is IdentitySampler and cfg["batch_size"] == 28 and cfg["num_instances"] == 4
    with pytest.raises(ConfigError, match="multiple of train.sampler.num_instances"):  # the schema, at load
        load_config("ivt", "synth", options=dict(train=dict(batch_size=30)))
    assert load_config("ivt", "synth").train.sampler == dict(type="identity", num_instances=4)


# ------------------------------------------------------------------ LGUR's last batch
def test_lgur_drops_the_last_partial_batch_as_released():
    assert train_settings(load_config("lgur", "synth")).loader.drop_last is True  # data/dataloader.py:33
    assert train_settings(load_config("ivt", "synth")).loader.drop_last is False  # make_dataloader.py:179-182
    assert train_settings(load_config("fmfa", "synth")).loader.drop_last is False  # FMFA datasets/build.py:127


# ------------------------------------------------------------------ caption filters
def test_word_count_is_the_released_split_word():
    # rstp_reid.py:59-80 on "A man,in a red coat.He  walks?": split(" ") gives A | man,in | a | red | coat.He | "" |
    # walks?; 'man,in' has ',' -> man, in; 'coat.He' has '.' -> coat, He; "" is kept as a word; 'walks?' -> walks
    assert CaptionRule.words("A man,in a red coat.He  walks?") == ["A", "man", "in", "a", "red", "coat", "He", "",
                                                                    "walks"]
    assert CaptionRule.words("a.b,c") == ["a", "b,c"]  # '.' is looked for first (rstp_reid.py:63)


def test_rstp_drops_captions_over_90_words_and_icfg_cuts_them():
    ninety = " ".join(f"w{i}" for i in range(90))
    over = ninety + " w90 w91."
    drop, cut = CaptionRule(90, "drop"), CaptionRule(90, "truncate")
    assert drop.apply(ninety) == ninety and drop.apply(over) is None  # rstp_reid.py:91-92: > 90 -> skipped
    assert cut.apply(over) == ninety + " "  # icfg_pedes.py:88-92: captions[0: index of token 90]
    assert load_config("ivt", "rstp").method.caption_filter == dict(max_words=90, overflow="drop")
    assert load_config("ivt", "icfg").method.caption_filter == dict(max_words=90, overflow="truncate")
    assert load_config("ivt", "cuhk").method.get("caption_filter") is None  # cuhk_pedes_level.py: no rule


def test_the_training_set_applies_the_rule(tmp_path):
    from harness.data.loading import TrainPairs
    from harness.data.splits import ImageRecord

    long = " ".join(["word"] * 91)
    recs = [ImageRecord(pid=1, path="a.jpg", captions=["short one", long]),
            ImageRecord(pid=2, path="b.jpg", captions=[long])]
    items = TrainPairs(recs, tmp_path, ImageSpec(), caption_rule=CaptionRule(90, "drop")).items
    assert items == [(0, "short one")]
    assert len(TrainPairs(recs, tmp_path, ImageSpec()).items) == 3


# ------------------------------------------------------------------ flip / pad-crop draws vs torchvision
def _ours(spec, img, seed):
    return ImageTransform(spec, train=True)(img, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("crop_then_flip", [False, True], ids=["irra-order", "ivt-lgur-order"])
def test_flip_and_pad_crop_draw_as_torchvision(crop_then_flip):
    # IRRA/FMFA build.py: RandomHorizontalFlip(0.5) then Pad(10) + RandomCrop; IVT make_dataloader.py:143-145 and
    # LGUR dataloader.py:22-24: Pad(10) + RandomCrop, then RandomHorizontalFlip. torchvision draws torch.rand(1)
    # for the flip and torch.randint(0, h - th + 1) then (0, w - tw + 1) for the crop, from the global generator;
    # ours draws the same calls from a per-sample generator, so the same seed gives the same image.
    spec = ImageSpec(size=(24, 12), mean=(0.0,) * 3, std=(1.0,) * 3, crop_then_flip=crop_then_flip,
                     augment=dict(flip=True, pad_crop=4, erasing=0.0))
    steps = [T.RandomHorizontalFlip(0.5), T.RandomCrop((24, 12), padding=4)]
    tv = T.Compose(steps[::-1] if crop_then_flip else steps)
    img = torch.randint(0, 256, (3, 24, 12), dtype=torch.uint8)
    for seed in range(40):
        torch.manual_seed(seed)
        assert torch.equal(_ours(spec, img, seed), tv(img.float() / 255)), seed
    # the other order gives other images for the same seeds (the order matters draw for draw)
    other = ImageSpec(size=(24, 12), mean=(0.0,) * 3, std=(1.0,) * 3, crop_then_flip=not crop_then_flip,
                      augment=dict(flip=True, pad_crop=4, erasing=0.0))
    assert any(not torch.equal(_ours(spec, img, s), _ours(other, img, s)) for s in range(10))


def test_ivt_and_lgur_crop_before_the_flip():
    from tipr_methods.ivt import IVT
    from tipr_methods.lgur import LGUR

    vision, text = dict(type="clip", preset="tiny", image_size=(32, 16)), dict(type="bert", preset="tiny")
    assert IVT(vision=vision, text=text, stride=6).image_spec.crop_then_flip
    assert LGUR(num_classes=2, vision=vision, text=text, dim=32, dict_size=8, part_dim=16,
                recon=dict(heads=2, dim_head=8, mlp_dim=32), proto=dict(heads=2, dim_head=8, mlp_dim=32)
                ).image_spec.crop_then_flip
    assert not ImageSpec().crop_then_flip  # IRRA/FMFA order


@pytest.mark.parametrize("opts,match", [
    ({"train.batch_size": 30}, "train.batch_size=30 must be a multiple of train.sampler.num_instances=4"),
    ({"method.caption_filter": dict(max_words=0)}, "method.caption_filter"),
    ({"method.caption_filter": dict(max_words=90, overflow="cut")}, "method.caption_filter"),
    ({"method.caption_filter": dict(words=90)}, "method.caption_filter"),
])
def test_bad_sampler_and_caption_values_are_refused_before_any_data(opts, match):
    with pytest.raises(ConfigError, match=match):
        load_config("ivt", "synth", options=opts)
