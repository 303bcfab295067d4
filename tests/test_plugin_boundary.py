"""The sealed plugin boundary: a method package imports only ``harness.api`` from the harness, and uses the shared
encoders only through their public accessors.

Every module of every registered method plugin (the ``tipr.methods`` entry points), of the package
``harness new-method`` writes, and of an out-of-tree plugin written here is parsed (not imported) and rejected if
- it imports any harness module other than ``harness.api`` (absolute, or relative out of its own package);
- it imports a third-party model library (open_clip, transformers, timm): the shared encoders wrap them;
- it reaches into an encoder's internals: an attribute chain through a model handle (``.clip``, ``.bert``,
  ``.model``, ``.visual``, ``.transformer``, ``.resblocks``, ...) of anything but ``self``, the same name through
  ``getattr``/``hasattr``, or a private ``._name`` of any object other than ``self``/``super()``.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from harness.names import plugin_entry_points
from harness.scaffold import scaffold_method

# open_clip / transformers attribute names that only a model's internals carry
ENCODER_HANDLES = {"clip", "bert", "model", "visual", "transformer", "resblocks", "token_embedding", "text_projection",
                   "conv1", "ln_final", "ln_post", "ln_pre", "attn_mask", "c_fc", "c_proj", "class_embedding",
                   "grid_size"}
MODEL_LIBRARIES = {"open_clip", "transformers", "timm", "clip"}
PUBLIC_API = "harness.api"


def _resolve(module: str | None, level: int, package: str) -> str:
    """The absolute name of an import written in a module of ``package`` (``from ..x import y``)."""
    if not level:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - level + 1] if level <= len(parts) else []
    return ".".join([*base, module] if module else base)


def boundary_violations(source: str, filename: str, package: str = "plugin") -> list[str]:
    """What in ``source`` (a module of the plugin package ``package``) crosses the boundary, one line each."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(node.module, node.level, package)
                from_package = not node.module or base == "harness"  # `from harness import api` names harness.api
                targets = [f"{base}.{a.name}" for a in node.names] if from_package else [base]
            for t in targets:
                top = t.split(".")[0]
                if top == "harness" and t != PUBLIC_API:
                    out.append(f"{where}: imports '{t}'; a plugin imports only {PUBLIC_API}")
                elif top in MODEL_LIBRARIES:
                    out.append(f"{where}: imports '{t}'; use the shared encoders through {PUBLIC_API}")
        elif isinstance(node, ast.Attribute):
            owner, attr = node.value, node.attr
            on_self = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            on_super = isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super"
            dunder = attr.startswith("__") and attr.endswith("__")
            if attr.startswith("_") and not dunder and not (on_self or on_super):
                out.append(f"{where}: private '.{attr}' of another object")
            elif attr in ENCODER_HANDLES and not on_self:
                out.append(f"{where}: '.{attr}' reaches into an encoder's internals")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in ENCODER_HANDLES):
            out.append(f"{where}: {node.func.id}(.., {node.args[1].value!r}) reaches into an encoder's internals")
    return out


def package_violations(root: Path, package: str) -> list[str]:
    """Every violation in the package folder ``root`` (importable as ``package``)."""
    out = []
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).with_suffix("").parts
        mod_pkg = ".".join([package, *rel[:-1]])  # the package a module's relative imports start from
        out += boundary_violations(f.read_text(), str(f), mod_pkg)
    return out


def _registered_packages() -> list[tuple[str, Path]]:
    """(package, folder) of every registered method plugin: the package its entry point's module lives in."""
    out = {}
    for value in plugin_entry_points().values():
        mod = importlib.import_module(value.split(":")[0])
        path = Path(mod.__file__)
        name = mod.__name__ if path.name == "__init__.py" else mod.__name__.rpartition(".")[0]
        out[name] = path.parent
    return sorted(out.items())


PACKAGES = _registered_packages()


def test_the_checker_catches_the_old_shortcuts():
    old = ("v = clip.clip.visual\nx = v._embeds(images)\nlayers = bert.bert.encoder.layer\nw = self.encoder.clip.x\n"
           "t = getattr(enc, 'transformer')\nfor b in self.cmt.resblocks: pass\n")
    found = boundary_violations(old, "old.py")
    assert sorted(f.split(": ", 1)[0] for f in found) == ["old.py:1", "old.py:1", "old.py:2", "old.py:3", "old.py:4",
                                                          "old.py:5", "old.py:6"]
    fine = ("self.clip = build()\nself._spec = 1\nsuper()._init()\nn = type(self).__name__\n"
            "x = self.encoder.tokenize(c)\n")
    assert boundary_violations(fine, "fine.py") == []


