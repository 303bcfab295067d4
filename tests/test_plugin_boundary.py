"""The sealed plugin boundary: method packages use the shared encoders only through their public accessors.

Every module of every built-in method package is parsed (not imported) and rejected if it reaches into an
encoder's internals: an attribute chain through ``.clip``, ``.bert``, ``.model`` or ``.visual`` of anything
but ``self`` (e.g. ``clip.clip.visual``, ``bert.bert.encoder.layer``), or a private ``._name`` of any object
other than ``self``/``super()`` (e.g. open_clip's ``visual._embeds``).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tipr_methods

ENCODER_HANDLES = {"clip", "bert", "model", "visual"}
PACKAGES = sorted(p for p in Path(tipr_methods.__file__).parent.iterdir() if (p / "__init__.py").is_file())


def boundary_violations(source: str, filename: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Attribute):
            continue
        owner, attr = node.value, node.attr
        on_self = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
        on_super = isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super"
        dunder = attr.startswith("__") and attr.endswith("__")
        if attr.startswith("_") and not dunder and not (on_self or on_super):
            out.append(f"{filename}:{node.lineno}: private '.{attr}' of another object")
        elif attr in ENCODER_HANDLES and not on_self:
            out.append(f"{filename}:{node.lineno}: '.{attr}' reaches into an encoder's internals")
    return out


def test_the_checker_catches_the_old_shortcuts():
    old = "v = clip.clip.visual\nx = v._embeds(images)\nlayers = bert.bert.encoder.layer\nw = self.encoder.clip.x\n"
    found = boundary_violations(old, "old.py")
    assert sorted(f.split(": ", 1)[0] for f in found) == ["old.py:1", "old.py:1", "old.py:2", "old.py:3", "old.py:4"]
    fine = ("self.clip = build()\nself._spec = 1\nsuper()._init()\nn = type(self).__name__\n"
            "x = self.encoder.tokenize(c)\n")
    assert boundary_violations(fine, "fine.py") == []


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_method_packages_use_only_public_encoder_accessors(package):
    assert PACKAGES, "no method packages found"
    found = [v for f in sorted(package.rglob("*.py")) for v in boundary_violations(f.read_text(), str(f))]
    assert not found, "method code touches encoder internals (use the accessors in harness/encoders):\n" + \
        "\n".join(found)
