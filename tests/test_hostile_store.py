"""A results store is data: a hostile or damaged one can neither run code through the leaderboard nor
mislead it. Every bad folder is skipped with one line naming it and the reason, and listed as not ranked."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leaderboard_records import per_query, record, small_store, write

from harness.cli import main
from harness.results import ResultsStore
from harness.results.labels import leaves

REPO = Path(__file__).resolve().parents[1]
PROBE = r"""
import json, sys
from harness.cli import main
rc = main(sys.argv[1:])
print(json.dumps(dict(rc=rc, modules=sorted(sys.modules))))
"""


def _hostile_store(tmp_path) -> tuple[Path, Path]:
    """The issue's two records (train_dataset reaching an evil.py, method 'this') plus path-like and dotted
    names in every string field, beside two honest records."""
    store, marker = tmp_path / "store", tmp_path / "EXECUTED"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\nseed = 0\n")
    small_store(store, seeds=(0,), methods=("fmfa", "ivt"))
    rng = np.random.default_rng(5)
    from harness.config import dataset_config_dir

    reach = os.path.relpath(tmp_path / "evil", dataset_config_dir())  # ../../../tmp/.../evil
    pq = per_query(rng)
    rec = record(pq, method="fmfa", train=reach, evaluated=reach, seed=3)
    rec.pop("display")  # an old-style record: the old leaderboard loaded its method's defaults for train_dataset
    write(store, rec, pq)
    pq = per_query(rng)
    rec = record(pq, method="this", seed=0)
    rec.pop("display")
    write(store, rec, pq)
    nasty = "../../../etc/passwd os.path this <script>alert(1)</script> $\\frac{1}{0}$ & \\input{x} %"
    pq = per_query(rng)
    rec = record(pq, method="harness.registry", seed=1, config_hash="../..", kind="eval",
                 encoder_weights=[dict(path="../../../../etc/" + nasty, sha256="ab" * 32)],
                 deviations=[dict(id="os.system", ours=nasty, released=nasty, switch="builtins.exec")],
                 selection=dict(rule=nasty, selected_epoch=1), display=dict(label=nasty, variant=[nasty],
                                                                             published_counts=False))
    rec["config"]["method"]["type"] = "os"
    rec["config"]["train"]["loader"] = "importlib.import_module"
    write(store, rec, pq)
    return store, marker


def test_hostile_store_executes_and_imports_nothing(tmp_path):
    store, marker = _hostile_store(tmp_path)
    out = tmp_path / "boards"
    r = subprocess.run([sys.executable, "-c", PROBE, "leaderboard", "--results-dir", str(store), "--out", str(out),
                        "--resamples", "99"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0
    assert not marker.exists(), "a config file named by a record was executed"
    mods = set(report["modules"])
    for banned in ("this", "os.system", "harness.registry", "harness.config", "harness.data", "harness.data.formats",
                   "harness.engine", "mmengine", "mmengine.config", "torch", "tipr_methods", "importlib.import_module"):
        assert banned not in mods, banned
    assert not any(m.startswith(("methods.", "tipr_methods.", "harness.engine", "harness.data")) for m in mods)
    assert "Zen of Python" not in r.stdout + r.stderr
    manifest = json.loads((out / ".leaderboard.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest["files"] + [".leaderboard.json"])
    assert not (tmp_path / "etc").exists() and not list(tmp_path.glob("boards*/**/passwd"))
    page = (out / "index.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    tex = "".join(p.read_text() for p in out.glob("*.tex"))
    assert "\\input{x}" not in tex and "\\textbackslash{}input\\{x\\}" in tex
    readme = (out / "README.md").read_text()
    assert "| this " in readme  # 'this' is only a row name, shown as stored
    assert "harness.registry" in readme and "(harness eval, epoch 2)" in readme


def test_store_write_keeps_path_like_names_inside_the_store(tmp_path):
    pq = per_query(np.random.default_rng(0))
    path = write(tmp_path / "s", record(pq, method="../../x", train="a/../../b", evaluated="..", seed=0), pq)
    assert path.parent == tmp_path / "s" and "/" not in path.name and path.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_labels_are_the_records_never_the_installed_defaults(tmp_path):
    """A stored label is shown as stored; records without one are named from their own configs only."""
    rng = np.random.default_rng(1)
    store = tmp_path / "s"
    pq = per_query(rng)
    write(store, record(pq, display=dict(label="fmfa [cmt_depth=4]", variant=["cmt_depth=4"], published_counts=False)),
          pq)
    cfgs = []
    for t in (0.02, 0.02, 0.05):  # three old records of one method: two share the value, one departs from it
        cfg = copy.deepcopy(record(pq)["config"])
        cfg["method"]["temperature"] = t
        cfg["train"]["batch_size"] = 8 + len(cfgs)  # differs everywhere: every row shows it
        cfgs.append(cfg)
        pq = per_query(rng)
        rec = record(pq, method="ivt", config=cfg)
        rec.pop("display")
        write(store, rec, pq)
    main(["leaderboard", "--results-dir", str(store), "--out", str(tmp_path / "b"), "--resamples", "99"])
    text = (tmp_path / "b" / "README.md").read_text()
    assert "fmfa [cmt_depth=4]" in text
    assert "ivt [train.batch_size=8]" in text and "ivt [train.batch_size=9]" in text
    assert "ivt [temperature=0.05, train.batch_size=10]" in text
    assert "dataset." not in text.split("## ", 1)[1].split("Provenance")[0]


def _damage(name):
    """(what to do to a record folder, text expected in the reason)."""
    def rewrite(d, f):
        rec = json.loads((d / "record.json").read_text())
        f(rec)
        (d / "record.json").write_text(json.dumps(rec))

    def pq_edit(d, f):
        with np.load(d / "per_query.npz") as z:
            pq = {k: z[k] for k in z.files}
        f(pq)
        np.savez(d / "per_query.npz", **pq)

    def set_rank(pq, v):
        pq["first_rank"][0] = v

    return {
        "truncated json": (lambda d: (d / "record.json").write_text((d / "record.json").read_text()[:50]),
                           "not valid JSON"),
        "not utf-8": (lambda d: (d / "record.json").write_bytes(b'{"a": "\xff\xfe"}'), "not UTF-8"),
        "a list": (lambda d: (d / "record.json").write_text("[1, 2]"), "must hold an object, not list"),
        "missing metrics": (lambda d: rewrite(d, lambda r: r.pop("metrics")), "metrics: missing"),
        "missing eval_fingerprint": (lambda d: rewrite(d, lambda r: r.pop("eval_fingerprint")),
                                     "eval_fingerprint: missing"),
        "missing created": (lambda d: rewrite(d, lambda r: r.pop("created")), "created: missing"),
        "string metric": (lambda d: rewrite(d, lambda r: r["metrics"].update(R1="62.1")), "metrics.R1: must be a"),
        "NaN metric": (lambda d: (d / "record.json").write_text((d / "record.json").read_text().replace(
            '"R1": ', '"R1": NaN, "x": ', 1)), "NaN is not a number"),
        "metric not the per-query mean": (lambda d: rewrite(d, lambda r: r["metrics"].update(R1=99.0)),
                                          "is not what per_query.npz gives"),
        "corrupt npz": (lambda d: (d / "per_query.npz").write_bytes(b"PK\x03\x04 garbage"), "cannot be read"),
        "pickled npz": (lambda d: pq_edit(d, lambda pq: pq.update(ap=np.array([object()] * len(pq["ap"])))),
                        "cannot be read"),
        "missing npz": (lambda d: (d / "per_query.npz").unlink(), "per_query.npz is missing"),
        "negative rank": (lambda d: pq_edit(d, lambda pq: set_rank(pq, -3)), "ranks must lie in 1..16"),
        "rank beyond the gallery": (lambda d: pq_edit(d, lambda pq: set_rank(pq, 17)), "ranks must lie in 1..16"),
        "unequal lengths": (lambda d: pq_edit(d, lambda pq: pq.update(ap=pq["ap"][:-1])), "one value per query"),
        "other queries": (lambda d: pq_edit(d, lambda pq: pq.update(query_pid=pq["query_pid"][::-1].copy())),
                          "are not the queries of"),
        "old schema": (lambda d: rewrite(d, lambda r: r.update(schema_version=1)), "schema 1 record"),
    }[name]


DAMAGES = ["truncated json", "not utf-8", "a list", "missing metrics", "missing eval_fingerprint", "missing created",
           "string metric", "NaN metric", "metric not the per-query mean", "corrupt npz", "pickled npz", "missing npz",
           "negative rank", "rank beyond the gallery", "unequal lengths", "other queries", "old schema"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_each_damaged_record_is_one_line_and_listed_not_ranked(damage, tmp_path, capsys):
    store = tmp_path / "s"
    paths = small_store(store, seeds=(0, 1, 2), methods=("fmfa", "ivt"))
    victim = paths[0]
    act, why = _damage(damage)
    act(victim)
    rc = main(["leaderboard", "--results-dir", str(store), "--out", str(tmp_path / "b"), "--resamples", "99"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 0
    assert len(err) == 1 and victim.name in err[0] and why in err[0], err
    readme = (tmp_path / "b" / "README.md").read_text()
    not_ranked = readme.split("## Not ranked", 1)[1]
    assert victim.name in not_ranked and why in not_ranked
    assert victim.name in (tmp_path / "b" / "index.html").read_text().split("Not ranked", 1)[1]
    assert "5 used" in readme  # the good records still make the table
    ranked = [line.split("|")[2].strip() for line in readme.splitlines() if line.startswith(("| 1 ", "| 2 "))]
    assert sorted(r.split()[0] for r in ranked[:2]) == ["fmfa", "ivt"]


def test_symlinked_record_folder_is_not_followed(tmp_path, capsys):
    store = tmp_path / "s"
    small_store(store, seeds=(0, 1))
    elsewhere = small_store(tmp_path / "elsewhere", seeds=(5,), methods=("lgur",))[0]
    (store / "linked").symlink_to(elsewhere)
    main(["leaderboard", "--results-dir", str(store), "--out", str(tmp_path / "b"), "--resamples", "99"])
    err = capsys.readouterr().err
    assert "linked: the record folder is a symbolic link" in err
    assert "lgur" not in (tmp_path / "b" / "README.md").read_text().split("## Not ranked")[0]


# --- property: any single-field mutation of a valid record is either a valid record or one named refusal ---

def _valid(tmp_path_factory):
    d = tmp_path_factory.mktemp("valid")
    (path,) = small_store(d, seeds=(0,), methods=("fmfa",))
    return json.loads((path / "record.json").read_text()), path


@pytest.fixture(scope="module")
def valid_record(tmp_path_factory):
    return _valid(tmp_path_factory)


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=8), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                                          st.integers(), max_size=2))


def _set(d, dotted: str, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d[k]
    if value is _DROP:
        d.pop(keys[-1])
    else:
        d[keys[-1]] = value


_DROP = object()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_mutated_field_is_read_or_refused_by_name(valid_record, tmp_path_factory, data):
    rec, path = valid_record
    fields = sorted(k for k, _ in leaves(rec) if k and not k.startswith("config."))
    field = data.draw(st.sampled_from(fields))
    value = data.draw(st.one_of(st.just(_DROP), JUNK))
    bad = copy.deepcopy(rec)
    _set(bad, field, value)
    d = tmp_path_factory.mktemp("m") / path.name
    d.mkdir()
    (d / "record.json").write_text(json.dumps(bad))  # json.dumps writes NaN/Infinity literals for such floats
    (d / "per_query.npz").write_bytes((path / "per_query.npz").read_bytes())
    good, problems = ResultsStore(d.parent).read()
    assert len(good) + len(problems) == 1
    if problems:
        folder, why = problems[0]
        assert folder == str(d) and "\n" not in why and why
    else:  # accepted: then every field the leaderboard reads is still of the right kind
        (g,) = good
        assert all(np.isfinite(v) for v in g["metrics"].values())
        assert isinstance(g["seed"], int) and g["kind"] in ("run", "eval")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["metrics.R1", "seed", "kind", "method", "eval_fingerprint.num_gallery",
                              "selection.selected_epoch", "display.label", "deviations", "encoder_weights"]),
       value=JUNK)
def test_property_leaderboard_never_crashes_on_a_mutated_record(valid_record, tmp_path_factory, field, value):
    rec, path = valid_record
    store = tmp_path_factory.mktemp("lbstore")
    small_store(store, seeds=(0, 1), methods=("ivt", "lgur"))
    bad = copy.deepcopy(rec)
    _set(bad, field, value)
    (store / path.name).mkdir()
    (store / path.name / "record.json").write_text(json.dumps(bad))
    (store / path.name / "per_query.npz").write_bytes((path / "per_query.npz").read_bytes())
    from harness.leaderboard.tables import build_leaderboards

    out = tmp_path_factory.mktemp("lbout")
    files = build_leaderboards(store, out, resamples=99, log=lambda line: None)
    readme = (out / "README.md").read_text()
    assert any(f.name == "index.html" for f in files)
    refused = "## Not ranked" in readme and path.name in readme.split("## Not ranked", 1)[1]
    assert refused or "5 used" in readme  # refused by name, or ranked beside the others
