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

    tok = BertEncoder(preset="tiny", vocab_file=_vocab_file(tmp_path), max_length=100).tokenize(CAPTIONS)
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
