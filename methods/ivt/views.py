"""IVT's multi-level text views (word / phrase / sentence), regenerated on the fly from a caption.

Follows the released code character for character: ``processor.get_phrase_level_txt`` (lines 59-78)
for the phrase view and ``ImageDatasetLevelICFG/RSTP.__getitem__`` (``datasets/bases.py`` lines
239-247) for the word view. Both strip ``.``, ``[`` and ``]`` from the ends of the caption only, split
on ``.`` then ``,``, keep pieces longer than 5 characters *before* stripping spaces, and sample one.
CUHK-PEDES' attribute file (``cuhk_pedes_att.json``) is not public any more, so the word view is the
ICFG/RSTPReid rule on every dataset. Where the released code would crash (no piece is long enough),
the caption itself is used.
"""
from __future__ import annotations

import torch


def _pick(items: list[str], g: torch.Generator | None) -> str:
    return items[int(torch.randint(len(items), (), generator=g))]


def _sentences(caption: str) -> list[str]:
    return caption.strip(".").strip("[").strip("]").split(".")


def phrase_candidates(caption: str) -> list[str]:
    """Per sentence: the longest comma chunk and the other chunks re-joined with ','; > 5 characters."""
    out = []
    for sentence in _sentences(caption):
        chunks = sentence.split(",")
        i = max(range(len(chunks)), key=lambda k: len(chunks[k]))  # first longest, like np.argmax
        rest = (",".join(chunks[:i]) + "," + ",".join(chunks[i + 1:])).strip(",")
        out += [c for c in (chunks[i], rest) if len(c) > 5]
    return [c.strip(" ") for c in out]


def word_candidates(caption: str) -> list[str]:
    """Every comma chunk of every sentence longer than 5 characters (counted before stripping)."""
    return [c.strip(" ") for s in _sentences(caption) for c in s.split(",") if len(c) > 5]


def phrase_view(caption: str, g: torch.Generator | None = None) -> str:
    cands = phrase_candidates(caption)
    return _pick(cands, g) if cands else caption


def word_view(caption: str, g: torch.Generator | None = None) -> str:
    cands = word_candidates(caption)
    return _pick(cands, g) if cands else caption
