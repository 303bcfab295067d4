"""Parity with the released IVT and LGUR code: numbers derived by running the released definitions.

Released sources: TencentYoutuResearch/PersonRetrieval-IVT @ f205788 ("IVT") and ZhiyinShao-H/LGUR @ c203cc7
("LGUR"). Each pinned number names the released file and lines it comes from; none of that code is here.
"""
import math

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
# (configs/CUHK_PEDES/vit_base_uvt_bert.yml). Index i = the harness' epoch i (from 0).
RELEASED_LR_WEIGHTS = [
    0.00104, 0.00203, 0.00302, 0.00401, 0.00497865492912766, 0.00496928240978487, 0.00495822099437207,
    0.00494547826383084, 0.0049310629513922, 0.00491498493659123, 0.00489725523849614, 0.00487788600815641,
    0.00485689052027499, 0.00483428316411052, 0.00481007943361566, 0.00478429591681829, 0.0047569502844529,
    0.00472806127784998, 0.0046976486960916, 0.00466573338244218, 0.00463233721006346, 0.00459748306702383,
    0.00456119484061193, 0.00452349740096549, 0.00448441658402663, 0.00444397917383514, 0.00440221288417208,
    0.0043591463395661, 0.00431480905567566, 0.00426923141906044, 0.00422244466635592, 0.00417448086286535,
    0.00412537288058381, 0.00407515437566934, 0.00402385976537676, 0.00397152420446972, 0.00391818356112746,
    0.00386387439236249, 0.00380863391896629, 0.0037525, 0.00369551110684772, 0.00363770629685017,
    0.0035791251865367, 0.00351980792447412, 0.0034597951637509, 0.00339912803411553, 0.00333784811378826,
    0.00327599740096549, 0.00321361828503629, 0.00315075351753079, 0.00308744618282048, 0.00302373966859031,
    0.00295967763610291, 0.00289530399027538, 0.00283066284958903, 0.0027657985158528, 0.00270075544384097,
    0.00263557821082615, 0.00257031148602814, 0.002505, 0.00243968851397186, 0.00237442178917386,
    0.00230924455615903, 0.00224420148414721, 0.00217933715041097, 0.00211469600972462, 0.00205032236389709,
    0.00198626033140969, 0.00192255381717952, 0.00185924648246921, 0.00179638171496371, 0.00173400259903451,
    0.00167215188621174, 0.00161087196588448, 0.0015502048362491, 0.00149019207552588, 0.0014308748134633,
    0.00137229370314983, 0.00131448889315228, 0.0012575, 0.00120136608103371, 0.00114612560763751,
    0.00109181643887254, 0.00103847579553028, 0.000986140234623242, 0.000934845624330656, 0.000884627119416192,
    0.00083551913713465, 0.000787555333644084, 0.000740768580939564, 0.000695190944324342, 0.000650853660433902,
    0.000607787115827923, 0.000566020826164858, 0.000525583415973368, 0.000486502599034506, 0.000448805159388071,
    0.000412516932976167, 0.00037766278993654, 0.000344266617557825, 0.000312351303908397, 0.000281938722150022,
    0.000253049715547098, 0.000225704083181711, 0.00019992056638434, 0.000175716835889482, 0.000153109479725015,
    0.000132113991843592, 0.000112744761503859, 9.50150634087746e-05, 7.8937048607797e-05, 6.45217361691548e-05,
    5.17790056279335e-05, 4.07175902151315e-05, 3.13450708723431e-05, 2.36678710561579e-05, 1.76912523358457e-05,
    1.34193107873383e-05, 1.08549741859846e-05, 1e-05,
]
RELEASED_LR_BIASES = [
    0.00204, 0.00403, 0.00602, 0.00801, 0.00995726708256218, 0.00993850326127271, 0.00991635826328195,
    0.00989084726566536, 0.0098619877523864, 0.0098297995023139, 0.00979430457566662, 0.00975552729889429,
    0.00971349424800543, 0.00966823423035352, 0.00961977826489388, 0.00956815956092479, 0.00951341349532756,
    0.0094555775883209, 0.00939469147774652, 0.00933079689190327, 0.00926393762094869, 0.00919415948688739,
    0.00912151031216697, 0.00904603988690286, 0.00896779993475472, 0.00888684407747757, 0.00880322779817216,
    0.00871700840325958, 0.00862824498320638, 0.0085369983720268, 0.0084433311055903, 0.0083473073787625,
    0.00824899300140927, 0.00814845535329394, 0.00804576333789856, 0.0079409873352009, 0.00783419915343954,
    0.00772547197990006, 0.00761488033075616, 0.0075025, 0.00738840800749674, 0.00727268254619904,
    0.00715540292855743, 0.00703664953216362, 0.00691650374466362, 0.00679504790797878, 0.00667236526187269,
    0.00654853988690286, 0.00642365664679609, 0.00629780113028709, 0.00617105959246025, 0.00604351889563471,
    0.00591526644983328, 0.00578639015287595, 0.00565697833013916, 0.00552711967402193, 0.00539690318316059,
    0.0052664181014335, 0.00513575385679783, 0.005005, 0.00487424614320217, 0.0047435818985665,
    0.00461309681683942, 0.00448288032597807, 0.00435302166986084, 0.00422360984712405, 0.00409473355016672,
    0.00396648110436529, 0.00383894040753975, 0.00371219886971291, 0.00358634335320391, 0.00346146011309714,
    0.00333763473812731, 0.00321495209202123, 0.00309349625533638, 0.00297335046783638, 0.00285459707144257,
    0.00273731745380096, 0.00262159199250326, 0.0025075, 0.00239511966924384, 0.00228452802009994,
    0.00217580084656046, 0.0020690126647991, 0.00196423666210144, 0.00186154464670606, 0.00176100699859073,
    0.0016626926212375, 0.0015666688944097, 0.0014730016279732, 0.00138175501679362, 0.00129299159674042,
    0.00120677220182785, 0.00112315592252243, 0.00104220006524528, 0.000963960113097138, 0.000888489687833033,
    0.000815840513112607, 0.00074606237905131, 0.000679203108096729, 0.000615308522253484, 0.000554422411679103,
    0.000496586504672447, 0.000441840439075208, 0.000390221735106123, 0.000341765769646477, 0.000296505751994569,
    0.000254472701105708, 0.000215695424333376, 0.000180200497686104, 0.000148012247613606, 0.000119152734334641,
    9.36417367180473e-05, 7.14967387272874e-05, 5.27329174378171e-05, 3.73631326354744e-05, 2.53979180030258e-05,
    1.68454739009037e-05, 1.17116617470915e-05, 1e-05,
]
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
