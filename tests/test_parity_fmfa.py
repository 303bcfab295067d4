"""FMFA/IRRA parity: numbers pinned here were computed by running the released code (IRRA anosorae/IRRA@cfc2378,
FMFA yinhao1102/FMFA@d0a3403) outside this repository on the same inputs; each pin cites the released file:line.
Inputs are a closed-form sin() pattern, not a random generator, so they are identical on every platform.
"""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS
from torch import nn

from harness.config import RUNTIME_CONFIG, load_config, to_plain
from harness.encoders.clip import CLIPEncoder
from harness.errors import ConfigError
from harness.schedulers import fit_schedule
from tipr_methods.fmfa import FMFA
from tipr_methods.fmfa import losses as L

TINY = dict(type="clip", preset="tiny", image_size=(32, 16), context_length=24)
CROSS = ("cross_attn", "cross_modal_transformer", "ln_pre_t", "ln_pre_i", "ln_post")


def det(shape, k, dtype=torch.float64):
    return torch.sin(torch.arange(math.prod(shape), dtype=dtype) * k + 0.5 * k).reshape(shape)


IMG, TXT = det((6, 8), 0.7), det((6, 8), 1.3)
PIDS = torch.tensor([0, 1, 0, 2, 3, 1])


# ------------------------------------------------------------------ losses (to 1e-6)
def test_sdm_matches_irra():
    # IRRA model/objectives.py:6-42 compute_sdm (logit scale 50) = FMFA objectives.py:95-170 with use_weight=False
    assert L.sdm_loss(IMG, TXT, PIDS, 50.0, asdm="off").item() == pytest.approx(29.543094578612262, abs=1e-6)


def test_asdm_code_mode_matches_released_fmfa():
    # FMFA model/objectives.py:130-166 (use_weight=True, coefficient 0.1 at :149, :164); all 6 rows unmatched here
    got = L.sdm_loss(IMG, TXT, PIDS, 50.0, asdm="code", alpha=0.1)
    assert got.item() == pytest.approx(30.499099605677785, abs=1e-6)


@pytest.mark.parametrize("alpha, want", [(10.0, 261.52831803370543), (1.0, 52.74161692412159)])
def test_asdm_paper_mode_matches_the_paper_formula(alpha, want):
    # arXiv 2509.13754v2 §3.2: w_i = alpha * (max_k p_ik - p_ii) + 1 per query, both directions; the pins come from
    # a loop-by-loop transcription of the formula (the released code has no paper mode), with the matching
    # distribution q in float32 as the released SDM builds it (FMFA model/objectives.py:103, 123)
    assert L.sdm_loss(IMG, TXT, PIDS, 50.0, asdm="paper", alpha=alpha).item() == pytest.approx(want, abs=1e-6)


def test_id_loss_matches_released():
    # FMFA model/objectives.py:202-210 compute_id on the released classifier's logits (here in float64)
    cls = nn.Linear(8, 4).double()
    with torch.no_grad():
        cls.weight.copy_(det((4, 8), 0.37) * 0.5)
        cls.bias.copy_(det((4,), 0.91) * 0.1)
    assert L.id_loss(cls, IMG, TXT, PIDS).item() == pytest.approx(1.4433236205363538, abs=1e-6)


def test_itc_matches_irra():
    # IRRA model/objectives.py:50-72 compute_itc (the synth config's extra term)
    assert L.itc_loss(IMG, TXT, 50.0).item() == pytest.approx(13.872836113940291, abs=1e-6)


def test_mlm_loss_on_picked_positions_equals_released_ce_with_ignore_index_0():
    # FMFA model/objectives.py:173-175 compute_mlm over every position of head(x) (model/build_finetune.py:133-137)
    head = nn.Linear(8, 11).double()
    with torch.no_grad():
        head.weight.copy_(det((11, 8), 0.29))
        head.bias.copy_(det((11,), 0.41) * 0.1)
    labels = torch.tensor([[0, 3, 0, 0, 7, 0, 0], [0, 0, 10, 0, 0, 0, 0], [0, 1, 0, 5, 0, 2, 0]])
    assert L.mlm_loss(head, det((3, 7, 8), 0.53), labels).item() == pytest.approx(4.40839331712989, abs=1e-6)


