"""Inputs that used to hang, corrupt silently or end in a traceback (issues 12 and 17): each is now
bounded, detected, or one DataError line that says what to do."""
import json
import os
import stat
import struct
import time
import zlib

import numpy as np
import pytest

from harness.cli import main
from harness.data.formats import CUHKPEDES, ICFGPEDES, MAX_CAPTION_CHARS, RSTPReid, UFine6926
from harness.data.loading import OversizedImageError, check_images, load_image, require_images
from harness.data.overlap import check_split_overlap, split_overlaps
from harness.data.verify import verify
from harness.errors import AnnotationError, ConfigError, DataError, ImageError
from harness.results import ResultsStore

from conftest import make_records


def _one_line(exc) -> str:
    msg = str(exc.value if hasattr(exc, "value") else exc)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- captions
def test_multi_megabyte_captions_are_cut_before_tokenisation_in_seconds(dataset_factory):
    from harness.encoders.bert import BertEncoder
    from harness.encoders.clip import CLIPEncoder

    rng = np.random.default_rng(0)
    word = rng.integers(97, 123, 10_000_000, dtype=np.uint8).tobytes().decode()  # 10 MB of letters, no spaces
    recs = make_records("cuhk")
    recs[0]["captions"] = [word, "a short one"]
    recs[-1]["captions"] = ["red coat " * 600_000]  # 5.4 MB of words, in the test split
    t0 = time.time()
    root = dataset_factory("cuhk", recs, images=False)
    s = CUHKPEDES(root).load()
    caps = [c for r in s.train + s.val + s.test for c in r.captions]
    CLIPEncoder(preset="tiny").tokenize(caps)
    BertEncoder().tokenize(caps)
    assert time.time() - t0 < 10  # tokenising the raw 10 MB word alone would take hours (quadratic BPE)
    assert max(len(c) for c in caps) <= MAX_CAPTION_CHARS
    assert s.stats["captions_truncated"] == 2
    assert s.stats["captions_truncated_by_split"] == {"train": 1, "val": 0, "test": 1}
    assert s.train[0].captions == [word[:MAX_CAPTION_CHARS], "a short one"]
    rep = verify("cuhk", str(root), decode=False)
    assert "2 caption(s) cut to 1024 characters / 200 words (train 1, test 1)" in rep.as_text()


def test_caption_bound_is_configurable_and_counts_words(dataset_factory):
    recs = make_records("rstp")  # fixture captions: 10 words, 44 characters
    long = " ".join(f"w{i}" for i in range(30)).replace("w3 ", "w3 \t ")
    recs[0]["captions"] = [long, "short caption"]
    root = dataset_factory("rstp", recs, images=False)
    s = RSTPReid(root, max_caption_words=20).load()
    assert s.train[0].captions == [long[:long.index(" w20")], "short caption"]
    assert s.stats["captions_truncated"] == 1 and s.stats["max_caption_words"] == 20
    s = RSTPReid(root, max_caption_chars=12).load()
    assert s.train[0].captions == ["w0 w1 w2 w3", "short captio"]
    assert s.stats["captions_truncated"] == sum(len(r.captions) for r in s.train + s.val + s.test)


@pytest.mark.parametrize("kw", [dict(max_caption_chars=0), dict(max_caption_words="10"),
                                dict(max_image_pixels=True), dict(max_image_pixels=10**9)])
def test_bad_loader_settings_are_config_errors(dataset_factory, kw):
    root = dataset_factory("rstp", images=False)
    with pytest.raises(ConfigError, match=f"dataset.{next(iter(kw))}"):
        RSTPReid(root, **kw)


# ---------------------------------------------------------------- annotation files
def test_annotation_that_is_not_utf8_names_file_and_byte_offset(dataset_factory):
    root = dataset_factory("icfg", images=False)
    text = (root / "ICFG-PEDES.json").read_text()
    pos = text.index("red coat")
    (root / "ICFG-PEDES.json").write_bytes(text[:pos].encode() + "caf\u00e9 ".encode("latin-1") + text[pos:].encode())
    with pytest.raises(AnnotationError) as e:
        ICFGPEDES(root).load()
    msg = _one_line(e)
    assert "ICFG-PEDES.json" in msg and f"byte offset {pos + 3}" in msg and "0xe9" in msg and "UTF-8" in msg


def test_utf8_byte_order_mark_is_accepted(dataset_factory):
    root = dataset_factory("icfg", images=False)
    (root / "ICFG-PEDES.json").write_bytes(b"\xef\xbb\xbf" + (root / "ICFG-PEDES.json").read_bytes())
    assert ICFGPEDES(root).load().counts()["train"]["images"] == 6


