"""Property-based tests: valid annotation files of every public format, mutated (fields deleted, types
changed, bad paths, garbage bytes, truncation, other encodings, deep nesting, numbers out of range), either
load or raise a harness DataError whose message is one line naming the file; never another exception."""
import json
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness.data.formats import CUHKPEDES, ICFGPEDES, RSTPReid, UFine3C, UFine6926
from harness.data.loading import check_images
from harness.data.overlap import check_split_overlap, split_overlaps
from harness.data.splits import EvalSet
from harness.errors import DataError

from conftest import LAYOUT, make_records

CLASSES = {"cuhk": CUHKPEDES, "icfg": ICFGPEDES, "rstp": RSTPReid, "ufine6926": UFine6926, "ufine3c": UFine3C}
FIELDS = ["id", "split", "captions", "file_path", "img_path", "source", "processed_tokens"]

SCALARS = (st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | st.sampled_from(["train", "test", "val", "12", "-3", "1e3", "\u00b2", ""]))
JSON = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids,
                                                                                          max_size=3), max_leaves=6)
BAD_PATHS = st.sampled_from(["../x.png", "a/../../x.png", "/etc/passwd", "C:\\x.png", "\\\\srv\\x", ".", "..",
                             "./a/./b.png", "a//b.png", "x\n.png", "x\x00.png", "\ud800.png", "", " ", "~/x.png",
                             "a" * 300 + ".png", "imgs/" * 50 + "x.png", "\u00e9t\u00e9.png"]) | st.text(max_size=30)


@st.composite
def mutated_file(draw, layout):
    """Bytes of a valid annotation file of ``layout`` after 1-3 record-level and 0-1 byte-level mutations."""
    recs = make_records(layout)
    path_field = LAYOUT[layout][2]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(recs) - 1))
        kind = draw(st.sampled_from(["delete", "retype", "path", "record", "caption", "id", "top", "append"]))
        rec = recs[i]
        if kind == "delete" and isinstance(rec, dict) and rec:
            rec.pop(draw(st.sampled_from(sorted(rec))))
        elif kind == "retype" and isinstance(rec, dict):
            rec[draw(st.sampled_from(FIELDS) | st.text(max_size=4))] = draw(JSON)
        elif kind == "path" and isinstance(rec, dict):
            rec[path_field] = draw(BAD_PATHS)
        elif kind == "record":
            recs[i] = draw(JSON)
        elif kind == "caption" and isinstance(rec, dict):
            rec["captions"] = draw(st.lists(st.text(max_size=40) | JSON, max_size=3) | JSON)
        elif kind == "id" and isinstance(rec, dict):
            rec["id"] = draw(st.integers(-2**90, 2**90) | st.sampled_from(["7", " 8 ", "-9", "x", "9" * 5000]))
        elif kind == "top":
            recs = draw(JSON)
            break
        elif kind == "append":
            recs.append(dict(rec) if isinstance(rec, dict) else rec)  # duplicates: merged or refused
    if isinstance(recs, list) and recs and isinstance(recs[0], dict) and draw(st.booleans()):
        recs[0]["captions"] = ["caf\u00e9 na\u00efve \u4eba"]
    data = json.dumps(recs).encode("utf-8")
    op = draw(st.sampled_from(["none", "garbage", "truncate", "encoding", "nest"]))
    if op == "garbage":
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.binary(min_size=1, max_size=8)) + data[pos:]
    elif op == "truncate":
        data = data[:draw(st.integers(0, max(0, len(data) - 1)))]
    elif op == "encoding":
        enc = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig"]))
        data = data.decode("utf-8").encode(enc, errors="replace")
    elif op == "nest":
        n = draw(st.sampled_from([2, 100, 5_000, 200_000]))
        data = b"[" * n + data + b"]" * n
    return data


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    return {layout: tmp_path_factory.mktemp(layout) for layout in CLASSES}


def _check_loaded(splits, root: Path):
    """What runs after loading must not raise anything but a one-line DataError either."""
    for r in splits.train + splits.val + splits.test:
        parts = PurePosixPath(r.path).parts
        assert not r.path.startswith("/") and ".." not in parts and r.captions
    for split in ("train", "val", "test"):
        EvalSet.from_records(splits.split(split), splits.image_root)
    split_overlaps(splits)
    try:
        check_split_overlap(splits)
    except DataError as exc:
        assert "\n" not in str(exc)
    chk = check_images([r.path for r in splits.train + splits.val + splits.test], splits.image_root)
    assert not chk.unreadable and not chk.oversized  # no image was written: every path is just missing


@pytest.mark.parametrize("layout", list(CLASSES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_annotation_loads_or_is_one_line_data_error(roots, layout, data):
    root = roots[layout]
    name = LAYOUT[layout][0]
    (root / name).write_bytes(data.draw(mutated_file(layout)))
    try:
        splits = CLASSES[layout](root).load()
    except DataError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and name in msg, msg
        event(f"refused: {msg.split(': ', 1)[-1][:30]}")  # --hypothesis-show-statistics shows the mix
        return
    event("loaded")
    _check_loaded(splits, root)


CLI_DATASET = {"cuhk": "cuhk", "icfg": "icfg", "rstp": "rstp", "ufine6926": "ufine6926"}


@pytest.mark.parametrize("layout", list(CLI_DATASET))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_annotation_through_harness_run_is_one_line_and_writes_nothing(roots, layout, data, capsys,
                                                                               tmp_path_factory):
    """End to end: `harness run` on a mutated annotation file (no images on disk) exits 2 with one stderr
    line and no traceback, before any training, and the results store stays empty."""
    from harness.cli import main

    root = roots[layout]
    (root / LAYOUT[layout][0]).write_bytes(data.draw(mutated_file(layout)))
    out = tmp_path_factory.mktemp("r")
    capsys.readouterr()
    code = main(["run", "--method", "fmfa", "--dataset", CLI_DATASET[layout], "--data-root", str(root), "--epochs",
                 "1", "--results-dir", str(out / "results"), "--work-dir", str(out / "wd"), "--cfg-options",
                 "method.encoder.preset=tiny", "method.encoder.image_size=(32,16)", "method.cmt_depth=1",
                 "method.encoder.checkpoint=random"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (out / "results").exists() and not (out / "wd").exists()
