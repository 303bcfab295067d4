import json

import pytest

from harness.data.formats import CUHKPEDES, ICFGPEDES, RSTPReid, UFine3C, UFine6926
from harness.data.loading import load_image
from harness.data.splits import EvalSet
from harness.data.verify import verify
from harness.errors import AnnotationError, ImageError

from conftest import make_records, write_image

CLASSES = {"cuhk": CUHKPEDES, "icfg": ICFGPEDES, "rstp": RSTPReid, "ufine6926": UFine6926, "ufine3c": UFine3C}


@pytest.mark.parametrize("layout", list(CLASSES))
def test_each_public_format_loads(dataset_factory, layout):
    root = dataset_factory(layout)
    s = CLASSES[layout](root).load()
    counts = s.counts()
    if layout == "ufine3c":
        assert counts["train"]["images"] == 0 and counts["test"]["ids"] == 7
        assert {r.source for r in s.test} == {"UFine6926", "CUHK-PEDES"}
    else:
        assert counts["train"] == {"ids": 3, "images": 6, "captions": 6 if layout == "icfg" else 12}
        assert counts["test"]["images"] == 4
    if layout == "icfg":
        assert counts["val"]["images"] == 0 and any("no validation" in n for n in s.notes)
    for r in s.train + s.val + s.test:
        assert (s.image_root / r.path).is_file()


def test_icfg_accepts_the_underscore_file_name(dataset_factory):
    root = dataset_factory("icfg")
    (root / "ICFG-PEDES.json").rename(root / "ICFG_PEDES.json")
    assert ICFGPEDES(root).load().counts()["train"]["images"] == 6


def test_dataset_subfolder_is_found(tmp_path):
    from conftest import write_dataset
    write_dataset(tmp_path / "CUHK-PEDES", "cuhk")
    assert CUHKPEDES(tmp_path).load().counts()["test"]["images"] == 4


def test_configurable_annotation_file(dataset_factory):
    root = dataset_factory("ufine6926")
    (root / "UFine6926_Annotations.json").rename(root / "my_annos.json")
    with pytest.raises(AnnotationError, match="no annotation file"):
        UFine6926(root)
    assert UFine6926(root, annotation_file="my_annos.json").load().counts()["train"]["ids"] == 3


def test_eval_set_dedups_gallery_by_path_and_keeps_every_caption(dataset_factory):
    s = CUHKPEDES(dataset_factory("cuhk")).load()
    ev = EvalSet.from_records(s.test, s.image_root)
    assert len(ev.gallery_paths) == len(set(ev.gallery_paths)) == 4
    assert len(ev.query_captions) == 8
    assert ev.gallery_paths == sorted(ev.gallery_paths)


def test_malformed_json_names_file_and_line(dataset_factory):
    root = dataset_factory("cuhk")
    (root / "reid_raw.json").write_text('[{"split": "train",\n "id": 1,,}]')
    with pytest.raises(AnnotationError, match=r"reid_raw.json: not valid JSON \(line 2"):
        CUHKPEDES(root).load()


@pytest.mark.parametrize("mutate,field,message", [
    (lambda r: r.pop("captions"), "captions", "missing required field"),
    (lambda r: r.pop("file_path"), "file_path", "missing required field"),
    (lambda r: r.update(id="abc"), "id", "integer"),
    (lambda r: r.update(captions=[1, 2]), "captions", "caption 0 is int"),
    (lambda r: r.update(split=7), "split", "expected a string"),
    (lambda r: r.update(split="dev"), "split", "unknown split"),
])
def test_bad_fields_are_named(dataset_factory, mutate, field, message):
    recs = make_records("icfg")
    mutate(recs[2])
    root = dataset_factory("icfg", recs, images=False)
    with pytest.raises(AnnotationError) as e:
        ICFGPEDES(root).load()
    assert "[record 2]" in str(e.value) and f"field '{field}'" in str(e.value) and message in str(e.value)


def test_top_level_must_be_a_list(dataset_factory):
    root = dataset_factory("rstp", records={"train": []}, images=False)
    with pytest.raises(AnnotationError, match="expected a JSON list"):
        RSTPReid(root).load()


def test_empty_captions_and_duplicates(dataset_factory):
    recs = make_records("cuhk")
    recs[0]["captions"] = ["", "  "]  # record left without captions: skipped and counted
    recs[1]["captions"] = ["ok caption", ""]
    recs.append(dict(recs[3], captions=["extra caption for the same image"]))  # same path, same id: merged
    root = dataset_factory("cuhk", recs)
    s = CUHKPEDES(root).load()
    assert s.skipped == {"empty caption": 3, "record without captions": 1, "duplicate image path merged": 1}
    merged = [r for r in s.train if r.path == recs[3]["file_path"]][0]
    assert len(merged.captions) == 3


def test_duplicate_path_with_different_id_is_rejected(dataset_factory):
    recs = make_records("cuhk")
    recs.append(dict(recs[0], id=999))
    root = dataset_factory("cuhk", recs)
    with pytest.raises(AnnotationError, match="duplicate image path"):
        CUHKPEDES(root).load()


def test_verify_reports_missing_corrupt_and_counts(dataset_factory):
    root = dataset_factory("rstp")
    recs = json.loads((root / "data_captions.json").read_text())
    (root / "imgs" / recs[0]["img_path"]).unlink()
    (root / "imgs" / recs[1]["img_path"]).write_bytes(b"not a jpeg")
    write_image(root / "imgs" / recs[2]["img_path"], mode="L")  # grayscale is fine
    rep = verify("rstp", str(root))
    assert rep.missing == [recs[0]["img_path"]]
    assert rep.unreadable == [recs[1]["img_path"]]
    assert not rep.ok and "PROBLEMS FOUND" in rep.as_text()
    assert "train ids" in ", ".join(rep.count_mismatches)  # tiny fixture vs published 3,701 ids


def test_grayscale_and_corrupt_images(tmp_path):
    write_image(tmp_path / "g.png", mode="L")
    assert load_image(tmp_path / "g.png", (8, 4)).shape == (3, 8, 4)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(ImageError, match="bad.jpg"):
        load_image(tmp_path / "bad.jpg", (8, 4))
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.jpg", (8, 4))
