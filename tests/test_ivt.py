"""IVT: shared-weight transformer built from the shared encoders, MLA views, BMM token dropping, CMPM."""
import pytest
import torch
import torch.nn.functional as F

from harness.encoders.bert import BertEncoder
from harness.encoders.clip import CLIPEncoder
from harness.errors import HarnessError
from tipr_methods.ivt import IVT
from tipr_methods.ivt.losses import cmpm_loss, drop_tokens
from tipr_methods.ivt.views import phrase_candidates, word_candidates

VISION = dict(type="clip", preset="tiny", image_size=(32, 16))
TEXT = dict(type="bert", preset="tiny", context_length=32)
CAPS = ["A man wears a red jacket, black trousers and white shoes. He carries a blue backpack.",
        "The woman has long hair, a green skirt, and a yellow handbag."]


def _model(**kw):
    return IVT(vision=VISION, text=TEXT, stride=6, drop_path=0.0, **kw)


def _batch(n=8, views=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(images=torch.randn(n, views, 3, 32, 16, generator=g), captions=[CAPS[i % 2] for i in range(n)],
                pids=torch.arange(n) % 4, generator=torch.Generator().manual_seed(seed))


def test_text_views_follow_the_released_rules():
    cands = phrase_candidates(CAPS[0])
    # sentence 1: longest chunk + the rest re-joined; sentence 2 has a single chunk
    assert cands == ["black trousers and white shoes", "A man wears a red jacket", "He carries a blue backpack"]
    # pieces are kept when longer than 5 characters *before* stripping: " a hat" (6) survives as "a hat"
    assert word_candidates("a cap, a hat.") == ["a hat"]
    assert phrase_candidates("a cap, a hat") == ["a hat"]  # the rest, "a cap", is 5 characters
    # only the ends lose '.', '[' and ']'; inner brackets stay, inner dots split sentences
    assert word_candidates("[tall man in a [red] coat.]") == ["tall man in a [red] coat"]


def test_one_batch_has_word_phrase_sentence_texts_in_the_released_order():
    m = _model()
    texts = m.level_texts(CAPS, torch.Generator().manual_seed(0))
    assert len(texts) == 6 and texts[4:] == CAPS
    assert all(t in word_candidates(c) for t, c in zip(texts[:2], CAPS))
    assert all(t in phrase_candidates(c) for t, c in zip(texts[2:4], CAPS))
    assert _model(levels=["sentence"]).level_texts(CAPS) == CAPS


def test_text_is_cls_then_words_without_sep_or_cut():
    m = _model()
    tok = m.tokenize(["A man in a red coat", "man"])
    words = m.tokenizer.convert_ids_to_tokens(tok["input_ids"][0].tolist())
    assert words == ["[CLS]", "a", "man", "in", "a", "red", "coat"] and "[SEP]" not in words
    assert tok["attention_mask"].tolist()[1] == [1, 1, 0, 0, 0, 0, 0]  # padded to the longest with [PAD]
    long = m.tokenize(["red " * 110])  # the released call (padding='longest', max_length=100) never cuts
    assert long["input_ids"].shape == (1, 111)
    assert m.tokenize(["red " * 200])["input_ids"].shape[1] == 128  # only BERT's position table bounds it


def test_shared_attention_and_layernorms_modality_specific_ffns():
    m = _model()
    blk = m.blocks[0]
    assert blk.mlp_vis is not blk.mlp_txt and blk.mlp_txt.fc1.out_features == 256  # BERT tiny intermediate size
    # the image path never touches the text FFN and vice versa
    m.eval()
    img = m.encode_image(torch.randn(2, 3, 32, 16))
    img.sum().backward()
    assert blk.mlp_txt.fc1.weight.grad is None and blk.attn.in_proj_weight.grad is not None
    assert m.grid == (5, 2) and m.pos_embed.shape[0] == 11  # overlapping patches: stride 6, kernel 8
    assert m.type_embed.shape == (11, 128)  # one type vector per image token, as released
    assert img.shape == (2, 128) and m.encode_text(m.tokenize(CAPS)).shape == (2, 128)


def test_weights_come_from_the_shared_encoders():
    torch.manual_seed(0)
    m = _model()
    torch.manual_seed(0)
    clip = CLIPEncoder(preset="tiny", image_size=(32, 16))
    bert = BertEncoder(preset="tiny", context_length=32)
    assert torch.equal(m.patch_embed.weight, clip.vision_tower().patch_embed.weight)
    assert torch.equal(m.blocks[1].mlp_txt.fc2.weight, bert.ffn_linears()[1][1].weight)
    ids = m.tokenize(CAPS)["input_ids"]
    m.eval()
    assert torch.equal(m.text_embed(ids), bert.text_embeddings().eval()(ids))


def test_position_table_is_resized_once_from_the_checkpoint_grid(tmp_path):
    src = CLIPEncoder(preset="tiny", image_size=(32, 32))  # a "pretrained" 4 x 4 grid
    torch.save(src.clip.state_dict(), tmp_path / "clip.pt")
    # 48 x 24 input: the encoder's own grid is 6 x 3, IVT's stride-6 grid 7 x 3
    m = IVT(vision=dict(VISION, image_size=(48, 24), checkpoint=str(tmp_path / "clip.pt")), text=TEXT, stride=6)
    table = src.vision_tower().positions.detach()
    grid = table[1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)

    def resize(x, size):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    once = resize(grid, (7, 3)).permute(0, 2, 3, 1).reshape(21, -1)
    assert torch.allclose(m.pos_embed[1:], once, atol=1e-6) and torch.equal(m.pos_embed[0], table[0])
    twice = resize(resize(grid, (6, 3)), (7, 3)).permute(0, 2, 3, 1).reshape(21, -1)  # 4x4 -> 6x3 -> 7x3
    assert not torch.allclose(once, twice, atol=1e-4)


def test_deviations_list_what_the_config_changes():
    # without a run config only the model's own settings are judged (tiny encoders: encoder-preset)
    ids = [d.id for d in _model().deviations()]
    assert ids == ["no-vlp", "clip-vit", "encoder-preset", "image-stats", "drop-path", "tie-rule"]  # drop_path 0
    ids = [d.id for d in IVT(vision=VISION, text=TEXT, stride=6, levels=["sentence"], cmpm_target_norm="l1",
                             image_mean=(0.5,) * 3, image_std=(0.5,) * 3, drop_path=0.1).deviations()]
    assert ids == ["no-vlp", "clip-vit", "encoder-preset", "levels", "cmpm-target", "tie-rule"]


def test_mismatched_encoders_are_refused():
    with pytest.raises(HarnessError, match="same depth and width"):
        IVT(vision=VISION, text=dict(TEXT, preset="base"))


def test_bmm_drops_the_same_positions_for_the_batch_and_never_cls():
    x = torch.arange(2 * 11).float().reshape(2, 11, 1)
    mask = torch.ones(2, 11)
    for seed in range(20):
        y, ym = drop_tokens(x, mask, 0.2, torch.Generator().manual_seed(seed))
        assert 9 <= y.shape[1] <= 11 and y[0, 0, 0] == 0 and y[1, 0, 0] == 11
        assert torch.equal(y[1] - y[0], torch.full_like(y[0], 11.0)) and ym.shape == y.shape[:2]


def test_cmpm_matches_its_definition_and_l1_targets_differ():
    g = torch.Generator().manual_seed(0)
    x, z = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    pids = torch.tensor([0, 0, 1, 1, 2, 3])
    y = (pids[:, None] == pids[None, :]).float()
    q = y / y.norm(dim=1, keepdim=True)
    p = (x @ (z / z.norm(dim=1, keepdim=True)).t()).softmax(1)
    i2t = (p * (p.log() - (q + 1e-8).log())).sum(1).mean()
    p2 = (z @ (x / x.norm(dim=1, keepdim=True)).t()).softmax(1)
    t2i = (p2 * (p2.log() - (q + 1e-8).log())).sum(1).mean()
    assert torch.allclose(cmpm_loss(x, z, pids), i2t + t2i, atol=1e-5)
    assert not torch.allclose(cmpm_loss(x, z, pids, "l1"), i2t + t2i)


def test_loss_uses_three_views_and_falls_when_overfitting_a_batch():
    torch.manual_seed(0)
    m = _model()
    b = _batch()
    with pytest.raises(ValueError, match="3 image views"):
        m.loss(dict(b, images=b["images"][:, 0]))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    first = None
    for step in range(25):
        b["generator"] = torch.Generator().manual_seed(step)
        loss = m.loss(b)["cmpm_loss"]
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.7 * first
