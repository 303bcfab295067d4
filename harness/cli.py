"""``harness`` command line: run, eval, data verify, list, inspect, leaderboard, new-method, sweep.

Only the command that runs imports what it needs: ``list``, ``inspect``, ``leaderboard --help`` and
``sweep status`` start without torch or any plugin (tests/test_cli_fast.py)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import HarnessError, one_line
from .leaderboard import DEFAULT_ALPHA, DEFAULT_RESAMPLES


def _add_run(sub):
    p = sub.add_parser("run", help="train a method on a dataset, evaluate, and store per-query results")
    p.add_argument("--method", help="method plugin name (see `harness list`)")
    p.add_argument("--dataset", help="dataset name (see `harness list`)")
    p.add_argument("--config", help="mmengine config file (instead of --method/--dataset)")
    p.add_argument("--data-root", help="dataset root folder (overrides dataset.root)")
    p.add_argument("--seed", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--work-dir", help="checkpoint/log folder (default: work_dirs/<method>-<dataset>-s<seed>-<hash>)")
    p.add_argument("--results-dir", help="results store (default: results/)")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if checkpoints exist")
    p.add_argument("--launcher", default="none", choices=["none", "pytorch"], help="'pytorch' under torchrun (DDP)")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE",
                   help="override config keys, e.g. train.batch_size=32")


def cmd_run(a):
    from .config import load_config, parse_options
    from .engine.run import run_job

    opts = parse_options((a.cfg_options or []) + ([f"seed={a.seed}"] if a.seed is not None else [])
                         + ([f"train.epochs={a.epochs}"] if a.epochs is not None else []))
    cfg = load_config(a.method, a.dataset, a.config, opts)
    from .engine.train import work_dir_for
    from .outputs import check_writable_dir

    check_writable_dir(a.results_dir or cfg.results_dir, "--results-dir")  # before any data is read
    check_writable_dir(a.work_dir or work_dir_for(cfg), "--work-dir")
    paths = run_job(cfg, data_root=a.data_root, work_dir=a.work_dir, results_dir=a.results_dir,
                    resume=not a.no_resume, launcher=a.launcher)
    for p in paths:
        rec = json.loads((p / "record.json").read_text())
        m = rec["metrics"]
        print(f"{rec['eval_dataset']:>10}: R1 {m['R1']:.2f}  R5 {m['R5']:.2f}  R10 {m['R10']:.2f}  "
              f"mAP {m['mAP']:.2f}  mINP {m['mINP']:.2f}  -> {p}")
    return 0


def _add_eval(sub):
    p = sub.add_parser("eval", help="evaluate a trained checkpoint on a dataset (e.g. cross-domain on UFine3C)")
    p.add_argument("--checkpoint", required=True, help="mmengine checkpoint (its folder holds harness_config.json), "
                   "or with --released a file written by the method's released code (best.pth, best0.pth...)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root")
    p.add_argument("--split", default="test")
    p.add_argument("--results-dir")
    p.add_argument("--released", metavar="NAME", help="the checkpoint was written by NAME's released code "
                   "(irra, fmfa); the model is built from --config (default: NAME's configs/default.py)")
    p.add_argument("--config", help="with --released: the mmengine config that builds the released model")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", help="with --released: override config keys")
    p.add_argument("--train-dataset", help="with --released: the dataset the released model was trained on "
                   "(default: --dataset); its train split fingerprints the record")
    p.add_argument("--train-data-root", help="with --released and --train-dataset: that dataset's root")


def cmd_eval(a):
    from .engine.evaluate_checkpoint import evaluate_checkpoint
    from .outputs import check_writable_dir

    if a.results_dir:
        check_writable_dir(a.results_dir, "--results-dir")
    if a.released:
        from .config import parse_options
        from .engine.released_checkpoints import evaluate_released

        paths = evaluate_released(a.released, a.checkpoint, a.dataset, a.data_root, a.config,
                                  parse_options(a.cfg_options), a.split, a.results_dir, a.train_dataset,
                                  a.train_data_root)
    else:
        given = [f for f, v in (("--config", a.config), ("--cfg-options", a.cfg_options),
                                ("--train-dataset", a.train_dataset), ("--train-data-root", a.train_data_root)) if v]
        if given:
            raise HarnessError(f"{', '.join(given)}: only with --released (a run folder's checkpoint is rebuilt "
                               "from its harness_config.json)")
        paths = evaluate_checkpoint(a.checkpoint, a.dataset, a.data_root, a.split, a.results_dir)
    for p in paths:
        rec = json.loads((p / "record.json").read_text())
        m = rec["metrics"]
        print(f"{rec['eval_dataset']}: R1 {m['R1']:.2f}  mAP {m['mAP']:.2f}  mINP {m['mINP']:.2f}  -> {p}")
        for src, sm in rec.get("per_source", {}).items():
            print(f"    source {src}: R1 {sm['R1']:.2f}  mAP {sm['mAP']:.2f}")
    return 0


def _add_data(sub):
    p = sub.add_parser("data", help="dataset tools")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    v = dsub.add_parser("verify", help="count ids/images/captions per split and list missing or unreadable images")
    v.add_argument("--dataset", required=True)
    v.add_argument("--root", "--data-root", dest="root", help="dataset root folder (not needed for synth)")
    v.add_argument("--annotation-file")
    v.add_argument("--no-decode", action="store_true", help="only read image headers (faster)")
    v.add_argument("--max-image-pixels", type=int, help="refuse images with more pixels (dataset.max_image_pixels)")
    v.add_argument("--max-caption-chars", type=int, help="caption length bound (dataset.max_caption_chars)")
    v.add_argument("--max-caption-words", type=int, help="caption length bound (dataset.max_caption_words)")


def cmd_data(a):
    from .data.verify import verify

    report = verify(a.dataset, a.root, a.annotation_file, decode=not a.no_decode,
                    max_image_pixels=a.max_image_pixels, max_caption_chars=a.max_caption_chars,
                    max_caption_words=a.max_caption_words)
    print(report.as_text())
    return 0 if report.ok else 1


def _add_list(sub):
    sub.add_parser("list", help="list registered methods, datasets and encoders")


def cmd_list(a):
    # names only, from package metadata and the encoders' static table: no plugin (nor torch) is imported
    from .names import BUILTIN_ENCODERS, dataset_entry_points, plugin_entry_points

    eps = plugin_entry_points()
    print("methods:  " + ", ".join(f"{n} ({v})" for n, v in sorted(eps.items())))
    print("datasets: " + ", ".join(sorted(dataset_entry_points())))
    print("encoders: " + ", ".join(BUILTIN_ENCODERS))
    return 0


def _add_inspect(sub):
    p = sub.add_parser("inspect", help="HTML page of a record's retrievals (top-k thumbnails, true matches marked), "
                                       "breakdowns with CIs (also CSV); --vs: where two records disagree")
    p.add_argument("record", help="record folder in the results store, e.g. results/<record_id>")
    p.add_argument("--vs", metavar="RECORD", help="a second record on the same queries: shown side by side")
    p.add_argument("--worst", type=int, metavar="N", help="the N queries with the worst first-match rank (default 10)")
    p.add_argument("--query", nargs="+", metavar="ID", help="queries to show: index or query key (path#n)")
    p.add_argument("--data-root", help="the dataset folder the record was evaluated on (thumbnails are read there)")
    p.add_argument("--out", help="output folder (default: inspect/<record folder name>)")
    p.add_argument("--resamples", type=int, default=1000, help="identity-bootstrap resamples of the breakdown CIs")


def cmd_inspect(a):
    from .inspector import inspect_records  # numpy, PIL and scipy only: no torch, no plugin

    if a.resamples < 99:
        raise HarnessError(f"--resamples {a.resamples}: use at least 99")
    res = inspect_records(a.record, a.data_root, a.out, vs=a.vs, worst_n=a.worst, queries=a.query,
                          resamples=a.resamples)
    if res.counts:
        print(f"rank 1 for A only: {res.counts['a_only']}, for B only: {res.counts['b_only']}")
    print(f"{res.page} ({res.shown} queries shown; {res.missing_images} gallery images missing, shown as "
          f"placeholders)\n{res.csv}")
    return 0


def _add_leaderboard(sub):
    p = sub.add_parser("leaderboard", help="rebuild leaderboard tables from one or more results stores")
    p.add_argument("--results-dir", nargs="+", default=["results"], metavar="DIR",
                   help="results stores (several: a record found in two is counted once)")
    p.add_argument("--out", default="leaderboards")
    p.add_argument("--force", action="store_true",
                   help="replace a board of other stores in --out (e.g. the committed leaderboards/)")
    p.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)


def cmd_leaderboard(a):
    from .leaderboard.tables import build_leaderboards

    if a.resamples < 99:
        raise HarnessError(f"--resamples {a.resamples}: use at least 99 (p-values are multiples of 1/(resamples+1))")
    if not 0 < a.alpha < 1:
        raise HarnessError(f"--alpha {a.alpha}: must be between 0 and 1")
    from .outputs import check_writable_dir

    check_writable_dir(a.out, "--out")

    for p in build_leaderboards(a.results_dir, a.out, resamples=a.resamples, alpha=a.alpha, force=a.force):
        print(p)
    return 0


def _add_new_method(sub):
    p = sub.add_parser("new-method", help="scaffold a method plugin package")
    p.add_argument("name")
    p.add_argument("--dest", default=".", help="folder in which to create tipr-<name>/")


def cmd_new_method(a):
    from .scaffold import scaffold_method

    path = scaffold_method(a.name, Path(a.dest))
    print(f"created {path}; install it with: pip install -e {path}")
    return 0


def _add_sweep(sub):
    p = sub.add_parser("sweep", help="run methods x datasets x seeds as submitit jobs (local or SLURM); `sweep status`")
    ssub = p.add_subparsers(dest="sweep_cmd")
    st = ssub.add_parser("status", help="table of the sweep's jobs: pending / running / done / failed")
    st.add_argument("--sweep", help="sweep folder (default: the newest under --sweeps-dir)")
    st.add_argument("--sweeps-dir", default="sweeps")
    st.add_argument("--wait", action="store_true", help="poll until no job is pending or running")
    st.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    g = p.add_argument_group("grid")
    g.add_argument("--methods", help="comma-separated method names, e.g. fmfa,ivt,lgur")
    g.add_argument("--datasets", help="comma-separated dataset names, e.g. synth or cuhk,icfg")
    g.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    g.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE",
                   help="config overrides for every job; NAME:KEY=VALUE only for jobs of method or dataset NAME")
    g.add_argument("--data-root", nargs="+", metavar="DATASET=DIR", help="dataset roots, e.g. cuhk=/data/CUHK-PEDES")
    g.add_argument("--name", help="sweep folder name under --sweeps-dir (default: from methods and datasets)")
    g.add_argument("--sweeps-dir", default="sweeps")
    g.add_argument("--results-dir", default="results")
    g.add_argument("--out", default="leaderboards", help="leaderboard folder rebuilt when every job has ended")
    g.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="leaderboard significance-test resamples")
    e = p.add_argument_group("execution")
    e.add_argument("--executor", default="local", choices=["local", "slurm"])
    e.add_argument("--jobs", type=int, default=1, help="local: jobs at once (each gets cores // jobs threads)")
    e.add_argument("--wait", action="store_true", help="slurm: wait until every job and the leaderboard job ended")
    e.add_argument("--slurm-config", help="file (.py/.json/.yaml) with `slurm = dict(partition=..., ...)`")
    e.add_argument("--partition")
    e.add_argument("--account")
    e.add_argument("--qos")
    e.add_argument("--time", help="time limit per job: minutes, HH:MM:SS or D-HH:MM:SS (default 24 h)")
    e.add_argument("--cpus-per-task", type=int, help="cores per job (per node)")
    e.add_argument("--gpus-per-task", type=int, help="GPUs per job (per node); >1 launches DDP through torchrun")
    e.add_argument("--nodes", type=int, help="nodes per job (slurm; DDP over srun + torchrun)")
    e.add_argument("--nproc-per-node", type=int, help="DDP processes per node (default: --gpus-per-task, else 1)")
    e.add_argument("--mem", help="sbatch --mem, e.g. 64G")
    e.add_argument("--array-parallelism", type=int, help="at most this many array tasks at once")
    e.add_argument("--constraint")
    e.add_argument("--exclude")
    e.add_argument("--setup", action="append", help="shell line run before each job (repeatable)")
    e.add_argument("--sbatch", nargs="+", metavar="FLAG[=VALUE]", help="extra sbatch flags, e.g. mail-type=END")


def cmd_sweep(a):
    from .sweep import SweepFolder, build_resources, default_name, expand_grid, latest_sweep
    from .sweep.grid import parse_data_roots, parse_list
    from .sweep.options import parse_sbatch_flags
    from .sweep.status import status_table, sweep_status
    from .sweep.submit import run_sweep, wait_for

    if a.sweep_cmd == "status":
        folder = SweepFolder(a.sweep) if a.sweep else latest_sweep(a.sweeps_dir)
        data, statuses = wait_for(folder, a.timeout) if a.wait else sweep_status(folder)
        print(status_table(folder, data, statuses))
        return 0
    if not a.methods or not a.datasets:
        raise HarnessError("harness sweep: give --methods and --datasets (or `harness sweep status`)")
    methods, datasets = parse_list(a.methods, "methods"), parse_list(a.datasets, "datasets")
    seeds = parse_list(a.seeds, "seeds", int)
    keys = ("partition", "account", "qos", "time", "cpus_per_task", "gpus_per_task", "nodes", "nproc_per_node", "mem",
            "array_parallelism", "constraint", "exclude", "setup")
    flags = {k: getattr(a, k) for k in keys}
    flags["sbatch"] = parse_sbatch_flags(a.sbatch)
    res = build_resources(a.slurm_config, flags)
    specs = expand_grid(methods, datasets, seeds, a.cfg_options, parse_data_roots(a.data_root), a.results_dir)
    folder = SweepFolder(Path(a.sweeps_dir) / (a.name or default_name(methods, datasets)))
    grid = dict(methods=methods, datasets=datasets, seeds=seeds, cfg_options=a.cfg_options or [])
    return run_sweep(folder, specs, a.executor, res, a.jobs, grid, a.results_dir, a.out, a.resamples, a.wait)


COMMANDS = dict(run=(_add_run, cmd_run), eval=(_add_eval, cmd_eval), data=(_add_data, cmd_data),
                list=(_add_list, cmd_list), inspect=(_add_inspect, cmd_inspect),
                leaderboard=(_add_leaderboard, cmd_leaderboard),
                sweep=(_add_sweep, cmd_sweep), **{"new-method": (_add_new_method, cmd_new_method)})


def build_parser():
    parser = argparse.ArgumentParser(prog="harness", description="Text-to-image person retrieval benchmark harness")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks for harness errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM (a scheduler's cancel or preemption, `kill`): unwinds like Ctrl-C, so temporary files are
    removed and the command ends with one line instead of dying silently."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    import signal
    import threading

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _handle(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _end_progress_bars() -> None:
    """Close any tqdm bar an error interrupted, so the error starts a line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", None) or []):
        bar.close()


def _dispatch(args) -> int:
    try:
        return COMMANDS[args.command][1](args)
    except BaseException:
        _end_progress_bars()
        raise


def _handle(args) -> int:
    try:
        return _dispatch(args)
    except Terminated:
        print("error: stopped by SIGTERM; nothing unfinished was stored (a rerun of `harness run` resumes from the "
              "last complete checkpoint)", file=sys.stderr)
        return 143
    except HarnessError as exc:
        if args.verbose:
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # an environment fault (full disk, read-only HOME or cache): the path, not a bug
        from .outputs import ENVIRONMENT_ERRNOS, describe_os_error

        if args.verbose:
            raise
        if exc.errno not in ENVIRONMENT_ERRNOS:
            return _internal(exc)
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a sweep's interrupt says which of its jobs go on running
        print(f"interrupted; {exc}" if str(exc) else
              "interrupted; nothing was written to the results store for unfinished evaluations", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, with the way to the traceback
        if args.verbose:
            raise
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    print(f"internal error: {type(exc).__name__}: {one_line(exc)} (this is a bug in the harness or a plugin; "
          "run with -v for the traceback)", file=sys.stderr)
    return 1




if __name__ == "__main__":
    sys.exit(main())
