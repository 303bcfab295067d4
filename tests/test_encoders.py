import hashlib
import json
import logging
import warnings

import pytest
import torch
from open_clip.model import CLIP
from transformers import BertConfig, BertModel

from harness.encoders.bert import BertEncoder, tiny_vocab_file, wordpiece_tokenizer
from harness.encoders.clip import PRESETS, CLIPEncoder
from harness.errors import ConfigError, HarnessError


def test_clip_checkpoint_with_square_grid_is_resized_to_384x128_layout(tmp_path):
    p = PRESETS["tiny"]
    square = CLIP(p["embed_dim"], dict(image_size=64, **p["vision"]), dict(context_length=32, **p["text"]),
                  quick_gelu=True)
    torch.save(square.state_dict(), tmp_path / "clip.pt")
    enc = CLIPEncoder("tiny", image_size=(96, 32), context_length=32, checkpoint=str(tmp_path / "clip.pt"))
    assert enc.clip.visual.positional_embedding.shape == (12 * 4 + 1, 128)
    assert torch.equal(enc.clip.visual.positional_embedding[0], square.visual.positional_embedding[0])  # CLS kept
    assert torch.equal(enc.clip.token_embedding.weight, square.token_embedding.weight)
    assert enc.encode_image_tokens(torch.randn(2, 3, 96, 32)).shape == (2, 49, 128)


def test_clip_bad_checkpoints_are_reported(tmp_path):
    with pytest.raises(HarnessError, match="not found"):
        CLIPEncoder("tiny", checkpoint=str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(HarnessError, match="cannot read"):
        CLIPEncoder("tiny", checkpoint=str(tmp_path / "junk.pt"))
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(HarnessError, match="does not match"):
        CLIPEncoder("tiny", checkpoint=str(tmp_path / "other.pt"))


def test_tokenizer_truncates_with_eot_last():
    enc = CLIPEncoder("tiny", image_size=(32, 16), context_length=16)
    ids = enc.tokenize(["word " * 50, "short"])
    assert ids[0, -1] == enc.eot_token_id and ids[0, 0] == enc.sot_token_id
    assert enc.eot_index(ids).tolist() == [15, 2]
    assert enc.truncation_rate(["word " * 50, "short"]) == 0.5


def test_bert_loads_from_a_local_folder(tmp_path):
    tok = wordpiece_tokenizer(tiny_vocab_file())
    model = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64), add_pooling_layer=False)
    model.save_pretrained(tmp_path / "bert")
    tok.save_pretrained(tmp_path / "bert")
    enc = BertEncoder(path=str(tmp_path / "bert"))
    t = enc.tokenize(["A woman in a RED coat", "man"])
    words = enc.tokenizer.convert_ids_to_tokens(t["input_ids"][0].tolist())
    assert words[:7] == ["[CLS]", "a", "woman", "in", "a", "red", "coat"]
    out = enc(**t)
    assert out.shape[:2] == t["input_ids"].shape and out.shape[-1] == 32
    assert torch.equal(enc.bert.embeddings.word_embeddings.weight, model.embeddings.word_embeddings.weight)
    with pytest.raises(HarnessError, match="no config.json"):
        BertEncoder(path=str(tmp_path))


def test_tiny_bert_tokenizer_uses_its_vocabulary():
    """transformers 5 ignores ``vocab_file=`` silently; every word then became [UNK]."""
    enc = BertEncoder(preset="tiny")
    ids = enc.tokenize(["A man wearing a zebra-striped jacket."])["input_ids"][0].tolist()
    words = enc.tokenizer.convert_ids_to_tokens(ids)
    assert words[:4] == ["[CLS]", "a", "man", "wearing"] and "[UNK]" not in words
    assert "##e" in words  # out-of-vocabulary words fall back to WordPiece characters


def _tiny_clip(quick_gelu: bool, image_size=(32, 16), context_length=16):
    p = PRESETS["tiny"]
    return CLIP(p["embed_dim"], dict(image_size=image_size, **p["vision"]),
                dict(context_length=context_length, **p["text"]), quick_gelu=quick_gelu).eval()


