"""Config resolution: one mmengine ``_base_`` chain (``harness.config_chain``) whose roots inherit the
runtime and dataset defaults, then the command line's overrides (``--dataset``, ``--cfg-options``).

Order, lowest first: ``harness/configs/runtime.py``, ``datasets/<name>.py``, the method's chain
(``methods/<m>/configs/<dataset>.py`` when it exists, else ``default.py``; or ``--config FILE``), the
overrides. Every value is then type- and range-checked, with the file and key named.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mmengine.config import Config, ConfigDict

from .config_chain import RUNTIME_CONFIG, read_chain  # noqa: F401  (RUNTIME_CONFIG: read by tests and tools)
from .config_schema import check_encoder_slots, check_method_encoders, encoder_slots, validate_values
from .errors import ConfigError, HarnessError, one_line
from .registry import get_dataset_class, get_method_class

REPO_ROOT = Path(__file__).resolve().parents[1]


def dataset_file(name: str) -> Path | None:
    """``datasets/<name>.py`` of a *registered* dataset, or None when it has none. The name comes from the
    command line or a config value, so it is looked up in the registry before it names a file: a value
    such as ``../../x`` is an unknown dataset, never a path to a Python file outside the folder."""
    get_dataset_class(name)  # UnknownNameError (one line, the registered names) for anything else
    dfile = dataset_config_dir() / f"{name}.py"
    return dfile if dfile.is_file() else None


def dataset_defaults(name: str) -> dict:
    """The ``dataset`` section of ``datasets/<name>.py`` (``{"type": name}`` when there is no such file)."""
    dfile = dataset_file(name)
    if dfile is None:
        return dict(type=name)
    try:
        section = Config.fromfile(str(dfile)).to_dict().get("dataset", {})
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{dfile}: cannot parse config: {one_line(exc)}") from None
    return dict(section, type=name)


def method_config_dir(method: str) -> Path:
    d = get_method_class(method).config_dir
    if d is None or not Path(d).is_dir():
        raise HarnessError(f"method '{method}' has no config_dir (set <class>.config_dir to its configs folder)")
    return Path(d)


def dataset_config_dir() -> Path:
    """Where the per-dataset configs live: ``harness/dataset_configs`` in an installed wheel, the
    repository's ``datasets/`` folder in a source checkout or editable install."""
    installed = Path(__file__).resolve().parent / "dataset_configs"
    if installed.is_dir():
        return installed
    import importlib.util

    spec = importlib.util.find_spec("harness.dataset_configs")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if Path(loc).is_dir():
            return Path(loc)
    return REPO_ROOT / "datasets"


def _defaults_for(dataset: str | None) -> list[Path]:
    dfile = dataset_file(dataset) if dataset else None
    return [RUNTIME_CONFIG] + ([dfile] if dfile is not None else [])


def load_config(method: str | None = None, dataset: str | None = None, config: str | None = None,
                options: dict | None = None) -> Config:
    if config:
        entry = Path(config)
        if not entry.is_file():
            raise HarnessError(f"config file not found: {entry}")
        chosen = dataset or read_chain(entry, [RUNTIME_CONFIG]).get("dataset", {}).get("type")
    else:
        if not method or not dataset:
            raise HarnessError("give --config, or both --method and --dataset")
        mdir = method_config_dir(method)
        dataset_file(dataset)  # a registered name before it names the method x dataset file
        entry = mdir / f"{dataset}.py" if (mdir / f"{dataset}.py").is_file() else mdir / "default.py"
        chosen = dataset
    cfg = read_chain(entry, _defaults_for(chosen))
    if dataset:  # `--dataset D` (with a method, or a --config variant run on D)
        cfg.merge_from_dict(dict(dataset=dict(type=dataset)))
    where = config or f"{method} x {dataset}"
    slots = encoder_slots(cfg.to_dict().get("method", {}))
    if options:
        try:
            cfg.merge_from_dict(options)
        except Exception as exc:  # noqa: BLE001  (any failure to merge user overrides is bad input)
            raise ConfigError(f"--cfg-options cannot be merged into the config: {type(exc).__name__}: {exc}") from None
        try:
            check_encoder_slots(slots, cfg.to_dict().get("method", {}))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    validate(cfg, where)
    return cfg