def test_efa_matches_released():
    text, patches = det((3, 5, 8), 0.61), det((3, 7, 8), 0.83)
    e = L.efa_aggregate(text, patches)
    # FMFA model/build_finetune.py:145-162 (min-max, strict > 1/N, row sums, @ patches)
    assert (e * det(e.shape, 0.17)).sum().item() == pytest.approx(-3.8772781408770562, abs=1e-6)
    assert e[0, 0, :4].tolist() == pytest.approx([0.703791122221, 0.892136889003, 0.500371999886, -0.216759021520],
                                                  abs=1e-9)
    # FMFA model/objectives.py:290-294 compute_minmax_info_loss: margins 0.1 (text-E) and 0.9 (patches-E)
    total = L.efa_contrast(text, e, 0.1) + L.efa_contrast(patches, e, 0.9)
    assert total.item() == pytest.approx(5.605891691011559, abs=1e-6)
    # FMFA model/objectives.py:248-288 compute_infonce_loss_cosine at another margin
    assert L.efa_contrast(text, e, 0.2).item() == pytest.approx(2.4721375089826276, abs=1e-6)


# ------------------------------------------------------------------ cross-modal encoder (QuickGELU)
def _cross_former_with_pinned_weights(act=None):
    m = FMFA(num_classes=4, encoder=TINY, cmt_depth=1)
    sd = {k: v for k, v in m.state_dict().items() if k.startswith(CROSS)}
    with torch.no_grad():
        for i, k in enumerate(sorted(sd)):
            ln_weight = k.endswith("weight") and (".ln_" in k or k.startswith("ln_"))
            sd[k].copy_(det(sd[k].shape, 0.05 * (i + 1), torch.float32) * 0.3 + (1.0 if ln_weight else 0.0))
    if act is not None:
        for blk in m.cross_modal_transformer.resblocks:
            blk.mlp.gelu = act
    return m


def test_cross_modal_encoder_matches_released_quickgelu_block():
    # FMFA model/build_finetune.py:28-39, 69-80 (cross-attention without residual, Transformer, ln_post) with the
    # released ResidualAttentionBlock's QuickGELU (model/clip_model.py:247-249, 260); same parameter names
    m = _cross_former_with_pinned_weights()
    q, kv = det((2, 5, 128), 0.23, torch.float32), det((2, 9, 128), 0.19, torch.float32)
    with torch.no_grad():
        x = m._cross_former(q, kv)
    assert (x.double() * det(x.shape, 0.31)).sum().item() == pytest.approx(-1.2781541698429457, abs=1e-4)
    assert x[0, 0, :4].tolist() == pytest.approx([1.752512097359, 2.340200185776, 1.821717023849, 0.662956595421],
                                                  abs=1e-5)
    with torch.no_grad():  # open_clip's default nn.GELU (the former implementation) does not reproduce it
        y = _cross_former_with_pinned_weights(nn.GELU())._cross_former(q, kv)
    assert (y - x).abs().max() > 1e-4
    assert y[0, 0, :4].tolist() != pytest.approx(x[0, 0, :4].tolist(), abs=1e-5)


# ------------------------------------------------------------------ masking
def test_forced_mlm_pick_is_always_the_mask_token():
    # FMFA datasets/bases.py:212-214: when no token was picked, position 1 becomes <|mask|> with its label
    ids = torch.tensor([[49406, 320, 49407] + [0] * 5] * 400)
    masked, labels = L.mask_tokens(ids, 49405, torch.Generator().manual_seed(3))
    u = torch.rand(ids.shape, generator=torch.Generator().manual_seed(3))  # the same first draw as mask_tokens
    forced = u[:, 1] >= 0.15
    assert forced.sum() > 300 and (masked[forced, 1] == 49405).all() and (labels[:, 1] == 320).all()
    assert (labels[:, [0, 2]] == 0).all() and (masked[:, 2] == 49407).all()


# ------------------------------------------------------------------ tokeniser
def test_tokenised_ids_match_irra_tokenize():
    # IRRA datasets/bases.py:42-57 tokenize() with utils/simple_tokenizer.py (SOT 49406, EOT 49407, <|mask|> 49405)
    enc = CLIPEncoder("tiny", image_size=(32, 16), context_length=77)
    want = {
        "A woman in a RED coat, carrying a black bag.":
            [49406, 320, 2308, 530, 320, 736, 7356, 267, 9920, 320, 1449, 3365, 269, 49407],
        "The man's shirt is white; he wears blue jeans & sneakers!":
            [49406, 518, 786, 568, 2523, 533, 1579, 282, 797, 11869, 1746, 10157, 261, 17397, 256, 49407],
        "  young  girl\twith long hair  ": [49406, 1888, 1611, 593, 1538, 2225, 49407],
    }
    ids = enc.tokenize(list(want))
    for row, (cap, w) in zip(ids.tolist(), want.items()):
        assert row[:len(w)] == w and not any(row[len(w):]), cap
    long = enc.tokenize([" ".join(["a tall person wearing a dark grey jacket"] * 12)])[0].tolist()
    assert len(long) == 77 and long[:10] == [49406, 320, 7771, 2533, 3309, 320, 3144, 5046, 6164, 320]
    assert long[-3:] == [7771, 2533, 49407]  # cut at 77 with EOT written over the last slot (bases.py:48-51)
    enc16 = CLIPEncoder("tiny", image_size=(32, 16), context_length=16)
    assert enc16.tokenize(["a woman with a red handbag and a striped scarf walks past the shop"])[0].tolist() == [
        49406, 320, 2308, 593, 320, 736, 22654, 537, 320, 22192, 13365, 8192, 2729, 518, 1557, 49407]
    assert (enc.mask_token_id, enc.sot_token_id, enc.eot_token_id, enc.vocab_size) == (49405, 49406, 49407, 49408)