def test_deeply_nested_json_is_one_line(dataset_factory):
    root = dataset_factory("rstp", images=False)
    (root / "data_captions.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(AnnotationError, match="nested too deeply"):
        RSTPReid(root).load()


# ---------------------------------------------------------------- image paths
@pytest.mark.parametrize("bad", ["../outside.png", "imgs/../../outside.png", "/etc/passwd", "\\\\server\\x.png",
                                 "C:\\data\\x.png", "..", ".", "a\nb.png", "a\x00.png"])
def test_paths_must_stay_inside_the_dataset_root(dataset_factory, bad):
    recs = make_records("cuhk")
    recs[3]["file_path"] = bad
    root = dataset_factory("cuhk", recs, images=False)
    with pytest.raises(AnnotationError) as e:
        CUHKPEDES(root).load()
    msg = _one_line(e)
    assert "reid_raw.json [record 3] field 'file_path'" in msg


def test_symlinked_image_folder_inside_the_root_is_fine(tmp_path):
    from conftest import write_dataset
    root = write_dataset(tmp_path / "real", "cuhk")
    link_root = tmp_path / "linked"
    link_root.mkdir()
    (link_root / "reid_raw.json").write_text((root / "reid_raw.json").read_text())
    (link_root / "imgs").symlink_to(root / "imgs", target_is_directory=True)
    s = CUHKPEDES(link_root).load()
    assert check_images([r.path for r in s.train + s.test], s.image_root).ok


def test_path_aliases_are_one_image(dataset_factory):
    recs = make_records("cuhk")
    alias = dict(recs[0], file_path="./" + recs[0]["file_path"].replace("/", "//"), id=999)
    root = dataset_factory("cuhk", recs + [alias], images=False)
    with pytest.raises(AnnotationError) as e:
        CUHKPEDES(root).load()
    msg = _one_line(e)
    assert "duplicate image path" in msg and "normalised" in msg and "[record 14]" in msg
    root = dataset_factory("cuhk", recs + [dict(alias, id=recs[0]["id"])], images=False, name="same_id")
    s = CUHKPEDES(root).load()
    assert s.skipped["duplicate image path merged"] == 1
    assert len({r.path for r in s.train}) == len(s.train) == 6


# ---------------------------------------------------------------- splits
def _cross_split(recs, field="file_path"):
    """Put identity 1 (train) into the test split too, with a second image, and reuse one train image in test."""
    recs.append(dict(recs[0], split="test", **{field: "extra/leak.png"}))
    recs.append(dict(recs[1], split="test"))
    return recs


def test_identity_in_train_and_test_is_refused_and_verify_lists_it(dataset_factory):
    recs = _cross_split(make_records("cuhk"))
    root = dataset_factory("cuhk", recs)
    s = CUHKPEDES(root).load()
    with pytest.raises(DataError) as e:
        check_split_overlap(s)
    msg = _one_line(e)
    assert "identity 1 is in both the train split" in msg and "extra/leak.png" in msg
    ov = split_overlaps(s)
    assert ov["ids"] == {"train/test": [1]} and ov["images"] == {"train/test": [recs[1]["file_path"]]}
    rep = verify("cuhk", str(root), decode=False)
    text = rep.as_text()
    assert not rep.ok and "1 identities in both the train and the test split:" in text
    assert f"1 images in both the train and the test split:\n  {recs[1]['file_path']}" in text
    check_split_overlap(CUHKPEDES(dataset_factory("cuhk", name="clean")).load())  # no overlap: no error


def test_an_image_listed_in_two_splits_is_merged_within_each_split(dataset_factory):
    recs = make_records("icfg")
    recs += [dict(recs[0], split="test", captions=["first test caption"]),
             dict(recs[0], split="test", file_path="./" + recs[0]["file_path"], captions=["second test caption"])]
    s = ICFGPEDES(dataset_factory("icfg", recs, images=False)).load()
    shared = [r for r in s.test if r.path == recs[0]["file_path"]]
    assert len(shared) == 1 and shared[0].captions == ["first test caption", "second test caption"]
    assert s.skipped["duplicate image path merged"] == 1


def test_same_image_under_two_ids_in_different_splits_is_refused(dataset_factory):
    recs = make_records("icfg")
    recs.append(dict(recs[0], split="test", id=77))
    root = dataset_factory("icfg", recs, images=False)
    with pytest.raises(AnnotationError, match="duplicate image path .* train split"):
        ICFGPEDES(root).load()


def test_unknown_split_name_is_one_line(dataset_factory):
    s = CUHKPEDES(dataset_factory("cuhk", images=False)).load()
    with pytest.raises(DataError) as e:
        s.split("dev")
    assert "unknown split 'dev'; use one of train, val, test" in _one_line(e)


# ---------------------------------------------------------------- image size
def _png_header(path, w, h):
    """A PNG whose header declares w x h (pixel data absent): enough for every size check."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("w,h", [(9000, 8000), (30000, 30000)], ids=["over-max_image_pixels", "pil-bomb"])
def test_oversized_images_are_reported_by_verify_and_refused_before_training(dataset_factory, w, h):
    root = dataset_factory("ufine6926")
    recs = json.loads((root / "UFine6926_Annotations.json").read_text())
    bad = recs[-1]["file_path"]  # a test image
    _png_header(root / bad, w, h)
    for decode in (False, True):
        rep = verify("ufine6926", str(root), decode=decode)
        assert rep.oversized == [bad] and not rep.unreadable and not rep.ok
        assert f"1 images over max_image_pixels={2**26:,}:\n  {bad}" in rep.as_text()
    s = UFine6926(root).load()
    with pytest.raises(ImageError) as e:
        require_images(s.train + s.test, s.image_root, "ufine6926", s.max_image_pixels)
    msg = _one_line(e)
    assert bad in msg and "1 oversized image" in msg and ("max_image_pixels" in msg or "decompression-bomb" in msg)
    with pytest.raises(OversizedImageError) as e:  # the same limit when a loader is given it
        load_image(root / bad, (8, 4), max_pixels=s.max_image_pixels)
    assert bad in _one_line(e)


def test_pixel_limit_is_configurable(dataset_factory):
    root = dataset_factory("ufine6926")  # 32 x 16 images
    assert verify("ufine6926", str(root), max_image_pixels=512).ok
    rep = verify("ufine6926", str(root), max_image_pixels=511, decode=False)
    assert len(rep.oversized) == sum(c["images"] for c in rep.counts.values())
    s = UFine6926(root, max_image_pixels=511).load()
    with pytest.raises(ImageError, match="512 pixels, over dataset.max_image_pixels=511"):
        require_images(s.test, s.image_root, "ufine6926 test", s.max_image_pixels)


def test_missing_images_are_named_before_training(dataset_factory):
    root = dataset_factory("rstp")
    recs = json.loads((root / "data_captions.json").read_text())
    (root / "imgs" / recs[0]["img_path"]).unlink()
    s = RSTPReid(root).load()
    with pytest.raises(ImageError, match=f"1 image\\(s\\) missing .*{recs[0]['img_path']}"):
        require_images(s.train, s.image_root, "rstp")


# ---------------------------------------------------------------- roots and the CLI
def test_data_verify_without_root_says_to_pass_it(capsys):
    assert main(["data", "verify", "--dataset", "cuhk"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--data-root DIR" in err and "reid_raw.json" in err and "Traceback" not in err


def test_missing_annotation_file_names_the_expected_files(tmp_path, capsys):
    assert main(["data", "verify", "--dataset", "icfg", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ICFG-PEDES.json or ICFG_PEDES.json" in err and "--data-root" in err
    with pytest.raises(DataError, match="does not exist"):
        ICFGPEDES(tmp_path / "nope")


def test_verify_cli_reports_problems_with_exit_1(dataset_factory, capsys):
    root = dataset_factory("cuhk", _cross_split(make_records("cuhk")))
    assert main(["data", "verify", "--dataset", "cuhk", "--root", str(root), "--no-decode"]) == 1
    assert "PROBLEMS FOUND" in capsys.readouterr().out


# ---------------------------------------------------------------- permissions
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_results_folders_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        rec = dict(method="m", train_dataset="d", eval_dataset="d", seed=0, metrics={})
        path = ResultsStore(tmp_path / "results").write(rec, {"x": np.arange(3)})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((path / "record.json").stat().st_mode) == 0o666 & ~umask


def test_synthetic_dataset_cache_follows_the_umask(tmp_path):
    from harness.data.synth.generate import build_synth
    old = os.umask(0o022)
    try:
        root = build_synth(tmp_path, train_ids=2, val_ids=1, test_ids=1, images_per_id=1, image_size=(16, 8))
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o755



def test_synthetic_datasets_take_the_loader_settings(tmp_path):
    from harness.config import check_dataset_keys
    from harness.data.synth import SynthPEDES

    check_dataset_keys("dataset", dict(type="synth", train_ids=2, max_caption_words=3, max_image_pixels=10**6))
    s = SynthPEDES(str(tmp_path), train_ids=2, val_ids=1, test_ids=1, images_per_id=1, image_size=(16, 8),
                   max_caption_words=3).load()
    caps = [c for r in s.train + s.val + s.test for c in r.captions]
    assert max(len(c.split()) for c in caps) == 3 and s.stats["captions_truncated"] == len(caps)
