"""Parity with the released IVT and LGUR code: numbers derived by running the released definitions.

Released sources: TencentYoutuResearch/PersonRetrieval-IVT @ f205788 ("IVT") and ZhiyinShao-H/LGUR @ c203cc7
("LGUR"). Each pinned number names the released file and lines it comes from; none of that code is here.
"""
import json
import math
from pathlib import Path

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

from harness.config import load_config
from harness.engine.model import HarnessModel
from tipr_methods.ivt import IVT
from tipr_methods.ivt.losses import cmpm_loss
from tipr_methods.ivt.views import phrase_candidates, word_candidates
from tipr_methods.lgur import LGUR
from tipr_methods.lgur.modules import ranking_loss, semi_hard_ranking_loss

TINY_IVT = dict(vision=dict(type="clip", preset="tiny", image_size=(32, 16)), text=dict(type="bert", preset="tiny"),
                stride=6)
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "man", "woman", "in", "red", "coat", ",", ".", "with",
         "long", "hair", "black", "and", "white", "shoes", "carries", "bag", "blue", "##s", "the", "jean"]
CAPTIONS = ["A man in a red coat.", "The woman with long hair, blue jeans and white shoes carries a black bag",
            "red " * 103]

# IVT: lr per epoch of the released timm CosineLRScheduler (solver/cosine_lr.py:61-92) as built by
# solver/scheduler_factory.py:7-36 (t_initial=120, lr_min=0.002*0.005, warmup_lr_init=0.01*0.005, warmup_t=5)
# and stepped with scheduler.step(epoch), epoch = 1..120, before each epoch (processor/processor.py:105-109);
# SGD groups from solver/make_optimizer.py:34-49 with BASE_LR 0.005, BIAS_LR_FACTOR 2
# (configs/CUHK_PEDES/vit_base_uvt_bert.yml). Row i of tests/data/ivt_released_lr.json = the harness' epoch i
# (from 0): the lr of the weight group and of the bias group (x2).
_RELEASED_LR = json.loads((Path(__file__).parent / "data" / "ivt_released_lr.json").read_text())
RELEASED_LR_WEIGHTS = [row["weights"] for row in _RELEASED_LR]
RELEASED_LR_BIASES = [row["biases"] for row in _RELEASED_LR]
# the same released scheduler with MAX_EPOCHS = 7 (t_initial follows the number of epochs)
RELEASED_LR_7_EPOCHS = [(0.00104, 0.00204), (0.00203, 0.00403), (0.00302, 0.00602), (0.00401, 0.00801),
                        (0.00094939294436246, 0.0018906684397156264), (0.00025708267458346456, 0.0005046605048274169),
                        (1e-05, 1e-05)]


def _ivt_optimizer_and_schedule(epochs):
    cfg = load_config("ivt", "cuhk")
    model = HarnessModel(IVT(**TINY_IVT))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper.to_dict())
    (sched,) = cfg.param_scheduler
    assert sched["end"] == "max_epochs"  # the harness puts the number of epochs there
    return model, wrapper, PARAM_SCHEDULERS.build(dict(sched, end=epochs, optimizer=wrapper))


def _lr_of(model, wrapper, name):
    param = dict(model.named_parameters())[name]
    (group,) = [g for g in wrapper.param_groups if any(p is param for p in g["params"])]
    return group


def test_ivt_lr_every_epoch_matches_the_released_schedule():
    model, wrapper, sched = _ivt_optimizer_and_schedule(120)
    weight, bias = "method.blocks.0.attn.in_proj_weight", "method.blocks.0.attn.in_proj_bias"
    for epoch in range(120):  # the Runner steps the scheduler after each epoch
        assert abs(_lr_of(model, wrapper, weight)["lr"] - RELEASED_LR_WEIGHTS[epoch]) < 1e-9, epoch
        assert abs(_lr_of(model, wrapper, bias)["lr"] - RELEASED_LR_BIASES[epoch]) < 1e-9, epoch
        wrapper.step()
        sched.step()
    model, wrapper, sched = _ivt_optimizer_and_schedule(7)
    for w, b in RELEASED_LR_7_EPOCHS:
        assert abs(_lr_of(model, wrapper, weight)["lr"] - w) < 1e-9
        assert abs(_lr_of(model, wrapper, bias)["lr"] - b) < 1e-9
        wrapper.step()
        sched.step()


