"""Declared deviations: the shared ``ReleasedSetting`` mechanism, and that every switch a method names is a
setting its constructor really takes (a deviation must point at a key that selects the released behaviour)."""
from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest

from harness.plugin import Deviation, ReleasedSetting, deviations_from
from tipr_methods.fmfa import FMFA
from tipr_methods.ivt import IVT
from tipr_methods.lgur import LGUR

MARGIN = ReleasedSetting("margin", lambda m: m.margin, 0.3, "margin 0.3 (loss.py:1)", "margin {v} on {m.name}",
                         "method.margin", applies=lambda m: m.on)


def test_a_setting_deviates_only_away_from_its_released_value_and_where_it_applies():
    assert deviations_from(SimpleNamespace(margin=0.3, on=True, name="x"), [MARGIN]) == []
    assert deviations_from(SimpleNamespace(margin=0.2, on=False, name="x"), [MARGIN]) == []
    assert deviations_from(SimpleNamespace(margin=0.2, on=True, name="x"), [MARGIN]) == [
        Deviation("margin", "margin 0.3 (loss.py:1)", "margin 0.2 on x", "method.margin")]


TINY_CLIP = dict(type="clip", preset="tiny", image_size=(32, 16))
TWO_TOWERS = dict(vision=TINY_CLIP, text=dict(type="bert", preset="tiny", max_length=32))
# every switchable deviation of each method switched on (values away from the released ones)
AWAY_FROM_RELEASED = {
    FMFA: dict(num_classes=4, encoder=dict(TINY_CLIP, context_length=16), losses=("itc", "asdm", "id", "mlm", "efa"),
               asdm_alpha=0.3, asdm_detach_weight=True, efa_margins=(0.2, 1.0), efa_row_normalise=False,
               efa_mask_padding=True, mlm_contaminates_global=False, cmt_depth=1, temperature=0.05,
               loss_weights=dict(id=0.5)),
    IVT: dict(**TWO_TOWERS, stride=6, levels=("word", "sentence"), bmm_ratio=0.3, cmpm_target_norm="l1",
              drop_path=0.0, image_mean=(0.4,) * 3, image_std=(0.3,) * 3),
    LGUR: dict(num_classes=4, **TWO_TOWERS, dim=64, dict_size=20, part_dim=32, recon=dict(heads=2, dim_head=16,
               mlp_dim=64), proto=dict(heads=2, dim_head=32, mlp_dim=64), rank_text_anchor="corrected",
               margin=0.2, freeze_text=False, drop_last_block=False, image_mean=(0.4,) * 3, image_std=(0.3,) * 3),
}


@pytest.mark.parametrize("cls", list(AWAY_FROM_RELEASED), ids=lambda c: c.__name__)
def test_every_switch_names_a_constructor_setting(cls):
    devs = cls(**AWAY_FROM_RELEASED[cls]).deviations()
    switches = [key.strip() for d in devs for key in d.switch.split(",") if key.strip()]
    assert len(switches) >= 5, [d.id for d in devs]  # the configuration above does switch them on
    params = inspect.signature(cls.__init__).parameters
    for key in switches:
        section, name = key.split(".")[:2]
        assert section == "method" and name in params, f"{cls.__name__}: switch {key!r} names no constructor setting"
    assert len({d.id for d in devs}) == len(devs), "deviation ids must be unique: footnotes use them"
