"""``harness eval --released NAME``: score a checkpoint written by a method's *released* code (IRRA's
``best.pth``, FMFA's ``best0.pth``...) with the harness's evaluation, so its numbers share a table with the
harness-trained rows of the same data.

The method package declares the file's layout (``<class>.released_layout``, a ``harness.released.ReleasedLayout``);
this module knows no method. Only the parts evaluation uses are required and loaded; the training heads in the
file are read and set aside; a shape that does not fit the config is one line naming the key and both shapes.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .. import weights_ledger
from ..config import dataset_defaults, load_config
from ..data.fingerprint import train_data_facts
from ..data.resolve import resolve_dataset
from ..data.split_checks import require_eval_split, require_split_images
from ..errors import ConfigError
from ..hashing import sha256_file
from ..registry import build_method, get_method_class
from ..released import check_fits, released_state_dict
from ..results import ResultsStore
from .checkpoint_files import load_checkpoint
from .code_state import git_state
from .evaluate import score_split
from .record_builder import Provenance, write_records
from .settings import eval_settings

RELEASED_CONFIG_FILES = ("configs.yaml",)  # IRRA/FMFA utils/iotools.py save_train_configs, beside best*.pth


def released_layout(name: str):
    cls = get_method_class(name)
    layout = cls.released_layout
    if layout is None:
        raise ConfigError(f"--released {name}: method '{name}' declares no released checkpoint layout "
                          "(its released code saves no weights this harness can read)")
    return cls, layout


def _released_config(ckpt: Path) -> dict | None:
    """The released run's argument dump beside the checkpoint (``configs.yaml``), read as plain data: its sha256
    and the keys that say how it trained. YAML tags other than Python tuples are refused by the safe loader."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_constructor("tag:yaml.org,2002:python/tuple", lambda ld, node: ld.construct_sequence(node))
    for name in RELEASED_CONFIG_FILES:
        f = ckpt.parent / name
        if f.is_file():
            info = dict(path=str(f), sha256=sha256_file(f))
            try:
                args = yaml.load(f.read_text(), Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                return dict(info, unreadable=type(exc).__name__)
            if isinstance(args, dict):
                info.update({k: args[k] for k in ("dataset_name", "loss_names", "num_epoch", "batch_size", "lr",
                                                  "img_size", "cmt_depth", "temperature", "val_dataset")
                             if k in args and isinstance(args[k], (str, int, float, list))})
            return info
    return None


def _int_or_none(v):
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def evaluate_released(name: str, checkpoint: str, dataset: str, data_root: str | None = None,
                      config: str | None = None, options: dict | None = None, split: str = "test",
                      results_dir: str | None = None, train_dataset: str | None = None,
                      train_data_root: str | None = None) -> list[Path]:
    code = git_state()
    cls, layout = released_layout(name)
    ckpt = Path(checkpoint)
    cfg_file = config or str(Path(cls.config_dir) / layout.config)
    cfg = load_config(config=cfg_file, dataset=dataset, options=options)
    settings = eval_settings(cfg)
    if cfg.method.type != name:
        raise ConfigError(f"{cfg_file}: builds method '{cfg.method.type}', not the released '{name}'")
    state = load_checkpoint(ckpt)  # one line for a missing, empty or unreadable file
    mapped, aside = released_state_dict(layout, state, ckpt)
    splits = resolve_dataset(cfg.dataset, data_root)
    records = require_eval_split(splits, split)
    require_split_images(records, splits, f"{splits.name} {split}")
    if train_dataset and train_dataset != dataset:
        train_splits = resolve_dataset(dataset_defaults(train_dataset), train_data_root)
    elif not splits.train:
        raise ConfigError(f"--dataset {dataset} has no train split to fingerprint the released model's training "
                          "data: name that data with --train-dataset (e.g. cuhk) and --train-data-root")
    else:
        train_splits = splits
    # the ID head is set aside; its row count (identities, or FMFA's image-caption pairs) only sizes the model
    sd = state[layout.state_key]
    cls_w = sd.get(f"{layout.strip}classifier.weight", sd.get("classifier.weight"))
    num_classes = int(cls_w.shape[0]) if getattr(cls_w, "ndim", 0) == 2 else 1
    method = build_method(cfg.method, num_classes)
    where = f"{cfg_file} (+ --cfg-options)" if options else cfg_file
    check_fits(layout, mapped, method.state_dict(), ckpt, where)
    with torch.no_grad():
        missing, unexpected = method.load_state_dict(mapped, strict=False)
    assert not unexpected, unexpected  # check_fits refused them
    sha = sha256_file(ckpt)
    _credit_released_file(method, ckpt, sha, name)
    method.to("cuda" if torch.cuda.is_available() else "cpu")
    epoch = _int_or_none(state.get("epoch"))
    released = dict(method=name, source=layout.source, file=ckpt.name, sha256=sha, epoch=epoch,
                    num_epoch=_int_or_none(state.get("num_epoch")), iteration=_int_or_none(state.get("iteration")),
                    training=dict(layout.training), set_aside=aside,
                    state_keys=sorted(k for k in state if k != layout.state_key and isinstance(k, str)),
                    released_config=_released_config(ckpt),
                    train_data=("named by --train-dataset" if train_dataset else
                                f"assumed to be the train split of --dataset {dataset} (not recorded in the file)"))
    prov = Provenance("eval", cfg, int(cfg.seed), train_data_facts(train_splits),
                      checkpoint=dict(path=str(ckpt), sha256=sha, epoch=epoch),
                      selection=dict(rule="released", selected_epoch=epoch,
                                     released_rule=layout.training.get("selection")),
                      extra=dict(precision=settings.precision.describe(),
                                 code_history=None, released=released), code=code)
    scored = score_split(method, splits, records, split, settings)
    return write_records(ResultsStore(results_dir or cfg.results_dir), prov, method, [scored])


def _credit_released_file(method, ckpt: Path, sha: str, name: str) -> None:
    """The ledger says where the encoder's weights now come from: the released checkpoint, not a random init."""
    entry = dict(path=str(ckpt.resolve()), sha256=sha, format=f"{name} released checkpoint")
    for e in weights_ledger.ledger_of(method).entries:
        e.update(files=[entry], random=False, random_on_purpose=False)

