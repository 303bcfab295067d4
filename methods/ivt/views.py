"""IVT's multi-level text views (word / phrase / sentence), regenerated on the fly from a caption.

Follows ``processor.get_phrase_level_txt`` and ``datasets/bases.py`` of the released code. CUHK-PEDES'
pre-extracted attribute file (``cuhk_pedes_att.json``) is not public any more, so the word view is
always the ICFG/RSTPReid rule: one random comma chunk longer than 5 characters.
"""
from __future__ import annotations

import torch


def _pick(items: list[str], g: torch.Generator | None) -> str:
    return items[int(torch.randint(len(items), (), generator=g))]


def phrase_candidates(caption: str) -> list[str]:
    """Per sentence: the longest comma chunk and the other chunks re-joined; keep those > 5 chars."""
    text = caption.replace("[", "").replace("]", "")
    out = []
    for sentence in text.split("."):
        chunks = [c.strip() for c in sentence.split(",") if c.strip()]
        if not chunks:
            continue
        longest = max(chunks, key=len)
        rest = ", ".join(c for c in chunks if c is not longest)
        out += [c for c in (longest, rest) if len(c) > 5]
    return out


def word_candidates(caption: str) -> list[str]:
    text = caption.replace("[", "").replace("]", "")
    return [c.strip() for s in text.split(".") for c in s.split(",") if len(c.strip()) > 5]


def phrase_view(caption: str, g: torch.Generator | None = None) -> str:
    cands = phrase_candidates(caption)
    return _pick(cands, g) if cands else caption


def word_view(caption: str, g: torch.Generator | None = None) -> str:
    cands = word_candidates(caption)
    return _pick(cands, g) if cands else caption


def multi_level_texts(captions: list[str], g: torch.Generator | None = None) -> list[str]:
    """word(B) + phrase(B) + sentence(B): the 3B texts of one IVT batch, in the released order."""
    return [word_view(c, g) for c in captions] + [phrase_view(c, g) for c in captions] + list(captions)
