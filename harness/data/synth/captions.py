"""Caption generators: the same attributes described in two styles (domains).

Style ``a`` writes CUHK-PEDES-like sentences; style ``b`` writes terse, re-ordered attribute lists
with synonyms, the way a shift in caption granularity/style looks in UFine3C.
"""
from __future__ import annotations

import numpy as np

from .attributes import Person

LOWER_WORDS = {"trousers": ["trousers", "pants"], "shorts": ["shorts"], "skirt": ["skirt"]}
UPPER_WORDS = {"t-shirt": ["t-shirt", "tee"], "jacket": ["jacket"], "coat": ["long coat", "coat"],
               "sweater": ["sweater", "jumper"]}


def _pick(rng, xs):
    return xs[int(rng.integers(len(xs)))]


def caption_a(p: Person, rng: np.random.Generator) -> str:
    pron = "he" if p.gender == "man" else "she"
    subj = _pick(rng, ["man", "guy", "male"] if p.gender == "man" else ["woman", "lady", "female"])
    hair = f"{'long' if p.hair_long else 'short'} {p.hair_colour} hair"
    up = f"{p.upper_colour} {_pick(rng, UPPER_WORDS[p.upper])}"
    lo = f"{p.lower_colour} {_pick(rng, LOWER_WORDS[p.lower])}"
    first = _pick(rng, [f"A {subj} with {hair} is wearing a {up} and {lo}.",
                        f"The {subj} has {hair} and wears a {up} with {lo}.",
                        f"This {subj} is dressed in a {up} and {lo} and has {hair}."])
    extras = [f"{pron.capitalize()} wears {p.shoes} shoes."]
    if p.hat:
        extras.append(f"{pron.capitalize()} has a {p.hat_colour} cap on {'his' if pron == 'he' else 'her'} head.")
    if p.bag:
        extras.append(f"{pron.capitalize()} is carrying a {p.bag_colour} {p.bag}.")
    else:
        extras.append(f"{pron.capitalize()} is not carrying anything.")
    order = rng.permutation(len(extras))
    return " ".join([first] + [extras[i] for i in order])


def caption_b(p: Person, rng: np.random.Generator) -> str:
    parts = [f"{p.upper_colour} {_pick(rng, UPPER_WORDS[p.upper])}",
             f"{p.lower_colour} {_pick(rng, LOWER_WORDS[p.lower])}",
             f"{p.shoes} footwear",
             f"{p.hair_colour} hair, {'long' if p.hair_long else 'short'}"]
    if p.hat:
        parts.append(f"{p.hat_colour} cap")
    if p.bag:
        parts.append(f"{p.bag_colour} {p.bag}")
    order = rng.permutation(len(parts))
    return f"{p.gender}: " + "; ".join(parts[i] for i in order)


STYLES = {"a": caption_a, "b": caption_b}