def test_ivt_every_bias_gets_twice_the_lr_and_the_same_decay():
    # solver/make_optimizer.py:39-43: lr = BASE_LR, or BASE_LR * BIAS_LR_FACTOR (2) when "bias" is in the name;
    # weight decay 1e-4 for both (WEIGHT_DECAY, WEIGHT_DECAY_BIAS in the YAML)
    model, wrapper, _ = _ivt_optimizer_and_schedule(120)
    for name, _ in model.named_parameters():
        group = _lr_of(model, wrapper, name)
        assert group["initial_lr"] == pytest.approx(0.01 if "bias" in name else 0.005), name
        assert group["weight_decay"] == pytest.approx(1e-4), name
    # the ones mmengine's bias_lr_mult would have left at 1x (LayerNorms, attention in-projection, text LN)
    for name in ["method.blocks.0.ln_1.bias", "method.blocks.1.ln_2.bias", "method.blocks.0.attn.in_proj_bias",
                 "method.ln_pre.bias", "method.norm.bias", "method.text_embed.embeddings.LayerNorm.bias"]:
        assert _lr_of(model, wrapper, name)["initial_lr"] == pytest.approx(0.01), name


def test_ivt_cmpm_matches_the_released_loss():
    # loss/cmps_loss.py:24-57 (Loss.forward) run in float64 on these seeded inputs
    g = torch.Generator().manual_seed(0)
    x, z = 3 * torch.randn(6, 8, generator=g).double(), 3 * torch.randn(6, 8, generator=g).double()
    assert abs(float(cmpm_loss(x, z, torch.tensor([0, 0, 1, 1, 2, 3]))) - 24.524089594295827) < 1e-6
    g = torch.Generator().manual_seed(1)  # a 3-level batch: pids repeated per level (processor.py:122)
    x, z = torch.randn(12, 16, generator=g).double(), torch.randn(12, 16, generator=g).double()
    assert abs(float(cmpm_loss(x, z, torch.tensor([0, 1, 1, 2]).repeat(3))) - 18.01394988724092) < 1e-6


def _vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return str(path)


def test_ivt_token_ids_match_the_released_tokenizer(tmp_path):
    # model/backbones/tokenization_bert.py:261-262 ([CLS] X, no [SEP]) called as processor.py:125
    # (padding='longest', max_length=100: no truncation), on the vocabulary above
    m = IVT(**dict(TINY_IVT, text=dict(type="bert", preset="tiny", vocab_file=_vocab_file(tmp_path))))
    tok = m.tokenize(CAPTIONS)
    assert tok["input_ids"].shape == (3, 104)
    assert tok["input_ids"][0, :8].tolist() == [2, 5, 6, 8, 5, 9, 10, 12]
    assert tok["input_ids"][1, :17].tolist() == [2, 24, 7, 13, 14, 15, 11, 22, 25, 23, 17, 18, 19, 20, 5, 16, 21]
    assert tok["input_ids"][2].tolist() == [2] + [9] * 103
    assert tok["attention_mask"].sum(1).tolist() == [8, 17, 104]
    assert tok["input_ids"][0, 8:].eq(0).all() and tok["input_ids"][1, 17:].eq(0).all()


def test_ivt_views_match_the_released_rules():
    # processor.py:59-78 (phrase: every outcome of random.sample) and datasets/bases.py:239-247 (word)
    cap = "A man wears a red jacket, black trousers and white shoes. He carries a blue backpack."
    assert sorted(phrase_candidates(cap)) == ["A man wears a red jacket", "He carries a blue backpack",
                                              "black trousers and white shoes"]
    assert word_candidates(cap.lower()) == ["a man wears a red jacket", "black trousers and white shoes",
                                            "he carries a blue backpack"]
    assert phrase_candidates("a cap, a hat") == word_candidates("a cap, a hat.") == ["a hat"]
    assert phrase_candidates("[tall man in a [red] coat.]") == ["tall man in a [red] coat"]


