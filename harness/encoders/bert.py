"""BERT text encoder through transformers, loaded from a local folder (no hub access), or a tiny
randomly initialised preset with a small WordPiece vocabulary for CPU tests and the synth dataset."""
from __future__ import annotations

import json
import os
import string
from pathlib import Path

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertTokenizerFast

from .. import atomic
from ..errors import HarnessError
from ..hashing import sha256_file
from ..plugin import SharedEncoder
from ..registry import ENCODERS

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# enough whole words for the synth captions; anything else falls back to WordPiece characters
COMMON_WORDS = [
    "a", "an", "the", "and", "with", "of", "in", "on", "is", "are", "has", "have", "wears", "wearing", "wear",
    "dressed", "carrying", "carries", "not", "anything", "his", "her", "he", "she", "man", "woman", "guy", "lady",
    "male", "female", "person", "this", "that", "it", "its", "black", "white", "red", "blue", "green", "yellow",
    "grey", "gray", "purple", "orange", "pink", "brown", "blonde", "dark", "light", "long", "short", "hair", "cap",
    "hat", "jacket", "coat", "t-shirt", "tee", "shirt", "sweater", "jumper", "trousers", "pants", "shorts", "skirt",
    "shoes", "footwear", "sneakers", "boots", "backpack", "handbag", "bag", "head", "top", "bottom", "also",
]


def tiny_vocab_file(extra_words=()) -> Path:
    """Write (once) a small WordPiece vocab: specials, characters, ##characters, common words."""
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = SPECIAL + chars + ["##" + c for c in chars] + sorted(set(COMMON_WORDS) | set(extra_words))
    cache = Path(os.environ.get("TIPR_CACHE", Path.home() / ".cache" / "tipr"))
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"bert-tiny-vocab-{len(vocab)}.txt"
    if not path.exists():
        atomic.write_text(path, "\n".join(dict.fromkeys(vocab)) + "\n")
    return path


def wordpiece_tokenizer(vocab_file: Path) -> BertTokenizerFast:
    """A lower-casing WordPiece tokenizer from a vocab.txt, across transformers 4.x (``vocab_file=``)
    and 5.x (``vocab=``; an unknown ``vocab_file`` keyword is silently ignored there, giving all-[UNK])."""
    import inspect

    params = inspect.signature(BertTokenizerFast.__init__).parameters
    if "vocab" in params:
        words = Path(vocab_file).read_text().splitlines()
        return BertTokenizerFast(vocab={w: i for i, w in enumerate(words) if w}, do_lower_case=True)
    return BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)


def tokenize_captions(tokenizer, captions, context_length: int, add_sep: bool = True) -> dict:
    """Lower-cased WordPiece ids and attention mask, padded (with [PAD] = 0) to the longest caption.

    ``add_sep=True`` gives ``[CLS] X [SEP]``, ``add_sep=False`` gives ``[CLS] X`` (the form of ALBEF's
    tokenizer that IVT's released code uses). Ids are cut at ``context_length`` *after* the special tokens
    are added, so an over-long caption loses its [SEP], as LGUR's released ``data/dataset.py:68-77`` does.
    """
    tail = [tokenizer.sep_token_id] if add_sep else []
    words = tokenizer([c.lower() for c in captions], add_special_tokens=False)["input_ids"]
    rows = [([tokenizer.cls_token_id] + ids + tail)[:context_length] for ids in words]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return dict(input_ids=ids, attention_mask=mask)


class TextEmbeddings(nn.Module):
    """BERT's input embeddings as ``ids [B, L] -> [B, L, H]``: word + absolute position + token type 0,
    then LayerNorm and dropout (the parameters are BERT's own, shared with the encoder)."""

    def __init__(self, embeddings: nn.Module):
        super().__init__()
        self.embeddings = embeddings

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embeddings(input_ids=input_ids)


# what BertModel / BertTokenizerFast.from_pretrained read from a save_pretrained folder: the config, the
# first weights format present in transformers' order of preference (safetensors, then torch; sharded
# ones through their index), and the tokenizer files
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json")


def folder_files(folder: Path) -> list[Path]:
    """The files of a ``save_pretrained`` folder that loading reads, shards included."""
    files = [folder / "config.json"]
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is not None:
        files.append(weights)
        if weights.name.endswith(".index.json"):
            try:
                shards = sorted(set(json.loads(weights.read_text()).get("weight_map", {}).values()))
            except (json.JSONDecodeError, AttributeError):
                shards = []
            files += [folder / s for s in shards if (folder / s).is_file() and "/" not in s]
    return files + [folder / n for n in TOKENIZER_FILES if (folder / n).is_file()]


