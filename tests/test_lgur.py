"""LGUR: cross-attention decoder, dictionary reconstruction, prototypes, ID + semi-hard ranking losses."""
import pytest
import torch

from harness.errors import ConfigError

from tipr_methods.lgur import LGUR
from tipr_methods.lgur.modules import (RANK_TEXT_ANCHORS, BiLSTMHead, CrossAttentionLayer, ranking_loss,
                                       semi_hard_ranking_loss)

SMALL = dict(vision=dict(type="clip", preset="tiny", image_size=(32, 16)),
             text=dict(type="bert", preset="tiny", context_length=32), dim=64, dict_size=20, part_dim=32,
             recon=dict(heads=2, dim_head=16, mlp_dim=64), proto=dict(heads=2, dim_head=32, mlp_dim=64))
CAPS = ["a man in a red jacket and black trousers", "a woman with long hair and a green skirt",
        "a man with a blue backpack", "a woman in white shoes and a grey coat"]


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(images=torch.randn(n, 3, 32, 16, generator=g), captions=[CAPS[i % 4] for i in range(n)],
                pids=torch.arange(n) % 4, generator=torch.Generator().manual_seed(seed))


def test_cross_attention_ignores_padded_memory():
    layer = CrossAttentionLayer(8, heads=2, dim_head=4, mlp_dim=16)
    x, mem = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = layer(x, mem, mask)
    mem2 = mem.clone()
    mem2[:, 3:] = 100.0  # padded rows of sample 0 must not matter; the same rows of sample 1 are real
    assert torch.allclose(layer(x, mem2, mask)[0], out[0], atol=1e-6)
    assert not torch.allclose(layer(x, mem2, mask)[1], out[1])


def test_bilstm_respects_lengths_and_averages_directions():
    head = BiLSTMHead(8, 6)
    x, mask = torch.randn(2, 5, 8), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = head(x, mask)
    assert out.shape == (2, 5, 6)
    alone = head(x[:1, :3], mask[:1, :3])
    assert torch.allclose(out[0, :3], alone[0], atol=1e-6)


def test_semi_hard_ranking_picks_only_semi_hard_negatives():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    pids = torch.tensor([0, 1, 2])
    # cosines: s01 = 0 (easy, never picked), s02 = s12 = 0.707 (semi-hard: 1 - 0.3 < s < 1).
    # Each of the 3 row anchors and 3 column anchors has one semi-hard negative: 6 summed hinge terms.
    for mode in RANK_TEXT_ANCHORS:  # S is symmetric, so the text-anchor indexing does not matter here
        loss = semi_hard_ranking_loss(a, a, pids, margin=0.3, text_anchor=mode)
        assert abs(float(loss) - 6 * (0.3 - 1 + 2 ** -0.5)) < 1e-5


def test_without_any_semi_hard_negative_one_fallback_triplet_is_kept():
    # s = [[0, 1], [1, 0]]: both negatives are harder than the positives, so none is semi-hard; the released
    # code then keeps (last anchor, its first negative) per direction: hinge 0.3 - 0 + 1 = 1.3, twice.
    hard, swapped = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert abs(float(semi_hard_ranking_loss(hard, swapped, torch.tensor([0, 1]))) - 2.6) < 1e-6
    far = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # the fallback negative is easy: its hinge is 0
    assert float(semi_hard_ranking_loss(far, far, torch.tensor([0, 1]))) == 0.0
    assert float(ranking_loss(torch.eye(2), torch.tensor([3, 3]))) == 0.0  # one identity: no negative at all


def test_text_anchor_switch_changes_only_the_column_hinge():
    s = torch.tensor([[0.9, 0.8, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 0.9]])
    pids = torch.arange(3)
    released, corrected = (float(ranking_loss(s, pids, 0.3, m)) for m in RANK_TEXT_ANCHORS)
    # row anchor 0 picks column 1 (hinge 0.2); column anchor 1 picks row 0 on S^T, and its hinge is
    # taken on S[1, 0] = 0 as released (0) or on S^T[1, 0] = 0.8 when corrected (0.2)
    assert abs(released - 0.2) < 1e-6 and abs(corrected - 0.4) < 1e-6
    with pytest.raises(ConfigError, match="rank_text_anchor"):
        LGUR(num_classes=4, rank_text_anchor="true", **SMALL)


def test_shapes_test_embedding_and_gradients():
    m = LGUR(num_classes=4, **SMALL)
    out = m.loss(_batch())
    assert set(out) == {"id_loss", "rank_loss", "rank_recon_loss", "rank_guidance_loss"}
    sum(out.values()).backward()
    named = dict(m.named_parameters())
    for name in ["dictionary", "prototypes", "foreground.weight", "recon.layers.0.to_kv.weight", "part_proj.5.weight",
                 "classifiers.0.weight", "text_lstm.lstm.weight_ih_l0", "patch_embed.weight"]:
        assert named[name].grad is not None and named[name].grad.abs().sum() > 0, name
    assert all(p.grad is None for p in m.text_encoder.parameters())  # BERT frozen
    m.eval()
    assert m.encode_image(torch.randn(2, 3, 32, 16)).shape == (2, 6 * 32)
    assert m.encode_text(m.tokenize(CAPS[:2])).shape == (2, 6 * 32)


def test_needs_classes():
    with pytest.raises(ConfigError, match="num_classes"):
        LGUR(num_classes=0, **SMALL)


def test_loss_falls_when_overfitting_a_batch():
    torch.manual_seed(0)
    m = LGUR(num_classes=4, **SMALL)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    b = _batch()
    first = None
    for step in range(25):
        loss = sum(m.loss(dict(b, generator=torch.Generator().manual_seed(step))).values())
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.6 * first