def test_lgur_token_ids_match_the_released_preprocessing(tmp_path):
    # processed_data_singledata_CUHK.py:164 tokenizer.encode(caption, add_special_tokens=True), then cut / padded
    # to caption_length_max = 100 (data/dataset.py:68-77), so the long caption loses its [SEP]
    from harness.encoders.bert import BertEncoder

    tok = BertEncoder(preset="tiny", vocab_file=_vocab_file(tmp_path), context_length=100).tokenize(CAPTIONS)
    assert tok["input_ids"][0, :9].tolist() == [2, 5, 6, 8, 5, 9, 10, 12, 3]
    assert tok["input_ids"][1, :18].tolist() == [2, 24, 7, 13, 14, 15, 11, 22, 25, 23, 17, 18, 19, 20, 5, 16, 21, 3]
    assert tok["input_ids"][2].tolist() == [2] + [9] * 99
    assert tok["attention_mask"].sum(1).tolist() == [9, 18, 100]


def test_lgur_ranking_loss_matches_the_released_loss():
    # loss/RankingLoss.py:23-79 on train_mydecoder_pixelvit_txtimg_3_bert.py:45-53's similarity, float64; every
    # anchor has at most one semi-hard negative here, so the released np.random.choice has nothing to choose
    g = torch.Generator().manual_seed(2)
    a = torch.randn(6, 3, 4, generator=g)
    b = a + 0.8 * torch.randn(6, 3, 4, generator=g)
    pids = torch.tensor([0, 0, 1, 1, 2, 3])
    released = semi_hard_ranking_loss(a.double(), b.double(), pids, 0.3, text_anchor="released")
    assert abs(float(released) - 0.04585039472038893) < 1e-6
    # "corrected": the same triplets with the text-anchor hinge on S^T (not a released number)
    corrected = semi_hard_ranking_loss(a.double(), b.double(), pids, 0.3, text_anchor="corrected")
    assert abs(float(corrected) - 0.0853921360438622) < 1e-6
    # no semi-hard negative anywhere: the released fallback triplet (RankingLoss.py:55-56) carries the loss
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(4, 2, 3, generator=g), torch.randn(4, 2, 3, generator=g)
    released = semi_hard_ranking_loss(a.double(), b.double(), torch.arange(4), 0.3, text_anchor="released")
    assert abs(float(released) - 1.2903208957781942) < 1e-6
    corrected = semi_hard_ranking_loss(a.double(), b.double(), torch.arange(4), 0.3, text_anchor="corrected")
    assert abs(float(corrected) - 1.4564694136114502) < 1e-6
    # the audit's example (fidelity_audit.md #10): released 0.20, corrected 0.40
    s = torch.tensor([[0.9, 0.8, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 0.9]], dtype=torch.float64)
    assert math.isclose(float(ranking_loss(s, torch.arange(3), 0.3, "released")), 0.2, abs_tol=1e-6)
    assert math.isclose(float(ranking_loss(s, torch.arange(3), 0.3, "corrected")), 0.4, abs_tol=1e-6)


def test_lgur_id_loss_matches_the_released_loss():
    # loss/Id_loss.py:44-58 per part, averaged over parts (train_mydecoder_pixelvit_txtimg_3_bert.py:55-71), float64
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 3, 5, generator=g).double(), torch.randn(6, 3, 5, generator=g).double()
    m = LGUR(num_classes=4, vision=dict(type="clip", preset="tiny", image_size=(32, 16)),
             text=dict(type="bert", preset="tiny"), dim=32, dict_size=4, num_prototypes=3, part_dim=5,
             recon=dict(heads=2, dim_head=8, mlp_dim=16), proto=dict(heads=2, dim_head=8, mlp_dim=16)).double()
    with torch.no_grad():
        for c in m.classifiers:
            c.weight.copy_(torch.randn(4, 5, generator=g))
            c.bias.copy_(torch.randn(4, generator=g))
    assert abs(float(m.id_loss(a, b, torch.tensor([0, 0, 1, 1, 2, 3])).detach()) - 4.11554756512108) < 1e-6