TINY = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)


@ENCODERS.register_module(name="bert")
class BertEncoder(SharedEncoder, nn.Module):
    """``tokenize(captions)`` -> dict of tensors; ``forward(ids, mask)`` -> last hidden states [B, L, H].

    Args:
        path: a local Hugging Face BERT folder (config.json, weights, vocab); overrides ``preset``.
        preset: "tiny" (random, built-in vocabulary) or "base" (bert-base shape, random weights).
        context_length: token cap, [CLS]/[SEP] included (the name CLIP's encoder uses for the same limit).
        vocab_file: a WordPiece vocab for the random presets (default: the built-in one).
    """

    WEIGHTS_KEY = "path"  # the keyword naming its pretrained folder (the weights ledger names it)

    def __init__(self, path: str | None = None, preset: str = "tiny", context_length: int = 100,
                 vocab_file: str | None = None):
        super().__init__()
        self.context_length = context_length
        self._provenance: list[dict] = []
        if path:
            p = Path(path).expanduser()
            if not (p / "config.json").is_file():
                raise HarnessError(f"BERT folder {p} has no config.json (expected a local bert-base-uncased copy)")
            try:
                self.bert = BertModel.from_pretrained(str(p), local_files_only=True, add_pooling_layer=False)
                self.tokenizer = BertTokenizerFast.from_pretrained(str(p), local_files_only=True)
            except OSError as exc:
                raise HarnessError(f"cannot load BERT from {p}: {exc}") from None
            self.preset = f"local:{p.name}"
            self._provenance = [dict(path=str(f.resolve()), sha256=sha256_file(f), format="save_pretrained")
                                for f in folder_files(p)]
        elif preset == "tiny":
            vf = Path(vocab_file) if vocab_file else tiny_vocab_file()
            self.tokenizer = wordpiece_tokenizer(vf)
            cfg = BertConfig(vocab_size=self.tokenizer.vocab_size, max_position_embeddings=max(128, context_length),
                             **TINY)
            self.bert = BertModel(cfg, add_pooling_layer=False)
            self.preset = "tiny"
        elif preset == "base":
            # bert-base-uncased shape, randomly initialised: for smoke tests and speed figures only.
            # Without a vocab file the small built-in vocabulary is used (ids stay below 30522).
            vf = Path(vocab_file) if vocab_file else tiny_vocab_file()
            self.tokenizer = wordpiece_tokenizer(vf)
            self.bert = BertModel(BertConfig(max_position_embeddings=max(512, context_length)), add_pooling_layer=False)
            self.preset = "base" if vocab_file else "base-random-vocab"
        else:
            raise HarnessError(f"unknown BERT preset '{preset}'; use 'tiny', 'base' or path=")
        self.hidden_size = self.bert.config.hidden_size

    def weight_provenance(self) -> list[dict]:
        """The files of the ``save_pretrained`` folder this encoder read (config, weights, tokenizer), as
        ``{path, sha256, format}``; an empty list means random weights (the presets)."""
        return [dict(e) for e in self._provenance]

    def tokenize(self, captions) -> dict:
        return tokenize_captions(self.tokenizer, captions, self.context_length)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    # ---------------------------------------------------------------- public accessors for method plugins
    # Methods that re-wire BERT's parts (IVT) take them from here rather than from transformers' attributes.
    @property
    def num_layers(self) -> int:
        return self.bert.config.num_hidden_layers

    @property
    def max_positions(self) -> int:
        """Length of the absolute position table: the longest id sequence BERT can embed."""
        return self.bert.config.max_position_embeddings

    def text_embeddings(self) -> TextEmbeddings:
        """The input embedding stage as a module of its own (same parameters)."""
        return TextEmbeddings(self.bert.embeddings)

    def ffn_linears(self) -> list[tuple[nn.Linear, nn.Linear]]:
        """Each layer's feed-forward pair (hidden -> intermediate, intermediate -> hidden), without BERT's
        activation, dropout and post-LN; the activation is ``hidden_act`` (GELU for bert-base)."""
        return [(layer.intermediate.dense, layer.output.dense) for layer in self.bert.encoder.layer]
