"""``harness new-method NAME``: write a pip-installable method plugin package outside the harness.

The package registers itself through the ``tipr.methods`` entry point, ships mmengine configs (its
``default.py`` inherits the harness runtime defaults implicitly) and a working baseline -- the shared
CLIP encoder with a symmetric InfoNCE loss -- so ``harness run --method NAME --dataset synth`` works
the moment it is installed. Replace ``model.py`` with the method.
"""
from __future__ import annotations

import keyword
import re
from pathlib import Path

from .errors import HarnessError

PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "tipr-{name}"
version = "0.1.0"
description = "{cls} method plugin for the TIPR harness"
requires-python = ">=3.10"
dependencies = ["tipr-harness"]

[project.entry-points."tipr.methods"]
{name} = "tipr_{name}:{cls}"

[tool.setuptools.packages.find]
include = ["tipr_{name}*"]

[tool.setuptools.package-data]
"*" = ["configs/*.py"]
'''

INIT = '''"""{cls} method plugin: registered through the ``tipr.methods`` entry point in pyproject.toml."""
from .model import {cls}  # noqa: F401
'''

MODEL = '''"""{cls}: starts as a CLIP dual encoder trained with symmetric InfoNCE. Replace with the method.

The harness calls only the ``RetrievalMethod`` interface (``tokenize``, ``encode_image``, ``encode_text``,
``loss``; ``CLIPDualEncoder`` supplies the first three from the shared CLIP encoder); it normalises the
features, ranks the gallery, computes the metrics and stores the results.
"""
from pathlib import Path

import torch
import torch.nn.functional as F

from harness.api import CLIPDualEncoder, ImageSpec, PublishedResult, RetrievalMethod, build_encoder


class {cls}(CLIPDualEncoder, RetrievalMethod):
    """Args (the ``method`` config section; document every new one here):
        num_classes: training identities, given by the harness (for an ID loss).
        encoder: the shared CLIP encoder's config (preset, image_size, context_length, checkpoint).
        temperature: InfoNCE temperature.
    """

    config_dir = Path(__file__).parent / "configs"  # default.py and optional <dataset>.py files
    # the numbers your paper reports, one per real dataset; the leaderboard shows them as the paper row, e.g.
    # PublishedResult("cuhk", 70.0, 87.0, 92.0, 62.0, None, "my paper, Table 2")
    published: tuple[PublishedResult, ...] = ()

    def __init__(self, num_classes: int = 0, encoder: dict | None = None, temperature: float = 0.02, **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)  # unknown config keys raise a clear error
        self.encoder = build_encoder(encoder, "clip")  # the shared open_clip encoder
        self.temperature = temperature

    @property
    def image_spec(self) -> ImageSpec:
        return ImageSpec(size=self.encoder.image_size)

    def loss(self, batch):
        ids = self.tokenize(batch["captions"]).to(batch["images"].device)
        i = F.normalize(self.encode_image(batch["images"]), dim=-1)
        t = F.normalize(self.encode_text(ids), dim=-1)
        logits = t @ i.t() / self.temperature
        target = torch.arange(len(ids), device=logits.device)
        return dict(itc_loss=(F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2)

    def describe(self):
        return dict(temperature=self.temperature, encoder=self.encoder.preset)
'''

DEFAULT_CFG = '''# {cls} defaults. No _base_: the harness gives the chain's root the runtime defaults (seed, optimiser,
# schedule, eval) and the dataset's defaults (harness/config_chain.py).
method = dict(
    type="{name}",
    encoder=dict(type="clip", preset="ViT-B-16", image_size=(384, 128), context_length=77, checkpoint=None),
    temperature=0.02,
)
train = dict(epochs=60, batch_size=64)
'''

SYNTH_CFG = '''# {cls} on the harness' built-in synthetic dataset: tiny encoder, a few CPU minutes.
_base_ = ["./default.py"]  # the synth dataset config (dataset, cross_domain) comes in at the chain's root

method = dict(encoder=dict(preset="tiny", image_size=(64, 32), context_length=48))
train = dict(epochs=6, batch_size=64, cache_images=True)
optim_wrapper = dict(optimizer=dict(lr=5e-4, eps=1e-8))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=True, begin=0, end=2, convert_to_iter_based=False),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=2, end="max_epochs", eta_min=0.0),
]
'''

TEST = '''import torch

