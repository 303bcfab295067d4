"""Draws a small pedestrian image from a ``Person`` with PIL; the domain sets background and palette."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .attributes import COLOURS, HAIR_COLOURS, SKIN, Person

DOMAINS = {
    # a: bright street-like plain backgrounds (the training domain)
    "a": dict(bg_low=150, bg_high=235, noise=6, light=(0.95, 1.08), blur=0.0),
    # b: dark, textured scenes with colour cast (cross-domain test)
    "b": dict(bg_low=20, bg_high=110, noise=22, light=(0.70, 0.95), blur=0.6),
}


def _c(name_or_rgb, light, rng, jitter=12):
    rgb = COLOURS[name_or_rgb] if isinstance(name_or_rgb, str) else name_or_rgb
    return tuple(int(np.clip(v * light + rng.integers(-jitter, jitter + 1), 0, 255)) for v in rgb)


def draw_person(person: Person, rng: np.random.Generator, domain: str = "a", size=(96, 48)) -> Image.Image:
    """Render one view of ``person``: position, scale, bag side and lighting vary per call."""
    H, W = size
    d = DOMAINS[domain]
    base = rng.integers(d["bg_low"], d["bg_high"], size=3)
    grad = np.linspace(0.85, 1.1, H)[:, None, None]
    bg = np.clip(base[None, None, :] * grad + rng.normal(0, d["noise"], (H, W, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(bg, "RGB")
    dr = ImageDraw.Draw(img)
    light = float(rng.uniform(*d["light"]))
    s = rng.uniform(0.85, 1.0) * H / 96.0
    cx = W / 2 + rng.uniform(-4, 4) * W / 48
    top = rng.uniform(2, 8) * H / 96

    def box(x0, y0, x1, y1, col):
        dr.rectangle([cx + x0 * s, top + y0 * s, cx + x1 * s, top + y1 * s], fill=col)

    skin = _c(SKIN[person.skin], light, rng, 6)
    hair = _c(HAIR_COLOURS[person.hair_colour], light, rng, 6)
    up = _c(person.upper_colour, light, rng)
    lo = _c(person.lower_colour, light, rng)
    shoes = _c(person.shoes, light, rng)
    bag_side = 1 if rng.random() < 0.5 else -1

    if person.bag == "backpack":  # behind the torso, visible at one side
        box(bag_side * 8 - 7, 20, bag_side * 8 + 7, 44, _c(person.bag_colour, light, rng))
    # hair behind the head (long hair falls to the shoulders)
    if person.hair_long:
        box(-8, 6, 8, 30, hair)
    # head
    dr.ellipse([cx - 6 * s, top + 4 * s, cx + 6 * s, top + 18 * s], fill=skin)
    box(-7, 3, 7, 8, hair)
    if person.hat == "cap":
        box(-8, 1, 8, 6, _c(person.hat_colour, light, rng))
        box(0, 5, 11, 7, _c(person.hat_colour, light, rng))
    # torso and arms
    torso_bottom = {"t-shirt": 46, "sweater": 48, "jacket": 50, "coat": 62}[person.upper]
    box(-10, 19, 10, torso_bottom, up)
    sleeve_end = 32 if person.upper == "t-shirt" else 48
    box(-14, 20, -10, sleeve_end, up)
    box(10, 20, 14, sleeve_end, up)
    if person.upper == "t-shirt":
        box(-14, 32, -10, 46, skin)
        box(10, 32, 14, 46, skin)
    if person.upper == "jacket":
        box(-0.6, 20, 0.6, 50, _c("black", light, rng, 4))
    if person.upper == "sweater":
        for y in (26, 34, 42):
            box(-10, y, 10, y + 1.5, tuple(int(v * 0.75) for v in up))
    # legs
    if person.lower == "skirt":
        dr.polygon([(cx - 10 * s, top + torso_bottom * s), (cx + 10 * s, top + torso_bottom * s),
                    (cx + 14 * s, top + 70 * s), (cx - 14 * s, top + 70 * s)], fill=lo)
        box(-6, 70, -2, 86, skin)
        box(2, 70, 6, 86, skin)
    else:
        leg_cloth_end = 66 if person.lower == "shorts" else 86
        start = max(torso_bottom, 48)
        box(-9, start, -1, leg_cloth_end, lo)
        box(1, start, 9, leg_cloth_end, lo)
        if person.lower == "shorts":
            box(-8, 66, -2, 86, skin)
            box(2, 66, 8, 86, skin)
    box(-10, 86, -1, 90, shoes)
    box(1, 86, 10, 90, shoes)
    if person.bag == "handbag":
        box(bag_side * 15 - 3, 44, bag_side * 15 + 3, 54, _c(person.bag_colour, light, rng))
    if d["blur"]:
        img = img.filter(ImageFilter.GaussianBlur(d["blur"]))
    return img
