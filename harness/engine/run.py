"""``harness run``: resolve the data, build the method, train, then score the test split and every
cross-domain set, one results record each. Each step lives in its own module; this one only orders them."""
from __future__ import annotations

from pathlib import Path

from mmengine.dist import get_world_size, is_main_process

from ..data.overlap import check_split_overlap
from ..errors import ConfigError, HarnessError
from ..results import ResultsStore
from .build import is_generated, require_eval_split, require_images, resolve_dataset
from .. import weights_ledger
from .records import Provenance, code_environment, evaluate_record, git_state, store_all
from .schedulers import fit_notes
from .selection import hold_out_val
from .train import seeded_method, train, work_dir_for


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


def prepare_splits(cfg, data_root: str | None = None):
    """The training splits as the run will use them: loaded, checked, val identities held out if asked."""
    splits = resolve_dataset(cfg.dataset, data_root)
    if not splits.train:
        raise HarnessError(f"{splits.annotation_file}: the train split is empty; '{splits.name}' cannot be trained on")
    require_eval_split(splits, "test")
    if cfg.train.val_split:
        if splits.val:
            raise ConfigError(f"train.val_split={cfg.train.val_split}: '{splits.name}' has its own val split; "
                              "leave train.val_split at 0")
        hold_out_val(splits, float(cfg.train.val_split), int(cfg.seed))
    check_split_overlap(splits)
    require_images(splits.train + splits.val + splits.test, splits, splits.name)
    return splits


def run_job(cfg, data_root: str | None = None, work_dir: str | None = None, results_dir: str | None = None,
            resume: bool = True, launcher: str = "none", progress: bool = True,
            log_level: str = "WARNING") -> list[Path]:
    code = git_state()  # before anything runs: a commit made during a long run must not be credited with it
    splits = prepare_splits(cfg, data_root)
    cross = [resolve_dataset(xd) for xd in cfg.get("cross_domain", []) or []]
    for xs in cross:
        require_images(require_eval_split(xs, "test"), xs, xs.name)
    method = seeded_method(cfg, splits)
    require_pretrained_parts(method, cfg, splits.name)
    environment = code_environment(method)  # the plugin source as built, before a long training run
    trained = train(cfg, splits, method, Path(work_dir) if work_dir else work_dir_for(cfg), resume=resume,
                    launcher=launcher, progress=progress, log_level=log_level, data_root=data_root, code=code)
    if not is_main_process():
        return []
    prov = Provenance("run", cfg, int(cfg.seed), trained.train_data, trained.checkpoint, trained.selection,
                      extra=dict(work_dir=str(trained.work_dir), train_seconds=trained.train_seconds,
                                 world_size=get_world_size(), precision=trained.precision,
                                 code_history=trained.code_history, schedule_fit=fit_notes(cfg),
                                 **environment), code=code)
    results = [evaluate_record(trained.method, s, s.test, "test", prov, cfg, progress) for s in [splits, *cross]]
    return store_all(ResultsStore(results_dir or cfg.results_dir), results)
