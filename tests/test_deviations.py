"""Declared deviations: the shared ``ReleasedSetting`` mechanism; that every config key a method can be run with
either has a released setting or cannot change results (walked over every registered method); that every
switch a deviation names is a real key; and that the ids follow the config, against ids written down here from
the released code, not read back from the implementation."""
from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from harness.config import REPO_ROOT, load_config, to_plain
from harness.config_schema import TRAIN
from harness.registry import build_method
from harness.plugin import (Deviation, ReleasedSetting, RetrievalMethod, config_value, declared_deviations,
                            deviations_from)
from harness.registry import METHODS, get_method_class, names

MARGIN = ReleasedSetting("margin", lambda m: m.margin, 0.3, "margin 0.3 (loss.py:1)", "margin {v} on {m.name}",
                         "method.margin", applies=lambda m: m.on)
EPOCHS = ReleasedSetting("epochs", lambda m, c: config_value(c, "train.epochs"), 60, "60 epochs (train.py:9)",
                         "{v} epochs", "train.epochs", run=True)


def test_a_setting_deviates_only_away_from_its_released_value_and_where_it_applies():
    assert deviations_from(SimpleNamespace(margin=0.3, on=True, name="x"), [MARGIN]) == []
    assert deviations_from(SimpleNamespace(margin=0.2, on=False, name="x"), [MARGIN]) == []
    assert deviations_from(SimpleNamespace(margin=0.2, on=True, name="x"), [MARGIN]) == [
        Deviation("margin", "margin 0.3 (loss.py:1)", "margin 0.2 on x", "method.margin")]


def test_a_run_setting_reads_the_run_config_and_is_skipped_without_one():
    m = SimpleNamespace()
    assert deviations_from(m, [EPOCHS]) == []  # the old no-config call: run settings are not judged
    assert deviations_from(m, [EPOCHS], dict(train=dict(epochs=60))) == []
    assert deviations_from(m, [EPOCHS], dict(train=dict(epochs=5))) == [
        Deviation("epochs", "60 epochs (train.py:9)", "5 epochs", "train.epochs")]
    fixed = Deviation("fp32", "fp16 (a.py:1)", "fp32")
    assert deviations_from(m, [fixed, EPOCHS], dict(train=dict(epochs=5)))[0] is fixed
    assert config_value(dict(a=dict(b=(1, 2))), "a.b") == [1, 2] and config_value({}, "a.b", 7) == 7


def test_a_plugin_whose_deviations_take_no_config_still_works():
    class Old(RetrievalMethod):
        def deviations(self):
            return [Deviation("x", "r", "o")]

    assert [d.id for d in declared_deviations(Old(), dict(train={}))] == ["x"]
    assert declared_deviations(RetrievalMethod(), dict(train={})) == []


# ------------------------------------------------------------------ every config key has a released setting
# Keys that cannot change what is trained or how it is scored; everything else needs a ReleasedSetting.
ALLOWED = {
    "method.type": "names the plugin",
    "seed": "a replicate, not a recipe: recorded with every result and varied by `harness sweep`",
    "deterministic": "kernel choice (cuDNN/cuBLAS deterministic algorithms): rounding-level, not a recipe",
    "work_root": "where files go", "results_dir": "where files go",
    "train.num_workers": "loader processes; every sample's augmentation is seeded by (seed, epoch, index)",
    "train.pin_memory": "host memory of the copies", "train.persistent_workers": "loader process lifetime",
    "train.tensorboard": "logging", "train.log_interval": "logging",
    "train.cache_images": "decoded images kept in memory: the same pixels",
    "train.checkpoint_interval": "checkpoint files", "train.max_keep_ckpts": "checkpoint files",
    "eval.batch_size": "batching of per-sample features", "eval.chunk_size": "batching of the similarity",
    "eval.num_workers": "loader processes",
    "dataset": "the benchmark's data (what is measured), not the method's recipe",
    "cross_domain": "extra evaluation sets",
}


