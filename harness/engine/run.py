"""``harness run``: settings, data, method, training, scoring, records -- one results record per evaluation
set (the test split and every cross-domain set). Each step lives in its own module, entered once from
``run_job``; this one only orders them and holds the checks that need data and config together."""
from __future__ import annotations

from pathlib import Path

from mmengine.dist import get_world_size, is_main_process

from .. import weights_ledger
from ..data.fingerprint import train_data_facts
from ..data.overlap import check_split_overlap
from ..data.resolve import is_generated, resolve_dataset
from ..data.split_checks import require_eval_split, require_split_images
from ..errors import ConfigError, HarnessError
from ..provenance import code_environment
from ..results import ResultsStore
from .code_state import git_state
from .evaluate import score_split
from .model import seeded_method
from .record_builder import Provenance, write_records
from .selection import hold_out_val
from .settings import TrainSettings, train_settings
from .train import train, work_dir_for


def require_pretrained_parts(method, cfg, dataset_name: str) -> None:
    """On a real dataset every encoder part must have loaded its weights, or have its weights key set to
    ``random`` on purpose: the ledger names the parts and the method's own keys (``method.vision.checkpoint``)."""
    if is_generated(cfg.dataset):
        return
    missing = weights_ledger.missing_weights(weights_ledger.ledger_of(method))
    if missing:
        parts = ", ".join(f"{e['key'] or e['encoder']} ({e['encoder']})" for e in missing)
        hints = " ".join(weights_ledger.weights_hint(e) for e in missing)
        keys = ", ".join(f"{e['key']}.{e['weights_key']}" for e in missing if e["key"])
        raise ConfigError(f"{cfg.method.type} on '{dataset_name}' would start {parts} from random weights: pass "
                          f"--cfg-options {hints}, or set {keys or 'the weights key'} to 'random' to train "
                          "from scratch on purpose")


def prepare_splits(cfg, settings: TrainSettings, data_root: str | None = None):
    """The training splits as the run will use them: loaded, checked, val identities held out if asked."""
    splits = resolve_dataset(cfg.dataset, data_root)
    if not splits.train:
        raise HarnessError(f"{splits.annotation_file}: the train split is empty; '{splits.name}' cannot be trained on")
    require_eval_split(splits, "test")
    val_split = float(cfg.train.val_split or 0)
    if val_split:
        if splits.val:
            raise ConfigError(f"train.val_split={cfg.train.val_split}: '{splits.name}' has its own val split; "
                              "leave train.val_split at 0")
        hold_out_val(splits, val_split, settings.seed)
    if settings.selection == "val" and not splits.val:
        raise ConfigError(f"train.selection='val' but '{splits.name}' has no val split; set train.val_split=0.1 "
                          "(identities held out from train, chosen by the seed) or train.selection='last'")
    check_split_overlap(splits)
    require_split_images(splits.train + splits.val + splits.test, splits, splits.name)
    return splits


def cross_domain_sets(cfg) -> list:
    """The extra evaluation sets of ``cross_domain``, loaded and checked before training starts."""
    sets = [resolve_dataset(xd) for xd in cfg.get("cross_domain", []) or []]
    for xs in sets:
        require_split_images(require_eval_split(xs, "test"), xs, xs.name)
    return sets


def run_job(cfg, data_root: str | None = None, work_dir: str | None = None, results_dir: str | None = None,
            resume: bool = True, launcher: str = "none", progress: bool = True,
            log_level: str = "WARNING") -> list[Path]:
    """``cfg`` comes from ``harness.config.load_config`` (validated); each step below runs once."""
    code = git_state()  # before anything runs: a commit made during a long run must not be credited with it
    settings = train_settings(cfg)
    splits = prepare_splits(cfg, settings, data_root)
    cross = cross_domain_sets(cfg)
    train_data = train_data_facts(splits)
    method = seeded_method(cfg, settings, splits)
    require_pretrained_parts(method, cfg, splits.name)
    environment = code_environment(method)  # the plugin source as built, before a long training run
    trained = train(cfg, settings, splits, train_data, method, Path(work_dir) if work_dir else work_dir_for(cfg),
                    resume=resume, launcher=launcher, progress=progress, log_level=log_level, data_root=data_root,
                    code=code)
    if not is_main_process():
        return []
    scored = [score_split(trained.method, s, s.test, "test", settings.eval, progress) for s in [splits, *cross]]
    prov = Provenance("run", cfg, settings.seed, train_data, trained.checkpoint, trained.selection,
                      extra=dict(work_dir=str(trained.work_dir), train_seconds=trained.train_seconds,
                                 world_size=get_world_size(), precision=trained.precision,
                                 code_history=trained.code_history, schedule_fit=settings.schedule_fit,
                                 **environment), code=code)
    return write_records(ResultsStore(results_dir or cfg.results_dir), prov, trained.method, scored)
