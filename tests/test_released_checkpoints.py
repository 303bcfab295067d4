"""``harness eval --released irra|fmfa``: checkpoints in the exact layout the released code writes.

The files are built the way the released ``Checkpointer`` saves them (IRRA utils/checkpoint.py:28-45,
processor/processor.py:18-20, 104-105): ``{model, optimizer, scheduler, epoch, num_epoch, iteration}``, the model's
keys prefixed ``module.`` (FMFA train.py:73 ``nn.DataParallel``), CLIP under ``base_model.`` (model/build.py:16) and
the heads under their released names (model/build.py:22-57), Conv/Linear/attention tensors in fp16
(model/clip_model.py:484-505) and the rest fp32. The weights are a tiny config of our own model renamed to those keys.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import write_dataset
from harness.cli import main
from harness.config import load_config
from harness.registry import build_method
from harness.errors import CheckpointError
from harness.engine.released_checkpoints import evaluate_released
from tipr_methods.irra import IRRA
from tipr_methods.irra.released import FMFA_LAYOUT, HEADS, IRRA_LAYOUT, KEY_TABLE

TINY = dict(encoder=dict(preset="tiny", image_size=(32, 16), context_length=24), cmt_depth=1)

# the released CLIP's parameter names (model/clip_model.py:274-284 VisionTransformer, :234-241 blocks, :350-362 CLIP)
RELEASED_CLIP_KEYS = {
    "visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding", "visual.ln_pre.weight",
    "visual.ln_pre.bias", "visual.ln_post.weight", "visual.ln_post.bias", "visual.proj", "token_embedding.weight",
    "positional_embedding", "ln_final.weight", "ln_final.bias", "text_projection"}
RELEASED_BLOCK_KEYS = {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias",
                       "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
                       "mlp.c_proj.bias", "ln_2.weight", "ln_2.bias"}


def test_key_table_is_the_released_one():
    # model/build.py:16 base_model; :22 classifier; :27 cross_attn; :30 cross_modal_transformer; :36-38 ln_pre_t,
    # ln_pre_i, ln_post; :53 mlm_head; FMFA model/build_finetune.py:17-58 the same names
    assert KEY_TABLE == (("base_model.", "encoder.clip."),)
    assert HEADS == ("classifier", "cross_attn", "cross_modal_transformer", "ln_pre_t", "ln_pre_i", "ln_post",
                     "mlm_head")
    assert IRRA_LAYOUT.strip == FMFA_LAYOUT.strip == "module." and IRRA_LAYOUT.state_key == "model"
    # every CLIP key of the released model maps onto a parameter of ours, and ours has only logit_scale extra
    model = IRRA(num_classes=3, **TINY)
    ours = {k for k in model.state_dict() if k.startswith("encoder.clip.")}
    mapped = {IRRA_LAYOUT.our_name("base_model." + k) for k in RELEASED_CLIP_KEYS}
    mapped |= {IRRA_LAYOUT.our_name(f"base_model.{tower}transformer.resblocks.{i}.{k}")
               for tower in ("visual.", "") for i in range(2) for k in RELEASED_BLOCK_KEYS}
    assert ours - mapped == {"encoder.clip.logit_scale"} and mapped <= ours


def _released_file(path, cls_name="irra", num_classes=3, fp16=True, prefix="module.", drop=(), reshape=None, seed=0):
    """A checkpoint in the released layout, from a tiny model of ours; returns (path, the model)."""
    cfg = load_config(cls_name, "cuhk", options=dict(method=TINY))
    torch.manual_seed(seed)
    model = build_method(cfg.method, num_classes)
    half_types = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.MultiheadAttention)
    half = set()
    for name, mod in model.named_modules():
        if isinstance(mod, half_types):
            half |= {f"{name}.{p}" for p, _ in mod.named_parameters(recurse=False)}
    half |= {"encoder.clip.text_projection", "encoder.clip.visual.proj"}
    sd = {}
    for k, v in model.state_dict().items():
        if k == "encoder.clip.logit_scale" or k in drop:
            continue  # the released model has no logit_scale (model/clip_model.py:363)
        rk = k.replace("encoder.clip.", "base_model.", 1)
        t = v.detach().clone()
        if reshape and k == reshape:
            t = torch.zeros(t.shape[0] + 1, *t.shape[1:])
        sd[prefix + rk] = t.half() if (fp16 and k in half) else t
    opt = torch.optim.Adam([p for p in model.parameters()], lr=1e-5, eps=1e-3)
    torch.save(dict(model=sd, optimizer=opt.state_dict(), scheduler=dict(last_epoch=37, base_lrs=[1e-5]), epoch=37,
                    num_epoch=60, iteration=0), path)
    return path, model


@pytest.fixture
def cuhk(tmp_path):
    return write_dataset(tmp_path / "CUHK-PEDES", "cuhk")


@pytest.mark.parametrize("name, fp16", [("irra", True), ("irra", False), ("fmfa", True)])
def test_released_file_is_scored_like_the_same_weights_in_our_model(tmp_path, cuhk, name, fp16):
    ckpt, model = _released_file(tmp_path / "best0.pth", name, fp16=fp16)
    opts = dict(method=TINY)
    [rec_dir] = evaluate_released(name, str(ckpt), "cuhk", str(cuhk), options=opts, results_dir=str(tmp_path / "r"))
    rec = json.loads((rec_dir / "record.json").read_text())
    assert rec["kind"] == "eval" and rec["method"] == name and rec["selection"]["rule"] == "released"
    assert rec["checkpoint"]["epoch"] == 37 and rec["released"]["num_epoch"] == 60
    assert rec["released"]["sha256"] == rec["checkpoint"]["sha256"] and len(rec["checkpoint"]["sha256"]) == 64
    assert rec["released"]["set_aside"] == sorted(HEADS)
    assert rec["released"]["training"]["epochs"] == 60
    assert rec["encoder_weights"][0]["sha256"] == rec["checkpoint"]["sha256"]  # not 'random-init'
    assert rec["train_dataset"] == rec["eval_dataset"] == "cuhk" and rec["train_fingerprint"]["annotation_sha256"]
    # the same weights, rounded as the file stores them, evaluated directly: identical per-query ranks
    from harness.data.splits import EvalSet
    from harness.data.resolve import resolve_dataset
    from harness.engine.evaluate import evaluate_method
    splits = resolve_dataset(load_config(name, "cuhk").dataset, str(cuhk))
    pq = np.load(rec_dir / "per_query.npz")
    ev = EvalSet.from_records(splits.test, splits.image_root)
    want = evaluate_method(_rounded(model, ckpt), ev, progress=False)
    assert np.array_equal(pq["first_rank"], want.first_rank)
    assert np.allclose(pq["ap"], want.ap, atol=1e-6)


def _rounded(model, ckpt):
    """``model`` with the file's (fp16-rounded) encoder tensors, loaded without the released-checkpoint path."""
    sd = torch.load(ckpt, weights_only=True)["model"]
    own = {k.removeprefix("module.").replace("base_model.", "encoder.clip.", 1): v for k, v in sd.items()}
    model.load_state_dict({k: v for k, v in own.items() if k.startswith("encoder.")}, strict=False)
    return model.eval()