# ------------------------------------------------------------------ released modules, run once (tests/data/*.json)
# tests/data/ivt_released_blocks.json and lgur_released_decoder.json hold fixed weights, inputs and the released
# modules' outputs (float64), recorded once by running the released code outside this repository; each file's
# "source" names the released classes and lines. The key maps below are the correspondence of the parameters.
_DATA = Path(__file__).parent / "data"


def _ivt_blocks_from(weights):
    from collections import OrderedDict

    from torch import nn

    from harness.encoders.clip import VisionBlockParts
    from tipr_methods.ivt.model import SharedBlock

    w = {k: torch.tensor(v, dtype=torch.float64) for k, v in weights.items()}
    dim = w["norm.weight"].shape[0]
    blocks = []
    for i in range(2):
        p = lambda n, i=i: w[f"blocks.{i}.{n}"]  # noqa: E731
        ln1, ln2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        mlp = nn.Sequential(OrderedDict(fc1=nn.Linear(dim, p("mlp_vis.fc1.weight").shape[0]), act=nn.GELU(),
                                        fc2=nn.Linear(p("mlp_vis.fc1.weight").shape[0], dim)))
        fc1, fc2 = nn.Linear(dim, p("mlp_txt.fc1.weight").shape[0]), nn.Linear(p("mlp_txt.fc1.weight").shape[0], dim)
        pairs = [(ln1.weight, "norm1.weight"), (ln1.bias, "norm1.bias"), (ln2.weight, "norm2.weight"),
                 (ln2.bias, "norm2.bias"), (attn.in_proj_weight, "attn.qkv.weight"),
                 (attn.in_proj_bias, "attn.qkv.bias"),
                 (attn.out_proj.weight, "attn.proj.weight"), (attn.out_proj.bias, "attn.proj.bias"),
                 (mlp.fc1.weight, "mlp_vis.fc1.weight"), (mlp.fc1.bias, "mlp_vis.fc1.bias"),
                 (mlp.fc2.weight, "mlp_vis.fc2.weight"), (mlp.fc2.bias, "mlp_vis.fc2.bias"),
                 (fc1.weight, "mlp_txt.fc1.weight"), (fc1.bias, "mlp_txt.fc1.bias"), (fc2.weight, "mlp_txt.fc2.weight"),
                 (fc2.bias, "mlp_txt.fc2.bias")]
        with torch.no_grad():
            for param, name in pairs:
                param.data = p(name).clone()
        blocks.append(SharedBlock(VisionBlockParts(ln1, attn, ln2, mlp), (fc1, fc2), 0.0).double())
    norm = nn.LayerNorm(dim, eps=1e-6).double()
    norm.weight.data, norm.bias.data = w["norm.weight"].clone(), w["norm.bias"].clone()
    return blocks, norm