OPTIM_WRAPPER_KEYS = ("type", "optimizer", "paramwise_cfg", "clip_grad", "accumulative_counts")  # _check_optim


def _flat(d, prefix=""):
    for k, v in d.items():
        if k == "_delete_":
            continue
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and key != "param_scheduler":
            yield from _flat(v, key + ".")
        else:
            yield key


def _config_keys(cls) -> set[str]:
    keys = set(_flat(Config.fromfile(str(REPO_ROOT / "harness/configs/runtime.py")).to_dict()))
    keys |= {f"train.{k}" for k in TRAIN} | {f"optim_wrapper.{k}" for k in OPTIM_WRAPPER_KEYS}  # the schema's keys
    for f in sorted(Path(cls.config_dir).glob("*.py")) if cls.config_dir else ():
        keys |= set(_flat(Config.fromfile(str(f)).to_dict()))
    for base in cls.__mro__:  # a constructor passing **kwargs up takes its bases' keywords too (validate_config)
        if base is RetrievalMethod or "__init__" not in vars(base):
            continue
        params = inspect.signature(base.__init__).parameters
        keys |= {f"method.{p}" for p, v in params.items()
                 if p not in ("self", "num_classes") and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)}
        if not any(v.kind is v.VAR_KEYWORD for v in params.values()):
            break
    return keys


def _covered(key: str, covers: set[str]) -> bool:
    """``key`` or a section above it has a setting, or (a dict-valued key) settings cover its sub-keys."""
    parts = key.split(".")
    return any(".".join(parts[:i]) in covers for i in range(1, len(parts) + 1)) or \
        any(c.startswith(key + ".") for c in covers)


@pytest.mark.parametrize("name", names(METHODS))
def test_every_config_key_that_can_change_results_has_a_released_setting(name):
    cls = get_method_class(name)
    table = cls.released_settings
    assert table, f"{name}: no released_settings table"
    covers = {k for s in table if isinstance(s, ReleasedSetting) for k in s.keys}
    keys = _config_keys(cls)
    missing = sorted(k for k in keys if not _covered(k, covers | set(ALLOWED)))
    assert not missing, f"{name}: config keys without a released setting (or an ALLOWED reason): {missing}"
    ids = [s.id for s in table]
    assert len(set(ids)) == len(ids), f"{name}: deviation ids must be unique, footnotes use them"
    for s in table:  # every released value cites where the released code says it
        assert re.search(r"[\w*/]+\.(py|yml|sh|json)\b", s.released), f"{name}: {s.id} cites no released file"
    # the recipe is judged for every method, not only its model switches
    for key in ("train.epochs", "train.batch_size", "train.sampler", "train.amp", "train.selection",
                "optim_wrapper.optimizer", "param_scheduler"):
        assert _covered(key, covers), f"{name}: {key} has no released setting"


@pytest.mark.parametrize("name", names(METHODS))
def test_every_switch_names_a_real_config_key(name):
    cls = get_method_class(name)
    keys = _config_keys(cls)
    for s in cls.released_settings:
        for k in getattr(s, "keys", ()) or [x.strip() for x in s.switch.split(",") if x.strip()]:
            assert k in keys or k.split(".")[0] in ("dataset",), f"{name}: switch {k!r} names no config key"


# ------------------------------------------------------------------ ids follow the config (expected ids written here)
def _deviation_ids(method, dataset, **options):
    cfg = load_config(method, dataset, options=options or None)
    m = build_method(cfg.method, 4)
    return {d.id for d in m.deviations(to_plain(cfg))}, m