def test_shapes_that_do_not_fit_the_config_are_one_line(tmp_path, cuhk, capsys):
    ckpt, _ = _released_file(tmp_path / "best.pth", reshape="encoder.clip.visual.positional_embedding")
    code = main(["eval", "--released", "irra", "--checkpoint", str(ckpt), "--dataset", "cuhk", "--data-root",
                 str(cuhk), "--results-dir", str(tmp_path / "r"), "--cfg-options",
                 "method.encoder.preset=tiny", "method.encoder.image_size=(32,16)", "method.encoder.context_length=24",
                 "method.cmt_depth=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "'base_model.visual.positional_embedding' has shape (10, 128) in the file but (9, 128)" in err[0]
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_missing_evaluation_key_and_foreign_files_are_refused(tmp_path, cuhk):
    opts = dict(method=TINY)
    ckpt, _ = _released_file(tmp_path / "a.pth", drop=("encoder.clip.ln_final.weight",))
    with pytest.raises(CheckpointError, match="key 'base_model.ln_final.weight' is missing"):
        evaluate_released("irra", str(ckpt), "cuhk", str(cuhk), options=opts, results_dir=str(tmp_path / "r"))
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "b.pth")
    with pytest.raises(CheckpointError, match="no 'model' state dict"):
        evaluate_released("irra", str(tmp_path / "b.pth"), "cuhk", str(cuhk), options=opts)
    torch.save({"model": {"module.vision.blocks.0.w": torch.zeros(1)}}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match="key 'vision.blocks.0.w' is not part of the layout"):
        evaluate_released("irra", str(tmp_path / "c.pth"), "cuhk", str(cuhk), options=opts)


def test_only_evaluation_parts_are_required_and_heads_of_any_size_are_set_aside(tmp_path, cuhk):
    # FMFA's classifier has one row per (image, caption) pair (datasets/build.py:251): 24 here, not 3 identities
    heads = [k for k in IRRA(num_classes=3, **TINY).state_dict() if not k.startswith("encoder.")]
    ckpt, _ = _released_file(tmp_path / "best0.pth", "fmfa", num_classes=24)
    [d] = evaluate_released("fmfa", str(ckpt), "cuhk", str(cuhk), options=dict(method=TINY),
                            results_dir=str(tmp_path / "r1"))
    assert json.loads((d / "record.json").read_text())["released"]["set_aside"] == sorted(HEADS)
    ckpt, _ = _released_file(tmp_path / "best.pth", drop=heads, prefix="")  # no heads, no module. (IRRA, 1 GPU)
    [d] = evaluate_released("irra", str(ckpt), "cuhk", str(cuhk), options=dict(method=TINY),
                            results_dir=str(tmp_path / "r2"))
    assert json.loads((d / "record.json").read_text())["released"]["set_aside"] == []


def test_methods_without_a_released_layout_are_refused_in_one_line(tmp_path, cuhk, capsys):
    code = main(["eval", "--released", "ivt", "--checkpoint", str(tmp_path / "x.pth"), "--dataset", "cuhk",
                 "--data-root", str(cuhk)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "declares no released checkpoint layout" in err[0]


@pytest.mark.slow
def test_released_rows_share_a_table_with_harness_trained_rows_of_the_same_data(tmp_path, cuhk):
    from harness.engine.run import run_job
    from harness.leaderboard.rows import row_key, table_key
    from harness.results import ResultsStore

    cfg = load_config("irra", "cuhk", options=dict(
        method=dict(TINY, encoder=dict(TINY["encoder"], checkpoint="random")), cross_domain=[],
        train=dict(epochs=1, batch_size=4)))
    run_job(cfg, data_root=str(cuhk), work_dir=str(tmp_path / "wd"), results_dir=str(tmp_path / "r"), progress=False)
    ckpt, _ = _released_file(tmp_path / "best.pth")
    evaluate_released("irra", str(ckpt), "cuhk", str(cuhk), options=dict(method=TINY), results_dir=str(tmp_path / "r"))
    recs = {r["kind"]: r for r in ResultsStore(tmp_path / "r").records()}
    assert set(recs) == {"run", "eval"}
    assert table_key(recs["run"]) == table_key(recs["eval"])  # same table: same eval set and training data
    assert row_key(recs["run"]) != row_key(recs["eval"])  # separate rows


def test_cross_domain_eval_names_the_training_data(tmp_path, cuhk):
    # a released CUHK-PEDES model scored on UFine3C: the train fingerprint is CUHK's, never an empty split
    ufine = write_dataset(tmp_path / "UFine3C", "ufine3c",
                          records=[r for r in _ufine_records() if r["split"] == "test"])
    ckpt, _ = _released_file(tmp_path / "best.pth")
    opts = dict(method=TINY)
    from harness.errors import ConfigError
    with pytest.raises(ConfigError, match="has no train split .* --train-dataset"):
        evaluate_released("irra", str(ckpt), "ufine3c", str(ufine), options=opts, results_dir=str(tmp_path / "r"))
    [d] = evaluate_released("irra", str(ckpt), "ufine3c", str(ufine), options=opts, results_dir=str(tmp_path / "r"),
                            train_dataset="cuhk", train_data_root=str(cuhk))
    rec = json.loads((d / "record.json").read_text())
    assert (rec["train_dataset"], rec["eval_dataset"]) == ("cuhk", "ufine3c")
    counts = rec["train_fingerprint"]["counts"]["train"]
    assert all(v > 0 for v in counts.values()), counts


def _ufine_records():
    from conftest import make_records
    return make_records("ufine3c")
