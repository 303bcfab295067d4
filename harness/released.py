"""Checkpoints written by a method's released code: the key table a method package declares (``ReleasedLayout``)
and the one mapping from such a file's state dict to the method's own parameter names.

Why here and not in a method: ``harness eval --released`` must read any method's file the same way (prefix
stripped, keys renamed by the table, the parts evaluation does not use set aside, shapes checked), while the
table itself (which names the released code writes) belongs to the method package that knows that code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import CheckpointError


@dataclass(frozen=True)
class ReleasedLayout:
    """How a method's released code saves its weights, declared as data by the method package.

    ``state_key``: the entry of the saved dict that holds the model's state dict ("model").
    ``strip``: a prefix removed when *every* key carries it (``nn.DataParallel``'s "module.").
    ``rename``: (released prefix, our prefix) pairs, first match wins (e.g. "base_model." -> "encoder.clip.").
    ``set_aside``: released top-level names evaluation does not use (training heads); read, never required.
    ``eval_prefixes``: our parameter names evaluation uses; each must be in the file, at our shape.
    ``ours_only``: our parameter names the released code has no counterpart for (kept as built).
    ``config``: our config file that builds the released model (relative to the method's ``config_dir``).
    ``training``: what is known of how the released weights were trained (plain JSON for the record).
    """

    source: str
    files: str
    state_key: str = "model"
    strip: str = "module."
    rename: tuple[tuple[str, str], ...] = ()
    set_aside: tuple[str, ...] = ()
    eval_prefixes: tuple[str, ...] = ("encoder.",)
    ours_only: tuple[str, ...] = ()
    config: str = "default.py"
    training: dict = field(default_factory=dict)

    def our_name(self, key: str) -> str | None:
        """Our parameter name for a released key (prefix already stripped); None for a set-aside part."""
        if key.split(".", 1)[0] in self.set_aside:
            return None
        for src, dst in self.rename:
            if key.startswith(src):
                return dst + key[len(src):]
        return key

    def released_name(self, ours: str) -> str:
        for src, dst in self.rename:
            if ours.startswith(dst):
                return src + ours[len(dst):]
        return ours


def released_state_dict(layout: ReleasedLayout, state, path) -> tuple[dict, list[str]]:
    """The file's tensors under our names for the parts evaluation uses, and the set-aside top-level names.
    A file of another layout is one line naming it and the first key that does not fit."""
    if not isinstance(state, dict) or not isinstance(state.get(layout.state_key), dict):
        keys = sorted(map(str, state))[:6] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: no '{layout.state_key}' state dict (found {keys}); not a checkpoint written "
                              f"by {layout.source} ({layout.files})")
    sd = state[layout.state_key]
    if not sd or not all(isinstance(k, str) for k in sd):
        raise CheckpointError(f"{path}: '{layout.state_key}' holds no named tensors")
    if layout.strip and all(k.startswith(layout.strip) for k in sd):
        sd = {k[len(layout.strip):]: v for k, v in sd.items()}
    out, aside = {}, set()
    for k, v in sd.items():
        ours = layout.our_name(k)
        if ours is None:
            aside.add(k.split(".", 1)[0])
            continue
        if not any(ours.startswith(p) for p in layout.eval_prefixes):
            raise CheckpointError(f"{path}: key '{k}' is not part of the layout of {layout.source}; not a checkpoint "
                                  f"its code wrote")
        if not hasattr(v, "shape"):
            raise CheckpointError(f"{path}: key '{k}' holds a {type(v).__name__}, not a tensor")
        out[ours] = v
    return out, sorted(aside)


def check_fits(layout: ReleasedLayout, mapped: dict, model_state: dict, path, where: str) -> None:
    """Every parameter evaluation uses is in the file, at the shape the config builds; else one line."""
    for ours, t in model_state.items():
        if not any(ours.startswith(p) for p in layout.eval_prefixes) or ours in layout.ours_only:
            continue
        if ours not in mapped:
            raise CheckpointError(f"{path}: key '{layout.released_name(ours)}' is missing (the model of {where} "
                                  f"needs it for evaluation)")
        got = tuple(mapped[ours].shape)
        if got != tuple(t.shape):
            raise CheckpointError(f"{path}: key '{layout.released_name(ours)}' has shape {got} in the file but "
                                  f"{tuple(t.shape)} in the model of {where}; set the config to the released model's "
                                  "(e.g. method.encoder.preset / image_size / context_length)")
    extra = sorted(set(mapped) - set(model_state))
    if extra:
        raise CheckpointError(f"{path}: key '{layout.released_name(extra[0])}' has no place in the model of {where}")