# What differs from the released code in each shipped config, written down from the released repositories
# (the citations are in each method's table) rather than read back from the implementation.
IVT_ALWAYS = {"no-vlp", "clip-vit", "image-stats", "random-init", "precision", "checkpoint-selection", "tie-rule"}
LGUR_ALWAYS = {"clip-vit", "image-stats", "random-init", "checkpoint-selection", "tie-rule"}
EXPECTED = {
    # IVT synth: tiny encoders, stride 6, no drop-path, AdamW 1e-3 + LinearLR/cosine, 5 epochs, batch 24
    ("ivt", "synth"): IVT_ALWAYS | {"encoder-preset", "stride", "drop-path", "optimizer", "lr-groups", "schedule",
                                    "epochs", "batch-size"},
    # LGUR synth: tiny encoders, narrower decoders, lr 5e-4, milestones [3], 5 epochs
    ("lgur", "synth"): LGUR_ALWAYS | {"text-preset", "widths", "decoders", "optimizer", "schedule", "epochs"},
}


@pytest.mark.parametrize("method,dataset", list(EXPECTED))
def test_deviations_of_the_shipped_synth_configs(method, dataset):
    ids, _ = _deviation_ids(method, dataset)
    assert ids == EXPECTED[method, dataset]


# one key at a time away from the released value, and the one id it must add (IVT synth as the base)
IVT_SWITCHES = [
    ({"train.amp": "fp16"}, "precision", False),  # released fp16 AMP: the deviation goes away
    ({"train.sampler.num_instances": 2}, "sampler", True),
    ({"train.drop_last": True}, "sampler", True),
    ({"optim_wrapper.clip_grad": dict(max_norm=1.0)}, "grad-steps", True),
    ({"method.augment": dict(flip=True, pad_crop=0, erasing=0.5)}, "augment", True),
    ({"method.bmm_ratio": 0.3}, "bmm-ratio", True),
    ({"method.levels": ["sentence"], "method.text.preset": "tiny"}, "levels", True),
    ({"method.caption_filter": dict(max_words=90, overflow="drop")}, "caption-filter", True),  # none on synth
]


@pytest.mark.parametrize("opts,dev_id,added", IVT_SWITCHES, ids=[s[1] + str(i) for i, s in enumerate(IVT_SWITCHES)])
def test_one_ivt_key_away_from_released_adds_its_deviation(opts, dev_id, added):
    base, _ = _deviation_ids("ivt", "synth")
    ids, _ = _deviation_ids("ivt", "synth", **opts)
    assert (dev_id in ids) is added and (ids - {dev_id}) == (base - {dev_id})


def test_dataset_dependent_released_values():
    cfg = to_plain(load_config("ivt", "synth"))
    m = build_method(load_config("ivt", "synth").method, 4)
    rstp = dict(cfg, dataset=dict(type="rstp"), train=dict(cfg["train"], batch_size=48))
    ids = {d.id for d in m.deviations(rstp)}
    assert "batch-size" not in ids and "stride" in ids and "caption-filter" in ids  # released: 48, stride 16, drop
    cuhk = dict(cfg, dataset=dict(type="cuhk"), train=dict(cfg["train"], batch_size=28))
    ids = {d.id for d in m.deviations(cuhk)}
    assert "batch-size" not in ids and "caption-filter" not in ids and "word-view" in ids
    # LGUR's 11,000 classes hold on CUHK-PEDES only
    lg = load_config("lgur", "synth")
    lm = build_method(lg.method, 4)
    assert "id-classes" in {d.id for d in lm.deviations(dict(to_plain(lg), dataset=dict(type="cuhk")))}
    assert "id-classes" not in {d.id for d in lm.deviations(to_plain(lg))}


def test_lgur_text_dropout_switch_works_on_a_trained_bert_too():
    cfg = load_config("lgur", "synth", options={"method.freeze_text": False, "method.text_dropout_in_train": False})
    m = build_method(cfg.method, 4).train()
    assert not m.text_encoder.training and any(p.requires_grad for p in m.text_encoder.parameters())
    on = build_method(load_config("lgur", "synth", options={"method.freeze_text": False}).method, 4).train()
    assert on.text_encoder.training