def validate(cfg: Config, where: str) -> None:
    """Every harness value type- and range-checked (harness/config_schema.py); the error names ``where``."""
    plain = cfg.to_dict() if isinstance(cfg, Config) else cfg
    try:
        validate_values(plain)
        check_method_encoders(plain["method"])
        get_method_class(plain["method"]["type"]).validate_config(dict(plain["method"]))
        for key, ds in [("dataset", plain["dataset"])] + [(f"cross_domain[{i}]", x)
                                                          for i, x in enumerate(plain.get("cross_domain") or [])]:
            check_dataset_keys(key, ds)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_dataset_keys(key: str, ds: dict) -> None:
    """A dataset section may hold only the keywords its class takes (plus ``type``)."""
    import inspect

    cls = get_dataset_class(ds["type"])
    params = cls.config_keys or inspect.signature(cls.__init__).parameters
    if any(getattr(p, "kind", None) is inspect.Parameter.VAR_KEYWORD for p in getattr(params, "values", list)()):
        return
    bad = sorted(set(ds) - set(params) - {"type"})
    if bad:
        allowed = sorted(n for n in params if n != "self")
        raise ConfigError(f"unknown config key(s) {', '.join(f'{key}.{b}' for b in bad)} for dataset "
                          f"'{ds['type']}'; allowed: {', '.join(allowed)}")


def parse_options(items: list[str] | None) -> dict:
    """``a.b=1 c=[1,2] d=text e=dict(type='x', n=2)`` -> nested dict. Values are Python/JSON literals when
    they parse as one (``dict(k=v)`` included, the notation of the configs and the README), else text; a
    key with an empty part, or one that is set both to a value and to sub-keys, is refused."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--cfg-options expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        parts = key.split(".")
        if not all(p.strip() for p in parts):
            raise ConfigError(f"--cfg-options '{item}': the key has an empty part; write section.key=value, "
                              "e.g. train.batch_size=32")
        value = _literal(raw)
        node = out
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--cfg-options '{item}': '{'.'.join(parts[:i + 1])}' is already set to "
                                  f"{node!r}, so it cannot also take the sub-key '{parts[i + 1]}'")
        node[parts[-1]] = value
    return out


def _literal(raw: str):
    """A literal, or ``dict(...)``/``list(...)``/``tuple(...)`` of literals; anything else stays text (data is
    never code: nothing here is evaluated beyond those constructors)."""
    import ast

    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        tree = ast.parse(raw.strip(), mode="eval").body
        return _build(tree)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw


def _build(node):
    import ast

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("dict", "list", "tuple"):
        if node.func.id == "dict" and not node.args and all(k.arg for k in node.keywords):
            return {k.arg: _build(k.value) for k in node.keywords}
        if node.func.id != "dict" and len(node.args) <= 1 and not node.keywords:
            return {"list": list, "tuple": tuple}[node.func.id](_build(node.args[0]) if node.args else ())
        raise ValueError("unsupported constructor call")
    if isinstance(node, (ast.List, ast.Tuple)):
        return (list if isinstance(node, ast.List) else tuple)(_build(e) for e in node.elts)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_build(k): _build(v) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def to_plain(cfg) -> dict:
    return json.loads(json.dumps(cfg.to_dict() if isinstance(cfg, (Config, ConfigDict)) else cfg, default=str))


def run_name(cfg) -> str:
    """``<method>-<dataset>-s<seed>-<config hash>``: a run's work-dir name and its sweep job key."""
    plain = to_plain(cfg)
    return f"{plain['method']['type']}-{plain['dataset']['type']}-s{int(plain['seed'])}-{config_hash(plain)}"


def config_hash(cfg: dict) -> str:
    kept = {k: v for k, v in cfg.items() if k not in ("seed", "work_root", "results_dir")}
    blob = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]