from tipr_{name} import {cls}


def test_loss_is_finite_and_trains():
    m = {cls}(encoder=dict(preset="tiny", image_size=(32, 16), context_length=24))
    batch = dict(images=torch.randn(4, 3, 32, 16), captions=["a man in red", "a woman in blue", "a cap", "a bag"],
                 pids=torch.arange(4))
    out = m.loss(batch)
    sum(out.values()).backward()
    assert all(torch.isfinite(v) for v in out.values())
'''

README = '''# {cls} (TIPR harness method plugin)

Install next to the harness and check that it is found:

    pip install -e .
    harness list                                   # shows: {name} (tipr_{name}:{cls})
    harness run --method {name} --dataset synth    # trains, evaluates, writes results/
    harness leaderboard                            # the run appears in leaderboards/

## Model card (fill in)
- Paper / released code (commit):
- What follows the code, what follows the paper, known deviations:
- Default hyper-parameters per dataset: `tipr_{name}/configs/<dataset>.py` (`_base_ = ["./default.py"]`).
'''


def class_name(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


MAX_NAME = 40  # the name appears in the package, distribution, class and every record: keep it readable


def template_names() -> set[str]:
    """Every name the generated modules import or define (``F``, ``Path``, ``ImageSpec``, ``torch``, ...): a
    method class or package of the same name would shadow it, and the generated test would fail."""
    import ast

    out: set[str] = set()
    for template in (INIT, MODEL, TEST):
        for node in ast.walk(ast.parse(template.format(name="x_placeholder", cls="XPlaceholder"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out |= {(a.asname or a.name).split(".")[0] for a in node.names}
                if isinstance(node, ast.ImportFrom) and node.module:
                    out.add(node.module.split(".")[0])
    return out - {"x_placeholder", "XPlaceholder", "tipr_x_placeholder"}


def check_name(name: str) -> None:
    """Refuse a name that is not an identifier, too long, or would shadow (or be shadowed by) an import of the
    template, the harness's own packages, or any installed module or distribution."""
    import importlib.metadata as md
    import importlib.util
    import sys

    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise HarnessError(f"method name '{name[:60]}' must be lower-case letters, digits and '_', starting with a "
                           "letter")
    if len(name) > MAX_NAME:
        raise HarnessError(f"method name '{name[:20]}...' has {len(name)} characters; use at most {MAX_NAME}")
    cls, pkg = class_name(name), f"tipr_{name}"
    clash = {name, cls, pkg} & (template_names() | {"harness", "tipr_methods", "methods", "tipr_harness"})
    if clash:
        raise HarnessError(f"method name '{name}' would shadow '{sorted(clash)[0]}', which the generated package or "
                           "the harness imports; pick another name")
    for mod in (name, pkg):
        if mod in sys.stdlib_module_names or mod in sys.builtin_module_names or _importable(importlib.util, mod):
            raise HarnessError(f"method name '{name}': a module '{mod}' is already installed (it would shadow it, or "
                               "be shadowed); pick another name")
    try:
        md.distribution(f"tipr-{name}")
    except md.PackageNotFoundError:
        return
    raise HarnessError(f"method name '{name}': a distribution 'tipr-{name}' is already installed; pick another name")


def _importable(util, mod: str) -> bool:
    try:
        return util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return True


def scaffold_method(name: str, dest: Path) -> Path:
    check_name(name)
    from .outputs import check_writable_dir
    from .registry import METHODS, discover_plugins

    discover_plugins()
    if METHODS.get(name) is not None:
        raise HarnessError(f"a method named '{name}' is already registered; pick another name")
    check_writable_dir(dest, "--dest")
    root = Path(dest) / f"tipr-{name}"
    if root.exists():
        raise HarnessError(f"{root} already exists; not overwriting it")
    cls = class_name(name)
    files = {
        "pyproject.toml": PYPROJECT, "README.md": README,
        f"tipr_{name}/__init__.py": INIT, f"tipr_{name}/model.py": MODEL,
        f"tipr_{name}/configs/default.py": DEFAULT_CFG, f"tipr_{name}/configs/synth.py": SYNTH_CFG,
        f"tests/test_{name}.py": TEST,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(name=name, cls=cls))
    return root
