"""The weights ledger: every encoder built through the registry names its config key and what it loaded,
including the parts IVT/LGUR keep without keeping the encoder; the records carry it per part."""
import hashlib

import pytest
import torch

from harness.config import load_config
from harness.encoders.clip import CLIPEncoder, resize_positions, source_grid
from harness.registry import build_method
from harness.engine.record_builder import weights_record
from harness.engine.run import require_pretrained_parts
from harness.errors import ConfigError
from harness.registry import build_encoder
from harness.weights_ledger import Ledger, ledger_of, recording

from upstream_weights import write_bert_folder, write_open_clip_folder, write_openai_torchscript


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    return dict(openai=write_openai_torchscript(root / "ViT-B-16.pt"), open_clip=write_open_clip_folder(root / "oc"),
                bert=write_bert_folder(root / "bert"))


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_ivt_ledger_names_its_own_keys_and_every_file(files):
    cfg = load_config("ivt", "synth", options=dict(method=dict(
        vision=dict(image_size=(32, 16), checkpoint=str(files["openai"])), text=dict(path=str(files["bert"])))))
    method = build_method(cfg.method, 4)
    ledger = {e["key"]: e for e in weights_record(method)["weights_ledger"]}
    assert set(ledger) == {"method.vision", "method.text"}  # IVT keeps no encoder object, the ledger still knows
    v, t = ledger["method.vision"], ledger["method.text"]
    assert (v["encoder"], v["weights_key"], v["random"]) == ("clip", "checkpoint", False)
    assert v["files"] == [dict(path=str(files["openai"].resolve()), sha256=_sha(files["openai"]),
                               format="openai-torchscript", position_grid=[14, 14])]
    assert (t["encoder"], t["weights_key"], t["random"]) == ("bert", "path", False)
    assert {f["path"].rsplit("/", 1)[1] for f in t["files"]} >= {"config.json", "model.safetensors"}
    assert all(f["sha256"] == _sha(f["path"]) for f in t["files"])
    # the flat view the leaderboard keys weights on: every file of every part
    assert [f["sha256"] for f in weights_record(method)["encoder_weights"]] == [f["sha256"] for f in
                                                                                  v["files"] + t["files"]]


def test_random_parts_are_refused_by_their_own_keys_unless_asked_for(files):
    cfg = load_config("lgur", "cuhk", options=dict(method=dict(
        vision=dict(preset="tiny", image_size=(32, 16), checkpoint=str(files["open_clip"])), text=dict(preset="tiny"),
        dim=64, dict_size=20, part_dim=32, recon=dict(heads=2, dim_head=16, mlp_dim=64),
        proto=dict(heads=2, dim_head=32, mlp_dim=64))))
    method = build_method(cfg.method, 4)
    with pytest.raises(ConfigError, match=r"would start method\.text \(bert\) from random weights: pass --cfg-options "
                                          r"method\.text\.path=/path/bert-base-uncased, or set method\.text\.path to "
                                          r"'random'"):
        require_pretrained_parts(method, cfg, "cuhk")
    cfg.method.text.path = "random"
    method = build_method(cfg.method, 4)
    require_pretrained_parts(method, cfg, "cuhk")
    text = {e["key"]: e for e in ledger_of(method).entries}["method.text"]
    assert text["random"] and text["random_on_purpose"]


def test_equal_encoder_dicts_get_their_own_keys_and_an_unlisted_encoder_has_none():
    cfg = dict(type="x", a=dict(type="clip", preset="tiny", image_size=(32, 16)),
               b=dict(type="clip", preset="tiny", image_size=(32, 16)))
    with recording(cfg) as ledger:
        build_encoder(dict(cfg["a"]), "clip")  # copies: found by equality, each key claimed once
        build_encoder(dict(cfg["b"]), "clip")
        build_encoder(None, "bert")
    assert [e["key"] for e in ledger.entries] == ["method.a", "method.b", None]
    assert ledger.is_random() and ledger.files() == []


def test_a_model_built_outside_build_method_reports_the_encoders_it_holds(files):
    enc = CLIPEncoder("tiny", image_size=(32, 16), checkpoint=str(files["openai"]))
    model = torch.nn.Sequential(enc)
    (entry,) = ledger_of(model).entries
    assert entry["key"] is None and entry["files"][0]["sha256"] == _sha(files["openai"])
    assert Ledger().is_random()


def test_a_non_square_source_grid_resizes_once_without_error(files, tmp_path):
    """open_clip folder at 64 x 32 px (8 x 4 patches): IVT's stride grid comes from the source table in one
    resize, as from a square one; without open_clip_config.json the grid is the factor pair nearest the target's
    aspect ratio (24 x 8 for a 384 x 128 ViT-B/16 state dict)."""
    src = torch.load(files["open_clip"], weights_only=True)["visual.positional_embedding"]
    enc = CLIPEncoder("tiny", image_size=(32, 16), checkpoint=str(files["open_clip"]))
    table = enc.vision_position_table((5, 2))
    assert table.shape == (11, 128) and torch.equal(table[0], src[0])
    assert torch.allclose(table, resize_positions(src, (8, 4), (5, 2)))
    assert torch.allclose(enc.clip.visual.positional_embedding.detach(), resize_positions(src, (8, 4), (4, 2)))
    cfg = load_config("ivt", "synth", options=dict(method=dict(
        vision=dict(image_size=(32, 16), checkpoint=str(files["open_clip"])), stride=6)))
    assert build_method(cfg.method, 4).pos_embed.shape == (11, 128)
    assert source_grid(192, (24, 8), tmp_path / "x.pt") == (24, 8)
    assert source_grid(192, (12, 4), tmp_path / "x.pt") == (24, 8)
    assert source_grid(196, (24, 8), tmp_path / "x.pt") == (14, 14)


def test_an_encoder_outside_the_shared_encoder_contract_is_refused_before_it_is_built():
    """The ledger reads ``WEIGHTS_KEY``, ``preset`` and ``weight_provenance()``: a registered encoder that does
    not declare them (not a ``SharedEncoder``) is one line naming it, and is never constructed."""
    import pytest
    from torch import nn

    from harness.errors import HarnessError
    from harness.registry import ENCODERS, build_encoder

    built = []

    class Bare(nn.Module):
        def __init__(self, **kw):
            super().__init__()
            built.append(kw)

    ENCODERS.register_module(name="bare_probe", module=Bare, force=True)
    try:
        with pytest.raises(HarnessError, match="encoder 'bare_probe' .*Bare.* is not a harness.plugin.SharedEncoder"):
            build_encoder(dict(type="bare_probe"), "bare_probe")
    finally:
        ENCODERS.module_dict.pop("bare_probe", None)
    assert built == []