# ------------------------------------------------------------------ optimiser and schedule
def test_fmfa_has_no_per_parameter_lr_multipliers():
    # FMFA solver/build.py:11-31: every parameter at lr (5e-6, utils/options.py:50) with weight decay 4e-5 (:53); the
    # IRRA multipliers (x5 cross/classifier/mlm_head, bias x2 with wd 0: IRRA solver/build.py:17-24) are commented
    # out; Adam betas (0.9, 0.999), eps 1e-3 (:37-43)
    cfg = load_config("fmfa", "cuhk")
    model = FMFA(num_classes=4, encoder=TINY, cmt_depth=1)
    wrapper = build_optim_wrapper(model, to_plain(cfg.optim_wrapper))  # as the Runner gets it (engine/train.py)
    opt = wrapper.optimizer
    assert isinstance(opt, torch.optim.Adam)
    groups = [(g["lr"], g["weight_decay"], g["eps"], tuple(g["betas"])) for g in opt.param_groups]
    assert set(groups) == {(5e-6, 4e-5, 1e-3, (0.9, 0.999))}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


# IRRA solver/lr_scheduler.py:48-86 LRSchedulerWithWarmup(mode="cosine", warmup_factor=0.1, warmup_epochs=5,
# warmup_method="linear", target_lr=0; utils/options.py:52-60) with base lr 1 and total_epochs 60, read from the
# optimiser at each of the 60 epochs of processor/processor.py:41, 85 (step after every epoch)
IRRA_LR_60 = [
    0.1, 0.28, 0.46, 0.64, 0.82, 1.0, 0.999184551963068, 0.996740867674275, 0.992676917923846, 0.987005958471167,
    0.979746486807249, 0.970922181819762, 0.960561826557425, 0.948699214345679, 0.935373038559889, 0.920626766415591,
    0.904508497187474, 0.887070805319541, 0.868370568938202, 0.848468784327647, 0.827430366972643, 0.805323939817719,
    0.782221609433385, 0.758198730819481, 0.733333661612837, 0.707707506500943, 0.68140385267532, 0.654508497187474,
    0.627109167096744, 0.599295233322873, 0.571157419136643, 0.54278750423942, 0.514278025396848, 0.485721974603152,
    0.45721249576058, 0.428842580863357, 0.400704766677127, 0.372890832903257, 0.345491502812526, 0.31859614732468,
    0.292292493499057, 0.266666338387163, 0.241801269180519, 0.217778390566616, 0.194676060182281, 0.172569633027358,
    0.151531215672353, 0.131629431061797, 0.112929194680459, 0.095491502812526, 0.079373233584409, 0.064626961440111,
    0.051300785654321, 0.039438173442575, 0.029077818180238, 0.020253513192751, 0.012994041528833, 0.007323082076154,
    0.003259132325725, 0.000815448036932,
]
# the same scheduler with total_epochs 100 (FMFA's ICFG-PEDES paper setting), a few epochs
IRRA_LR_100 = {4: 0.82, 5: 1.0, 6: 0.999726628670463, 50: 0.541289672736166, 99: 0.000273371329537}


def _lr_per_epoch(cfg, epochs: int) -> list[float]:
    """The LR of each epoch as the Runner applies it: the config's schedulers built through mmengine's
    PARAM_SCHEDULERS, stepped once after every epoch."""
    p = nn.Parameter(torch.zeros(1))
    opt = OptimWrapper(torch.optim.Adam([p], lr=1.0))
    scheds = [PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=opt, epoch_length=1))
              for s in fit_schedule(cfg.param_scheduler, epochs)[0]]
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        for s in scheds:
            s.step()
    return out


def test_runtime_schedule_matches_irra_at_every_epoch_of_60():
    got = _lr_per_epoch(Config.fromfile(str(RUNTIME_CONFIG)), 60)
    assert len(got) == 60
    for e, (g, w) in enumerate(zip(got, IRRA_LR_60)):
        assert abs(g - w) < 1e-9, (e, g, w)


def test_icfg_paper_schedule_runs_over_100_epochs():
    cfg = load_config(config="methods/fmfa/configs/paper_icfg.py")
    got = _lr_per_epoch(cfg, int(cfg.train.epochs))
    assert len(got) == 100 and all(abs(got[e] - w) < 1e-9 for e, w in IRRA_LR_100.items())


