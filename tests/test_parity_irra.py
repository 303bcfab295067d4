"""IRRA pinned to its released definition (anosorae/IRRA@cfc2378): objectives, optimiser groups, schedule.

The pinned values come from IRRA's released formulas on the deterministic inputs below (the same inputs as
tests/test_parity_fmfa.py, where FMFA's copies of the same objectives are pinned); file:line on each test.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from torch import nn

from harness.config import load_config, to_plain
from tipr_methods.irra import IRRA
from tipr_methods.irra import losses as L

TINY = dict(type="clip", preset="tiny", image_size=(32, 16), context_length=24)


def det(shape, k, dtype=torch.float64):
    return torch.sin(torch.arange(math.prod(shape), dtype=dtype) * k + 0.5 * k).reshape(shape)


IMG, TXT = det((6, 8), 0.7), det((6, 8), 1.3)
PIDS = torch.tensor([0, 1, 0, 2, 3, 1])


def test_sdm_matches_released_compute_sdm():
    # model/objectives.py:6-42 compute_sdm(logit_scale=50, epsilon=1e-8, image_id=None): KL(p || q) per row, both
    # directions, q = labels / labels.sum(1) over same-pid pairs
    assert L.sdm_loss(IMG, TXT, PIDS, 50.0).item() == pytest.approx(29.543094578612262, abs=1e-6)


def test_sdm_equals_its_definition_written_row_by_row():
    # the same definition transcribed loop by loop (objectives.py:23-40), for inputs the pin does not cover
    img, txt = det((5, 4), 0.31), det((5, 4), 0.83)
    pids = torch.tensor([2, 2, 0, 1, 0])
    i = img / img.norm(dim=1, keepdim=True)
    t = txt / txt.norm(dim=1, keepdim=True)
    total = 0.0
    for sim in (i @ t.t(), t @ i.t()):  # i2t, t2i
        rows = []
        for a in range(5):
            y = [float(pids[a] == pids[b]) for b in range(5)]
            q = [v / sum(y) for v in y]
            z = [math.exp(20.0 * sim[a, b].item()) for b in range(5)]
            p = [v / sum(z) for v in z]
            rows.append(sum(p[b] * (math.log(p[b]) - math.log(q[b] + 1e-8)) for b in range(5)))
        total += sum(rows) / 5
    # 1e-6: the released q is float32 (objectives.py:13 .float()), so log(q + 1e-8) is rounded there
    assert L.sdm_loss(img, txt, pids, 20.0).item() == pytest.approx(total, abs=1e-6)


def test_id_loss_matches_released_compute_id():
    # model/objectives.py:74-83: (CE(image logits) + CE(text logits)) / 2, one classifier (model/build.py:113-115)
    cls = nn.Linear(8, 4).double()
    with torch.no_grad():
        cls.weight.copy_(det((4, 8), 0.37) * 0.5)
        cls.bias.copy_(det((4,), 0.91) * 0.1)
    assert L.id_loss(cls, IMG, TXT, PIDS).item() == pytest.approx(1.4433236205363538, abs=1e-6)


def test_id_logits_of_a_half_classifier_come_from_half_features():
    # model/build.py:113-114: classifier(i_feats.half()).float()
    cls = nn.Linear(8, 4).half()
    got = L.id_loss(cls, IMG.float(), TXT.float(), PIDS)
    img, txt = cls(IMG.half()).float(), cls(TXT.half()).float()
    assert got.item() == pytest.approx(0.5 * (F.cross_entropy(img, PIDS) + F.cross_entropy(txt, PIDS)).item())


def test_mlm_loss_equals_released_ce_with_ignore_index_0_over_every_position():
    # model/objectives.py:45-47 compute_mlm = CrossEntropyLoss(ignore_index=0) on all text positions of
    # mlm_head(x) (model/build.py:132-136); ours runs the head on the picked positions only
    head = nn.Linear(8, 11).double()
    with torch.no_grad():
        head.weight.copy_(det((11, 8), 0.29))
        head.bias.copy_(det((11,), 0.41) * 0.1)
    labels = torch.tensor([[0, 3, 0, 0, 7, 0, 0], [0, 0, 10, 0, 0, 0, 0], [0, 1, 0, 5, 0, 2, 0]])
    hidden = det((3, 7, 8), 0.53)
    released = F.cross_entropy(head(hidden).reshape(-1, 11), labels.reshape(-1), ignore_index=0)
    # float32 scores on both sides (model/build.py:134 x.float()); here the reference stays float64
    assert L.mlm_loss(head, hidden, labels).item() == pytest.approx(released.item(), abs=1e-6)
    assert released.item() == pytest.approx(4.40839331712989, abs=1e-6)


def test_itc_matches_released_compute_itc():
    # model/objectives.py:50-72 (the synth config's stand-in for CLIP pre-training)
    assert L.itc_loss(IMG, TXT, 50.0).item() == pytest.approx(13.872836113940291, abs=1e-6)


def _released_rule(name: str, lr=1e-5, wd=4e-5):
    """solver/build.py:11-26 applied to the released parameter name, in its order."""
    out_lr, out_wd = lr, wd
    if "cross" in name:
        out_lr = lr * 5.0  # lr_factor (utils/options.py:25)
    if "bias" in name:
        out_lr, out_wd = lr * 2.0, 0.0  # bias_lr_factor, weight_decay_bias (utils/options.py:44, 47)
    if "classifier" in name or "mlm_head" in name:
        out_lr = lr * 5.0
    return out_lr, out_wd


def test_every_parameter_gets_the_released_lr_and_weight_decay():
    cfg = load_config("irra", "cuhk")
    model = IRRA(num_classes=4, encoder=TINY, cmt_depth=2)
    wrapper = build_optim_wrapper(model, to_plain(cfg.optim_wrapper))  # as the Runner gets it (engine/train.py)
    opt = wrapper.optimizer
    assert isinstance(opt, torch.optim.Adam)
    assert {(g["eps"], tuple(g["betas"])) for g in opt.param_groups} == {(1e-3, (0.9, 0.999))}  # solver/build.py:32-38
    names = {id(p): n for n, p in model.named_parameters()}
    seen = 0
    for g in opt.param_groups:
        for p in g["params"]:
            ours = names[id(p)]
            released = ours.replace("encoder.clip.", "base_model.", 1)  # the key table of methods/irra/released.py
            assert (g["lr"], g["weight_decay"]) == pytest.approx(_released_rule(released)), ours
            seen += 1
    assert seen == len(names)
    kinds = {_released_rule(n.replace("encoder.clip.", "base_model.")) for n in names.values()}
    assert kinds == {(1e-5, 4e-5), (2e-5, 0.0), (5e-5, 4e-5), (5e-5, 0.0)}  # all four cases occur


def test_schedule_is_the_released_warmup_cosine():
    # solver/lr_scheduler.py:48-86 with utils/options.py:52-60 (warm-up 5 epochs from 0.1, cosine to 0 over 60);
    # the runtime config's WarmupCosineLR is pinned at every epoch in tests/test_parity_fmfa.py
    cfg = load_config("irra", "cuhk")
    assert to_plain(cfg.param_scheduler) == [dict(type="WarmupCosineLR", warmup_epochs=5, warmup_factor=0.1,
                                                  eta_min=0.0, by_epoch=True, begin=0, end="max_epochs")]
    from harness.schedulers import WarmupCosineParamScheduler as S
    got = [S.factor(e, 60) for e in (0, 1, 4, 5, 6, 59)]
    assert got == pytest.approx([0.1, 0.28, 0.82, 1.0, 0.999184551963068, 0.000815448036932], abs=1e-12)
    assert (cfg.train.epochs, cfg.train.batch_size) == (60, 64)  # run_irra.sh:8, 12


def test_released_defaults_and_cross_modal_shape():
    # utils/options.py:18 temperature 0.02, :22 cmt_depth 4, run_irra.sh:11 'sdm+mlm+id'; model/build.py:27-33
    # 8 heads at width 512 (embed_dim // 64), QuickGELU blocks (model/clip_model.py:236-240)
    m = load_config("irra", "cuhk").method
    assert (m.losses, m.temperature, m.cmt_depth, m.mlm_contaminates_global) == (["sdm", "id", "mlm"], 0.02, 4, True)
    model = IRRA(num_classes=3, encoder=TINY, cmt_depth=4)
    assert len(model.cross_modal_transformer.resblocks) == 4 and model.cross_attn.num_heads == 128 // 64
    assert model.logit_scale == pytest.approx(50.0)
    from open_clip.transformer import QuickGELU
    assert all(isinstance(b.mlp.gelu, QuickGELU) for b in model.cross_modal_transformer.resblocks)
