import pytest
import torch

from harness.errors import ConfigError
from tipr_methods.fmfa import FMFA
from tipr_methods.fmfa import losses as L

TINY = dict(type="clip", preset="tiny", image_size=(32, 16), context_length=24)


def _batch(n=8, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    pids = torch.arange(n) % classes
    coats, trousers = ["red", "blue", "green", "black"] * 4, ["grey", "white", "pink", "red"] * 4
    caps = [f"a person in a {c} coat and {d} trousers" for c, d in zip(coats, trousers)][:n]
    return dict(images=torch.randn(n, 3, 32, 16, generator=g), captions=caps, pids=pids,
                image_ids=torch.arange(n), generator=torch.Generator().manual_seed(seed))


def test_encoders_give_global_features():
    m = FMFA(num_classes=4, encoder=TINY, cmt_depth=1)
    b = _batch()
    assert m.encode_image(b["images"]).shape == (8, 128)
    assert m.encode_text(m.tokenize(b["captions"])).shape == (8, 128)


def test_all_losses_finite_and_every_trainable_part_gets_gradient():
    m = FMFA(num_classes=4, encoder=TINY, cmt_depth=1)
    out = m.loss(_batch())
    assert set(out) == {"sdm_loss", "id_loss", "mlm_loss", "efa_loss"}
    sum(out.values()).backward()
    for name in ["encoder.clip.visual.conv1.weight", "encoder.clip.token_embedding.weight", "classifier.weight",
                 "mlm_head.fc.weight", "cross_attn.in_proj_weight"]:
        p = dict(m.named_parameters())[name]
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_cross_modal_transformer_uses_quickgelu_and_the_record_lists_deviations():
    m = FMFA(num_classes=4, encoder=TINY, cmt_depth=2)
    acts = [blk.mlp.gelu for blk in m.cross_modal_transformer.resblocks]
    assert len(acts) == 2 and all(type(a).__name__ == "QuickGELU" for a in acts)  # FMFA clip_model.py:260
    devs = [d.as_dict() for d in m.deviations()]
    assert all(set(d) == {"id", "released", "ours", "switch"} for d in devs)
    assert next(d for d in devs if d["id"] == "random-init")["switch"] == "method.encoder.checkpoint"


def test_loss_weights_scale_the_named_terms_and_unknown_names_are_refused():
    def losses(**weights):
        torch.manual_seed(0)
        return FMFA(num_classes=4, encoder=TINY, losses=("asdm", "id"), loss_weights=weights).loss(_batch())

    plain, weighted = losses(), losses(id=0.5, asdm=2.0)
    assert torch.allclose(weighted["id_loss"], 0.5 * plain["id_loss"])
    assert torch.allclose(weighted["sdm_loss"], 2.0 * plain["sdm_loss"])
    with pytest.raises(ConfigError, match="not on: \\['mlm'\\]"):
        FMFA(num_classes=4, encoder=TINY, losses=("asdm", "id"), loss_weights=dict(mlm=0.5))
    with pytest.raises(ConfigError, match="method.loss_weights.id_loss: no such loss"):
        FMFA.validate_config(dict(losses=["asdm", "id"], loss_weights=dict(id_loss=0.5)))


def test_asdm_code_weights_lie_in_1_to_1_2_and_paper_weights_up_to_alpha_plus_1():
    g = torch.Generator().manual_seed(0)
    i, t = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    pids = torch.arange(16)
    plain = L.sdm_loss(i, t, pids, 50.0, asdm="off")
    code = L.sdm_loss(i, t, pids, 50.0, asdm="code", alpha=0.1)
    paper = L.sdm_loss(i, t, pids, 50.0, asdm="paper", alpha=10.0)
    assert plain <= code <= 1.2 * plain + 1e-6
    assert plain <= paper <= 11 * plain
    # a perfect match gets weight 1 in both modes
    assert torch.isclose(L.sdm_loss(i, i, pids, 50.0, asdm="code"), L.sdm_loss(i, i, pids, 50.0, asdm="off"))


def test_detached_asdm_weight_keeps_the_value_and_drops_the_weights_gradient():
    g = torch.Generator().manual_seed(1)
    i0, t = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    pids = torch.arange(8) % 4
    grads, values = [], []
    for detach in (False, True):
        i = i0.clone().requires_grad_(True)
        loss = L.sdm_loss(i, t, pids, 50.0, asdm="paper", alpha=10.0, detach_weight=detach)
        loss.backward()
        values.append(loss.detach())
        grads.append(i.grad)
    plain = i0.clone().requires_grad_(True)
    L.sdm_loss(plain, t, pids, 50.0, asdm="off").backward()
    assert torch.equal(values[0], values[1])
    assert not torch.allclose(grads[0], grads[1])  # the weight's own gradient is gone ...
    assert not torch.allclose(grads[1], plain.grad)  # ... while the weighting of each row stays


def test_mask_tokens_follows_irra_rule():
    ids = torch.tensor([[49406] + list(range(10, 30)) + [49407, 0, 0]] * 200)
    masked, labels = L.mask_tokens(ids, 49405, torch.Generator().manual_seed(0))
    picked = labels > 0
    assert not picked[:, [0, 21, 22, 23]].any()  # SOT, EOT and padding are never picked
    assert torch.equal(labels[picked], ids[picked])
    rate = picked[:, 1:21].float().mean()
    assert 0.13 < rate < 0.17  # p = 0.15 (a forced pick only when nothing was picked: 0.85^20 = 4%)
    assert picked.any(1).all()
    frac_mask = (masked[picked] == 49405).float().mean()
    assert 0.7 < frac_mask < 0.9


def test_efa_aggregate_is_a_sparse_convex_combination():
    g = torch.Generator().manual_seed(0)
    t, p = torch.randn(2, 5, 8, generator=g), torch.randn(2, 12, 8, generator=g)
    e = L.efa_aggregate(t, p)
    assert e.shape == (2, 5, 8)
    s = t @ p.transpose(1, 2)
    lo, hi = s.min(-1, keepdim=True).values, s.max(-1, keepdim=True).values
    w = (s - lo) / (hi - lo)
    w = torch.where(w > 1 / 12, w, torch.zeros_like(w))
    w = w / w.sum(-1, keepdim=True)
    assert torch.allclose(e, w @ p, atol=1e-6)


def test_efa_contrast_matches_its_definition_with_einsum():
    g = torch.Generator().manual_seed(1)
    x, e = torch.randn(4, 6, 8, generator=g), torch.randn(4, 5, 8, generator=g)
    got = L.efa_contrast(x, e, margin=0.2)
    xn, en = torch.nn.functional.normalize(x, dim=-1), torch.nn.functional.normalize(e, dim=-1)
    sims = torch.logsumexp(torch.einsum("axd,bcd->abxc", xn, en).max(-1).values, -1)
    sims = torch.nn.functional.normalize(sims, dim=-1)
    d = sims.diagonal()
    eye = torch.eye(4, dtype=torch.bool)
    a = (sims - d[:, None] + 0.2).masked_fill(eye, 0)
    b = (sims - d[None, :] + 0.2).masked_fill(eye, 0)
    want = torch.log(torch.exp(a).sum(0)).mean() + torch.log(torch.exp(b).sum(0)).mean()
    assert torch.isclose(got, want, atol=1e-5)


def test_loss_falls_when_overfitting_one_batch():
    torch.manual_seed(0)
    m = FMFA(num_classes=4, encoder=TINY, cmt_depth=1, losses=("itc", "asdm", "id", "mlm", "efa"))
    b = _batch()
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    first = None
    for _ in range(40):
        b["generator"] = torch.Generator().manual_seed(0)
        loss = sum(m.loss(b).values())
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first


def test_unknown_config_key_is_rejected():
    with pytest.raises(TypeError, match="unexpected config keys"):
        FMFA(num_classes=4, encoder=TINY, not_a_key=1)
    with pytest.raises(ConfigError, match="unknown FMFA loss"):
        FMFA(num_classes=4, encoder=TINY, losses=("sdm", "bogus"))
    with pytest.raises(ConfigError, match="needs a 'clip' encoder; the config's encoder type is 'bert'"):
        FMFA(num_classes=4, encoder=dict(TINY, type="bert"))
