"""The code behind a record beyond the harness's git sha: the method plugins' own source and the libraries.

Why: an installed plugin is not in the harness's checkout, so editing its loss left the config hash, the git
sha and ``git_dirty`` unchanged while its numbers moved. Each plugin involved in a model (the method's
entry point, and any encoder registered from outside the harness) is named by distribution, version and a
sha256 over the ``.py`` files of its top-level package as imported (an editable install's source folder
or a wheel's installed one alike), so two records whose plugin code differs never look alike.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import sys
from pathlib import Path

LIBRARIES = ("torch", "torchvision", "open_clip_torch", "transformers", "mmengine")
MODULES = {"open_clip_torch": "open_clip"}  # distribution -> import name where they differ
HARNESS_PACKAGE = "harness"  # the core: identified by harness_version and git_sha, not hashed here


def library_versions() -> dict:
    """Versions of the libraries whose code shapes every number, as the imported module states it (torch's
    includes its build, e.g. ``2.14.1+cu130``), else the installed metadata; None when not installed."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = str(importlib.import_module(MODULES.get(name, name)).__version__)
        except (ImportError, AttributeError):
            try:
                out[name] = md.version(name)
            except md.PackageNotFoundError:
                out[name] = None
    return out


def package_files(top: str) -> tuple[Path | None, list[Path]]:
    """The root and the ``.py`` files of the imported top-level package ``top`` (one file for a module)."""
    mod = sys.modules.get(top) or importlib.import_module(top)
    paths = list(getattr(mod, "__path__", []) or [])
    if paths:
        root = Path(paths[0])
        return root, sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    file = getattr(mod, "__file__", None)
    return (Path(file).parent, [Path(file)]) if file else (None, [])


def source_sha256(root: Path, files: list[Path]) -> str:
    """sha256 over ``relative path NUL file sha256`` lines, sorted: independent of where it is installed."""
    h = hashlib.sha256()
    for p in sorted(files, key=lambda f: f.relative_to(root).as_posix()):
        h.update(f"{p.relative_to(root).as_posix()}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _distribution(top: str, module: str) -> tuple[str | None, str | None]:
    """The installed distribution providing ``module`` (through its ``tipr.methods`` entry point first,
    then the top-level name), as (name, version)."""
    from .registry import ENTRY_POINT_GROUP

    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if (module == ep.module or module.startswith(ep.module + ".")) and ep.dist is not None:
            return ep.dist.metadata["Name"], ep.dist.version
    names = md.packages_distributions().get(top) or []
    if names:
        try:
            return names[0], md.version(names[0])
        except md.PackageNotFoundError:
            return names[0], None
    return None, None


def plugin_entry(module: str, role: str) -> dict:
    """One plugin: the module that provides ``role`` (``method`` or ``encoder:<name>``), its
    distribution, version and source hash."""
    top = module.split(".")[0]
    dist, version = _distribution(top, module)
    root, files = package_files(top)
    return dict(role=role, module=module, package=top, distribution=dist, version=version,
                source_sha256=source_sha256(root, files) if root else None, source_files=len(files))


def plugins(method, ledger) -> list[dict]:
    """Every plugin involved in ``method``: its own package and any encoder builder not in the harness."""
    out = [plugin_entry(type(method).__module__, "method")]
    for e in ledger.entries:
        module = str(e.get("builder") or "").split(":")[0]
        if module and module.split(".")[0] != HARNESS_PACKAGE:
            out.append(plugin_entry(module, f"encoder:{e['encoder']}"))
    seen, unique = set(), []
    for p in out:
        if (p["package"], p["role"]) not in seen:
            seen.add((p["package"], p["role"]))
            unique.append(p)
    return unique


def combined_sha256(entries: list[dict]) -> str | None:
    """One string for the leaderboard to split rows on: the one plugin's source hash, or a hash over
    ``package=hash`` lines when several are involved."""
    hashes = sorted({(p["package"], p["source_sha256"]) for p in entries if p["source_sha256"]})
    if not hashes:
        return None
    if len(hashes) == 1:
        return hashes[0][1]
    return hashlib.sha256("".join(f"{k}={v}\n" for k, v in hashes).encode()).hexdigest()


def code_environment(method) -> dict:
    """The record fields ``plugins`` (distribution, version, source sha256), ``plugin_source_sha256``,
    ``library_versions`` and ``torch_threads``; ``harness run`` takes them when the model is built, before
    training, as it takes ``git_state()``."""
    import torch

    from . import weights_ledger

    entries = plugins(method, weights_ledger.ledger_of(method))
    return dict(plugins=entries, plugin_source_sha256=combined_sha256(entries), library_versions=library_versions(),
                torch_threads=torch.get_num_threads())
