"""How config files become one config: mmengine's ``_base_`` inheritance, and nothing else.

Every chain (a method's ``default.py`` or ``<dataset>.py``, or the file given with ``--config``) has root
files -- files without a ``_base_`` -- and those inherit the harness's runtime defaults
(``harness/configs/runtime.py``) and the dataset's defaults (``datasets/<name>.py``). Those two files live
in different places in a checkout, an installed wheel and a third-party plugin, so no config can name them
with a relative path. The harness therefore reads the chain from a temporary copy in which each file is
as written except its ``_base_`` line: it names the copies of its bases, or, for a root, the two default
files by absolute path. mmengine then merges exactly as it would (``_delete_`` included), and an error
names the original file.
"""
from __future__ import annotations

import ast
import tempfile
from pathlib import Path

from mmengine.config import Config

from .errors import ConfigError, HarnessError, one_line

RUNTIME_CONFIG = Path(__file__).resolve().parent / "configs" / "runtime.py"


def declared_bases(path: Path) -> tuple[list[str], tuple[int, int] | None]:
    """The ``_base_`` entries a config file declares, as written, and the lines (first, last) holding them."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse config: {one_line(exc)}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = None
            entries = [value] if isinstance(value, str) else value
            if not isinstance(entries, (list, tuple)) or not all(isinstance(b, str) for b in entries):
                raise ConfigError(f"{path}:{node.lineno}: _base_ must be a file name or a list of file names")
            if any("::" in b for b in entries):
                raise ConfigError(f"{path}:{node.lineno}: package-scoped bases ('pkg::file') are not supported; "
                                  "name the file by its path")
            return list(entries), (node.lineno, node.end_lineno)
    return [], None


def _chain_files(entry: Path) -> dict[Path, tuple[list[Path], tuple[int, int] | None]]:
    """Every file of the chain that starts at ``entry``, entry first, each with its bases (resolved paths)
    and the lines of its ``_base_`` statement (None for a root)."""
    chain: dict[Path, tuple[list[Path], tuple[int, int] | None]] = {}
    todo = [(entry.resolve(), None)]
    while todo:
        f, child = todo.pop()
        if f in chain:
            continue
        if not f.is_file():
            raise HarnessError(f"config file not found: {f}" + (f" (a _base_ of {child})" if child else ""))
        written, span = declared_bases(f)
        bases = [(f.parent / b).resolve() for b in written]
        chain[f] = bases, span
        todo += [(b, f) for b in reversed(bases)]
    return chain


def read_chain(entry: Path, defaults: list[Path]) -> Config:
    """The config of the chain starting at ``entry``, its root files inheriting ``defaults`` (runtime and
    dataset defaults: files without bases of their own)."""
    chain = _chain_files(entry)
    names = {f: f"c{i}_{f.name}" for i, f in enumerate(chain)}
    with tempfile.TemporaryDirectory(prefix="tipr-config-") as tmp:
        for f, (bases, span) in chain.items():
            lines = f.read_text().splitlines(keepends=True)
            new = [names[b] for b in bases] if span else [str(d) for d in defaults]
            line = f"_base_ = {new!r}\n"
            if span:
                lines[span[0] - 1:span[1]] = [line]
            else:
                lines.insert(0, line)
            (Path(tmp) / names[f]).write_text("".join(lines))
        try:
            return Config.fromfile(str(Path(tmp) / names[entry.resolve()]))
        except Exception as exc:  # noqa: BLE001  (mmengine raises many kinds; all mean this chain is unusable)
            text = one_line(exc)
            for f, name in names.items():
                text = text.replace(str(Path(tmp) / name), str(f))
            raise ConfigError(f"{entry}: cannot parse config: {text}") from None