def test_synth_configs_keep_their_own_schedule():
    cfg = load_config("fmfa", "synth")
    assert [s["type"] for s in cfg.param_scheduler] == ["LinearLR", "CosineAnnealingLR"]
    got = _lr_per_epoch(cfg, 6)
    assert got[0] == pytest.approx(0.1) and got[2] == pytest.approx(1.0) and got[-1] < got[3]


# ------------------------------------------------------------------ paper settings and deviations
@pytest.mark.parametrize("name, dataset, margins, alpha, epochs", [
    ("paper_cuhk", "cuhk", (0.1, 0.1), 10.0, 60),
    ("paper_icfg", "icfg", (0.2, 1.0), 10.0, 100),
    ("paper_rstp", "rstp", (0.2, 0.8), 1.0, 60),
])
def test_paper_configs_carry_the_papers_settings(name, dataset, margins, alpha, epochs):
    # arXiv 2509.13754v2 §4.1 and Table 1
    cfg = load_config(config=f"methods/fmfa/configs/{name}.py")
    assert cfg.dataset.type == dataset and cfg.dataset.root  # the dataset's defaults are merged underneath
    m = cfg.method
    assert (m.asdm_mode, tuple(m.efa_margins), m.asdm_alpha) == ("paper", margins, alpha)
    assert cfg.train.epochs == epochs and cfg.optim_wrapper.optimizer.lr == 1e-5
    kwargs = {k: v for k, v in m.to_dict().items() if k != "type"}
    model = FMFA(num_classes=4, **dict(kwargs, encoder=TINY))
    ids = {d.id for d in model.deviations()}
    assert {"asdm-paper", "efa-row-normalise"} <= ids and "losses" not in ids


def test_paper_base_without_a_dataset_setting_is_refused():
    # paper.py alone would run the code's 0.1/0.9 margins under the paper's name, a setting no table reports
    with pytest.raises(ConfigError, match="method.efa_margins is not set: the paper's EFA margins depend on the"):
        load_config(config="methods/fmfa/configs/paper.py", dataset="rstp")
    with pytest.raises(ConfigError, match="efa_margins is not set"):
        FMFA(num_classes=4, encoder=TINY, efa_margins=None)
    assert FMFA(num_classes=4, encoder=TINY, losses=("asdm", "id"), efa_margins=None).deviations()


def test_deviations_follow_the_config():
    from harness.registry import build_method

    def ids(options=None, dataset="cuhk", config=None):
        opts = dict({"method.encoder.preset": "tiny"}, **(options or {}))
        cfg = load_config("fmfa", None if config else dataset, config=config, options=opts)
        return {d.id for d in build_method(cfg.method, 4).deviations(to_plain(cfg))}

    # Written down from yinhao1102/FMFA@d0a3403, not read back from the implementation: fp16 weights + autocast
    # (build_finetune.py:95, 190), one ID class per pair (datasets/build.py:251), min-max without eps
    # (build_finetune.py:151), best epoch on the test set (processor_finetune.py:48-50), torch.argsort
    # (utils/metrics.py:11); and no released CLIP weights or preset here (tiny, random).
    always = {"fp32", "id-classes", "efa-minmax-eps", "checkpoint-selection", "tie-rule", "encoder-preset",
              "random-init"}
    assert ids() == always  # default.py is the released recipe: Adam 5e-6, warm-up cosine, 60 epochs, batch 64
    # synth: itc added, 1 cross-modal layer, 64x32 images / 48 tokens, Adam 5e-4 eps 1e-8, LinearLR + cosine, 6 epochs
    assert ids(dataset="synth") == always | {"losses", "cmt-depth", "input-size", "optimizer", "schedule", "epochs"}
    # paper_icfg.py: paper A-SDM, margins 0.2/1.0, no row normalisation, lr 1e-5, 100 epochs
    assert ids(config="methods/fmfa/configs/paper_icfg.py") == always | {
        "asdm-paper", "efa-margins", "efa-row-normalise", "optimizer", "epochs"}
    # one recipe key at a time
    assert ids({"train.batch_size": 32}) == always | {"batch-size"}
    assert ids({"train.sampler": dict(type="identity", num_instances=4)}) == always | {"sampler"}
    assert ids({"optim_wrapper.clip_grad": dict(max_norm=1.0)}) == always | {"grad-steps"}
    no_efa = ids({"method.losses": ["asdm", "id", "mlm"], "method.efa_margins": (0.3, 0.3)})
    assert no_efa == always | {"losses"}  # EFA switched off: its margins are not in effect
    for d in FMFA(num_classes=4, encoder=TINY, asdm_mode="paper", asdm_alpha=10.0).deviations():
        assert d.released and d.ours and d.as_dict()["id"] == d.id