def test_weight_provenance_names_the_loaded_file_and_its_sha256(tmp_path):
    assert CLIPEncoder("tiny", image_size=(32, 16), context_length=16).weight_provenance() == []  # random init
    # "random" asks for random initialisation on purpose (the engine refuses a silent one on real data)
    assert CLIPEncoder("tiny", image_size=(32, 16), context_length=16, checkpoint="random").weight_provenance() == []
    path = tmp_path / "clip.pt"
    torch.save(_tiny_clip(True).state_dict(), path)
    enc = CLIPEncoder("tiny", image_size=(32, 16), context_length=16, checkpoint=str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert enc.weight_provenance() == [dict(path=str(path.resolve()), sha256=sha, format="open_clip-state-dict",
                                            position_grid=[4, 2])]


def test_gelu_jit_archive_is_refused_by_a_quickgelu_preset(tmp_path):
    """A TorchScript archive (OpenAI's format) keeps its activation's class name."""
    model = _tiny_clip(quick_gelu=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (torch.randn(1, 3, 32, 16), torch.zeros(1, 16, dtype=torch.long)),
                                 check_trace=False)
        torch.jit.save(traced, str(tmp_path / "gelu.pt"))
    with pytest.raises(ConfigError, match=r"trained with gelu but preset 'tiny' builds quick_gelu; set "
                                          r"method.encoder.quick_gelu=False"):
        CLIPEncoder("tiny", image_size=(32, 16), context_length=16, checkpoint=str(tmp_path / "gelu.pt"))
    enc = CLIPEncoder("tiny", image_size=(32, 16), context_length=16, checkpoint=str(tmp_path / "gelu.pt"),
                      quick_gelu=False)
    assert isinstance(enc.clip.visual.transformer.resblocks[0].mlp.gelu, torch.nn.GELU)
    assert torch.equal(enc.clip.token_embedding.weight, model.token_embedding.weight)
    assert len(enc.weight_provenance()) == 1


def test_openai_state_dict_and_open_clip_config_declare_their_activation(tmp_path, caplog):
    sd = dict(_tiny_clip(True).state_dict(), input_resolution=torch.tensor(32), context_length=torch.tensor(16),
              vocab_size=torch.tensor(49408))  # the extra entries of OpenAI's checkpoints (QuickGELU)
    torch.save(sd, tmp_path / "openai.pt")
    with pytest.raises(ConfigError, match="trained with quick_gelu but preset 'tiny' builds gelu"):
        CLIPEncoder("tiny", image_size=(32, 16), context_length=16, checkpoint=str(tmp_path / "openai.pt"),
                    quick_gelu=False)
    hub = tmp_path / "hub"
    hub.mkdir()
    torch.save(_tiny_clip(False).state_dict(), hub / "open_clip_pytorch_model.bin")
    (hub / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 128}}))  # no quick_gelu: GELU
    with pytest.raises(ConfigError, match="trained with gelu"):
        CLIPEncoder("tiny", image_size=(32, 16), context_length=16, checkpoint=str(hub / "open_clip_pytorch_model.bin"))
    torch.save(_tiny_clip(True).state_dict(), tmp_path / "plain.pt")
    with caplog.at_level(logging.WARNING, logger="harness"):
        CLIPEncoder("tiny", image_size=(32, 16), context_length=16, checkpoint=str(tmp_path / "plain.pt"))
    assert "cannot tell whether this CLIP checkpoint was trained with GELU or QuickGELU" in caplog.text


def test_openai_torchscript_archive_written_in_openais_layout_loads(tmp_path):
    """An archive compiled from a model with OpenAI's module tree and names (not a traced open_clip model),
    fp16, QuickGELU, 14 x 14 grid: open_clip's own OpenAI reader accepts its state dict, and the harness loads
    the same values (in fp32) with the grid resized once to the encoder's."""
    from open_clip.model import build_model_from_openai_state_dict

    from harness.encoders.clip import resize_positions
    from upstream_weights import write_openai_torchscript

    path = write_openai_torchscript(tmp_path / "ViT-B-16.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sd = torch.jit.load(str(path)).state_dict()
    assert {v.dtype for k, v in sd.items() if v.is_floating_point()} == {torch.float16}
    assert {"input_resolution", "context_length", "vocab_size"} <= set(sd) and int(sd["input_resolution"]) == 112
    ref = build_model_from_openai_state_dict(dict(sd))  # open_clip's reader of OpenAI checkpoints
    assert ref.visual.positional_embedding.shape == (197, 128) and type(ref.visual.transformer.resblocks[0].mlp.gelu
                                                                        ).__name__ == "QuickGELU"
    enc = CLIPEncoder("tiny", image_size=(32, 16), context_length=40, checkpoint=str(path))
    (entry,) = enc.weight_provenance()
    assert entry["format"] == "openai-torchscript" and entry["position_grid"] == [14, 14]
    assert enc.clip.visual.conv1.weight.dtype == torch.float32
    assert torch.equal(enc.clip.visual.conv1.weight, sd["visual.conv1.weight"].float())
    assert torch.equal(enc.clip.transformer.resblocks[1].mlp.c_fc.weight,
                       sd["transformer.resblocks.1.mlp.c_fc.weight"].float())
    expected = resize_positions(sd["visual.positional_embedding"].float(), (14, 14), (4, 2))
    assert torch.equal(enc.clip.visual.positional_embedding.detach(), expected)
    with pytest.raises(ConfigError, match="trained with quick_gelu"):
        CLIPEncoder("tiny", image_size=(32, 16), context_length=40, checkpoint=str(path), quick_gelu=False)
