"""The sweep grid: one job per (method, dataset, seed), each described by the exact ``harness run``
arguments it will execute and the config hash that run will write into its records, so a finished
job can be recognised in the results store before anything is submitted."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import config_hash, load_config, parse_options, run_name, to_plain
from ..errors import ConfigError
from ..registry import get_dataset_class
from ..results import ResultsStore


@dataclass
class JobSpec:
    key: str                       # <method>-<dataset>-s<seed>-<config hash>, the harness's default work_dir name
    method: str
    dataset: str                   # the registered name given on the command line
    seed: int
    config_hash: str
    train_dataset: str             # the name a record carries in ``train_dataset``
    eval_datasets: list[str]       # every record a finished run writes: the test split, then each cross-domain set
    argv: list[str]                # arguments after ``harness run``
    job_id: str | None = None      # submitit job id once submitted
    submitted: str | None = None   # "skipped (finished)" or the submission time

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> JobSpec:
        return cls(**d)


def _dataset_name(ds_type: str) -> str:
    return get_dataset_class(ds_type).name


def parse_list(text: str | None, what: str, cast=str) -> list:
    items = [t.strip() for t in (text or "").replace(" ", ",").split(",") if t.strip()]
    if not items:
        raise ConfigError(f"harness sweep: --{what} is empty; give a comma-separated list, e.g. --{what} a,b")
    try:
        return [cast(t) for t in items]
    except ValueError:
        raise ConfigError(f"harness sweep: --{what} '{text}' must be a comma-separated list of integers") from None


def parse_data_roots(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"harness sweep: --data-root expects DATASET=DIR, got '{item}'")
        name, root = item.split("=", 1)
        out[name] = str(Path(root).expanduser().resolve())
    return out


def scoped_options(items: list[str] | None, method: str, dataset: str, names: set[str]) -> list[str]:
    """``KEY=VALUE`` applies to every job; ``NAME:KEY=VALUE`` only to jobs of method or dataset NAME
    (method configs differ: ``fmfa:method.encoder.image_size=(32,16) ivt:method.vision.image_size=(32,16)``)."""
    out = []
    for item in items or []:
        scope, sep, rest = item.partition(":")
        if sep and "=" not in scope and scope in names:
            if scope in (method, dataset):
                out.append(rest)
        else:
            out.append(item)
    return out


def expand_grid(methods: list[str], datasets: list[str], seeds: list[int], cfg_options: list[str] | None = None,
                data_roots: dict[str, str] | None = None, results_dir: str | Path = "results") -> list[JobSpec]:
    """Resolve every config exactly as ``harness run`` will (same options, same seed override), so
    ``config_hash`` equals the one the run writes into its records."""
    data_roots = data_roots or {}
    unknown = sorted(set(data_roots) - set(datasets))
    if unknown:
        raise ConfigError(f"harness sweep: --data-root names dataset(s) {', '.join(unknown)} not in --datasets")
    jobs = []
    for dataset in datasets:
        for method in methods:
            for seed in seeds:
                job_options = scoped_options(cfg_options, method, dataset, set(methods) | set(datasets))
                opts = parse_options(job_options)
                opts["seed"] = seed
                cfg = load_config(method, dataset, None, opts)
                chash = config_hash(to_plain(cfg))
                evals = [_dataset_name(cfg.dataset.type)]
                evals += [_dataset_name(x["type"]) for x in (cfg.get("cross_domain", []) or [])]
                argv = ["--method", method, "--dataset", dataset, "--seed", str(seed),
                        "--results-dir", str(Path(results_dir).resolve())]
                if dataset in data_roots:
                    argv += ["--data-root", data_roots[dataset]]
                if job_options:
                    argv += ["--cfg-options", *job_options]
                key = run_name(cfg)
                jobs.append(JobSpec(key=key, method=method, dataset=dataset, seed=seed, config_hash=chash,
                                    train_dataset=evals[0], eval_datasets=evals, argv=argv))
    keys = [j.key for j in jobs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ConfigError(f"harness sweep: the grid lists the same job twice ({', '.join(dupes)}); remove repeats")
    return jobs


def finished_records(job: JobSpec, records: list[dict]) -> dict[str, str] | None:
    """Paths of the newest record per evaluation set if the run finished (every set it evaluates
    has a record with the job's method, train dataset, seed and config hash), else None."""
    found: dict[str, dict] = {}
    for r in records:
        if (r.get("method") == job.method and r.get("train_dataset") == job.train_dataset
                and r.get("seed") == job.seed and r.get("config_hash") == job.config_hash
                and r.get("eval_dataset") in job.eval_datasets):
            prev = found.get(r["eval_dataset"])
            if prev is None or r.get("created", "") >= prev.get("created", ""):
                found[r["eval_dataset"]] = r
    if set(found) != set(job.eval_datasets):
        return None
    return {ds: found[ds]["_path"] for ds in job.eval_datasets}


def store_records(results_dir: str | Path) -> list[dict]:
    return ResultsStore(results_dir).records()
