"""Identity attributes for the synthetic pedestrians.

Colours are shared across garments on purpose: every identity can have a "swapped" twin whose
upper and lower colours are exchanged, so a bag-of-colour-words model cannot tell them apart and
colour-to-garment binding (fine-grained alignment) matters.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

COLOURS = {
    "red": (200, 30, 35), "blue": (35, 70, 200), "green": (40, 150, 60), "yellow": (230, 210, 40),
    "black": (25, 25, 25), "white": (240, 240, 240), "grey": (130, 130, 130), "purple": (120, 50, 160),
    "orange": (240, 130, 30), "pink": (240, 150, 190), "brown": (110, 70, 35),
}
GARMENT_COLOURS = ["red", "blue", "green", "yellow", "black", "white", "grey", "purple", "orange", "pink"]
HAIR_COLOURS = {"black": (20, 20, 20), "brown": (90, 55, 25), "blonde": (225, 195, 110), "grey": (160, 160, 160)}
SKIN = [(240, 200, 170), (200, 150, 110), (120, 80, 55)]
UPPER_TYPES = ["t-shirt", "jacket", "coat", "sweater"]
LOWER_TYPES = ["trousers", "shorts", "skirt"]
SHOE_COLOURS = ["black", "white", "brown", "red", "blue"]
BAG_TYPES = [None, "backpack", "handbag"]
HAT_TYPES = [None, None, "cap"]


@dataclass(frozen=True)
class Person:
    gender: str
    skin: int
    hair_colour: str
    hair_long: bool
    hat: str | None
    hat_colour: str
    upper: str
    upper_colour: str
    lower: str
    lower_colour: str
    shoes: str
    bag: str | None
    bag_colour: str

    def swapped(self) -> Person:
        return replace(self, upper_colour=self.lower_colour, lower_colour=self.upper_colour)

    def key(self) -> tuple:
        return tuple(self.__dict__.values())


def sample_person(rng: np.random.Generator) -> Person:
    gender = str(rng.choice(["man", "woman"]))
    uc, lc = rng.choice(GARMENT_COLOURS, size=2, replace=False)
    lower = str(rng.choice(LOWER_TYPES if gender == "woman" else LOWER_TYPES[:2]))
    return Person(
        gender=gender,
        skin=int(rng.integers(len(SKIN))),
        hair_colour=str(rng.choice(list(HAIR_COLOURS))),
        hair_long=bool(rng.random() < (0.7 if gender == "woman" else 0.15)),
        hat=HAT_TYPES[int(rng.integers(len(HAT_TYPES)))],
        hat_colour=str(rng.choice(GARMENT_COLOURS)),
        upper=str(rng.choice(UPPER_TYPES)),
        upper_colour=str(uc),
        lower=lower,
        lower_colour=str(lc),
        shoes=str(rng.choice(SHOE_COLOURS)),
        bag=BAG_TYPES[int(rng.integers(len(BAG_TYPES)))],
        bag_colour=str(rng.choice(GARMENT_COLOURS)),
    )


def sample_identities(n: int, rng: np.random.Generator, twin_rate: float = 0.4) -> list[Person]:
    """``n`` distinct identities; about ``twin_rate`` of them come in colour-swapped pairs."""
    people: list[Person] = []
    keys = set()
    while len(people) < n:
        p = sample_person(rng)
        if p.key() in keys:
            continue
        people.append(p)
        keys.add(p.key())
        if len(people) < n and rng.random() < twin_rate and p.swapped().key() not in keys:
            people.append(p.swapped())
            keys.add(p.swapped().key())
    return people