@pytest.mark.parametrize("case", ["image", "text", "image_nodrop"])
def test_ivt_shared_blocks_with_token_dropping_match_the_released_modules(case):
    ref = json.loads((_DATA / "ivt_released_blocks.json").read_text())
    blocks, norm = _ivt_blocks_from(ref["weights"])
    c = ref["cases"][case]
    if case.startswith("image"):
        x = torch.tensor(ref["image_tokens"], dtype=torch.float64)
        x = torch.cat([torch.zeros(x.shape[0], 1, x.shape[2], dtype=x.dtype), x], dim=1)  # the zero [CLS]
        mask, modality = torch.ones(x.shape[:2], dtype=torch.long), "image"
    else:
        x = torch.tensor(ref["text_tokens"], dtype=torch.float64)
        mask, modality = torch.tensor(ref["text_mask"]), "text"
    n = x.shape[1]
    # released: n_drop ~ random.randint(0, int(0.2 * N)) with N counting [CLS] (vit_vl.py:993-995)
    assert c["n_drop_range"] == ([0, int(0.2 * n)] if case != "image_nodrop" else [0, 0])
    released_order = [0] + (c["select"] if case != "image_nodrop" else list(range(1, n)))
    keep = sorted(released_order)  # ours keeps the survivors in position order (drop_tokens); attention does not care
    h, m = x[:, keep], mask[:, keep]
    with torch.no_grad():
        for blk in blocks:
            h = blk.eval()(h, modality, m == 0)
        ours = norm(h)
    want = torch.tensor(c["output"], dtype=torch.float64)  # rows in the released order
    back = [keep.index(i) for i in released_order]
    assert torch.allclose(ours[:, back], want, atol=1e-12, rtol=0)


def test_ivt_token_drop_count_has_the_released_range_and_keeps_cls():
    from tipr_methods.ivt.losses import drop_tokens

    ref = json.loads((_DATA / "ivt_released_blocks.json").read_text())
    for case, n in (("image", 11), ("text", 7)):
        lo, hi = ref["cases"][case]["n_drop_range"]  # random.randint is inclusive: hi + 1 values, equally likely
        x = torch.arange(n, dtype=torch.float64).view(1, n, 1)
        counts = torch.zeros(hi + 1)
        for s in range(300):
            y, _ = drop_tokens(x, None, 0.2, torch.Generator().manual_seed(s))
            assert y[0, 0, 0] == 0  # [CLS] is never dropped
            counts[n - y.shape[1]] += 1
        assert lo == 0 and (counts > 0).all()
        p = 1 / (hi + 1)
        assert ((counts / 300 - p).abs() < 4 * (p * (1 - p) / 300) ** 0.5).all()  # 4 sigma Monte Carlo


def test_lgur_decoder_matches_the_released_mydecoder():
    from tipr_methods.lgur.modules import CrossAttentionDecoder

    ref = json.loads((_DATA / "lgur_released_decoder.json").read_text())
    w = {k: torch.tensor(v, dtype=torch.float64) for k, v in ref["weights"].items()}
    dec = CrossAttentionDecoder(8, depth=2, heads=2, dim_head=4, mlp_dim=16).double().eval()
    names = {"norm.weight": "0.fn.norm.weight", "norm.bias": "0.fn.norm.bias", "to_q.weight": "0.fn.fn.to_q.weight",
             "to_kv.weight": "0.fn.fn.to_kv.weight", "to_out.weight": "0.fn.fn.to_out.0.weight",
             "to_out.bias": "0.fn.fn.to_out.0.bias", "norm_ff.weight": "1.fn.norm.weight",
             "norm_ff.bias": "1.fn.norm.bias", "ff.0.weight": "1.fn.fn.net.0.weight", "ff.0.bias": "1.fn.fn.net.0.bias",
             "ff.2.weight": "1.fn.fn.net.3.weight", "ff.2.bias": "1.fn.fn.net.3.bias"}
    sd = {f"layers.{i}.{ours}": w[f"transformer.layers.{i}.{theirs}"]
          for i in range(2) for ours, theirs in names.items()}
    assert set(sd) == set(dec.state_dict()) and len(w) == len(sd)  # every released parameter has its place
    dec.load_state_dict(sd)
    q, mem = torch.tensor(ref["queries"], dtype=torch.float64), torch.tensor(ref["memory"], dtype=torch.float64)
    with torch.no_grad():
        masked = dec(q, mem, torch.tensor(ref["kv_mask"]))
        unmasked = dec(q, mem)
    assert torch.allclose(masked, torch.tensor(ref["masked"], dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.allclose(unmasked, torch.tensor(ref["unmasked"], dtype=torch.float64), atol=1e-12, rtol=0)