def test_the_checker_catches_imports_past_the_public_api():
    bad = ("from harness.plugin import RetrievalMethod\nimport harness.registry\nfrom harness import api\n"
           "from open_clip.transformer import QuickGELU\nimport transformers\nfrom ... import errors\n"
           "from ...harness.config_schema import check_int\n")
    found = boundary_violations(bad, "bad.py", package="tipr_x.sub")
    assert [f.split(": ", 1)[0] for f in found] == [f"bad.py:{i}" for i in (1, 2, 4, 5, 7)]
    # relative imports inside the plugin (tipr_methods.fmfa reusing tipr_methods.irra) are its own business
    fine = ("from harness.api import RetrievalMethod, build_encoder\nfrom harness import api\nfrom ..irra import IRRA\n"
            "from . import losses\n")
    assert boundary_violations(fine, "fine.py", package="tipr_methods.fmfa") == []
    # a relative import that climbs out of the plugin into the harness is caught by its resolved name
    assert boundary_violations("from .. import plugin\n", "up.py", package="harness.x")


def test_every_registered_method_plugin_is_checked():
    assert {p for p, _ in PACKAGES} >= {"tipr_methods.ivt", "tipr_methods.lgur", "tipr_methods.irra",
                                        "tipr_methods.fmfa"}


@pytest.mark.parametrize("package,root", PACKAGES, ids=[p for p, _ in PACKAGES])
def test_registered_method_plugins_stay_behind_the_public_api(package, root):
    found = package_violations(root, package)
    assert not found, ("method code crosses the plugin boundary (import harness.api only; use the shared "
                       "encoders' accessors):\n" + "\n".join(found))


def test_the_scaffolds_package_stays_behind_the_public_api(tmp_path):
    root = scaffold_method("boundary_probe", tmp_path)
    found = package_violations(root / "tipr_boundary_probe", "tipr_boundary_probe")
    found += package_violations(root / "tests", "tests")
    assert not found, "\n".join(found)


OUT_OF_TREE = '''"""A plugin written outside the repository against harness.api only."""
import torch

from harness.api import ImageSpec, RetrievalMethod, build_encoder, check_float


class Probe(RetrievalMethod):
    def __init__(self, num_classes=0, encoder=None, temperature=0.05, **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        self.encoder = build_encoder(encoder, "clip")
        self.temperature = temperature

    @classmethod
    def validate_config(cls, cfg):
        super().validate_config(cfg)
        if "temperature" in cfg:
            check_float("method.temperature", cfg["temperature"], 0.0, lo_open=True)

    @property
    def image_spec(self):
        return ImageSpec(size=self.encoder.image_size)

    def tokenize(self, captions):
        return self.encoder.tokenize(captions)

    def encode_image(self, images):
        return self.encoder.image_features(images)

    def encode_text(self, ids):
        return self.encoder.text_features(ids)

    def loss(self, batch):
        return dict(zero_loss=torch.zeros(()))
'''


def test_an_out_of_tree_plugin_is_held_to_the_same_boundary(tmp_path):
    pkg = tmp_path / "tipr_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .model import Probe  # noqa: F401\n")
    (pkg / "model.py").write_text(OUT_OF_TREE)
    assert package_violations(pkg, "tipr_probe") == []
    (pkg / "shortcut.py").write_text("from harness.registry import lookup\n\n\ndef grid(m):\n"
                                     "    return m.encoder.clip.visual.grid_size\n")
    found = package_violations(pkg, "tipr_probe")
    assert len(found) == 4 and all("shortcut.py" in f for f in found), found


def test_every_name_of_the_public_api_resolves():
    import harness.api as api

    missing = [n for n in api.__all__ if not hasattr(api, n)]
    assert not missing and len(set(api.__all__)) == len(api.__all__)


def _imports_facade(node, package: str) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name == PUBLIC_API for a in node.names)
    if isinstance(node, ast.ImportFrom):
        base = _resolve(node.module, node.level, package)
        return base == PUBLIC_API or (base == "harness" and any(a.name == "api" for a in node.names))
    return False


def test_the_core_does_not_import_its_own_facade():
    """``harness.api`` sits above the core: a core module importing it would make the facade part of the core's
    import graph (and a cycle waiting to happen)."""
    core = Path(importlib.import_module("harness").__file__).parent
    found = []
    for f in sorted(core.rglob("*.py")):
        if f == core / "api.py":
            continue
        package = ".".join(["harness", *f.parent.relative_to(core).parts])
        found += [f"{f}:{n.lineno}" for n in ast.walk(ast.parse(f.read_text(), str(f))) if _imports_facade(n, package)]
    assert not found, found
    assert _imports_facade(ast.parse("from .. import api").body[0], "harness.engine")
