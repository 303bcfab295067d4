"""Fixtures that write tiny datasets in the exact public annotation formats."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    os.environ["TIPR_CACHE"] = str(tmp_path_factory.mktemp("tipr_cache"))
    yield


def write_image(path: Path, seed: int = 0, mode: str = "RGB", size=(32, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if mode == "L":
        arr = rng.integers(0, 255, (size[0], size[1]), dtype=np.uint8)
    else:
        arr = rng.integers(0, 255, (size[0], size[1], 3), dtype=np.uint8)
    Image.fromarray(arr, mode).save(path)


def make_records(layout: str, n_ids=(3, 2, 2), imgs_per_id=2, caps_per_img=2):
    """Records for train/val/test ids in one of the public layouts."""
    recs, pid, k = [], 1, 0
    for split, n in zip(("train", "val", "test"), n_ids):
        for _ in range(n):
            for j in range(imgs_per_id):
                k += 1
                caps = [f"person {pid} view {j} caption {c} wearing a red coat" for c in range(caps_per_img)]
                if layout == "cuhk":
                    recs.append({"split": split, "captions": caps, "file_path": f"CUHK01/{pid:04d}{j:03d}.png",
                                 "id": pid, "processed_tokens": [c.split() for c in caps]})
                elif layout == "icfg":
                    recs.append({"split": split, "captions": caps[:1],
                                 "file_path": f"{split}/{pid:04d}/{pid:04d}_{j}.jpg", "id": pid - 1})
                elif layout == "rstp":
                    recs.append({"split": split, "captions": caps, "img_path": f"{pid:04d}_c{j}_0001.jpg",
                                 "id": pid - 1})
                elif layout in ("ufine6926", "ufine3c"):
                    r = {"split": split if layout == "ufine6926" else "test", "id": pid,
                         "file_path": f"images/{k}.jpg", "captions": caps}
                    if layout == "ufine3c":
                        r["source"] = "UFine6926" if pid % 2 else "CUHK-PEDES"
                    recs.append(r)
            pid += 1
    if layout == "icfg":
        recs = [r for r in recs if r["split"] != "val"]
    if layout == "ufine6926":  # published with train and test only
        recs = [r for r in recs if r["split"] != "val"]
    return recs


LAYOUT = {  # annotation file, image folder, path field
    "cuhk": ("reid_raw.json", "imgs", "file_path"),
    "icfg": ("ICFG-PEDES.json", "imgs", "file_path"),
    "rstp": ("data_captions.json", "imgs", "img_path"),
    "ufine6926": ("UFine6926_Annotations.json", "", "file_path"),
    "ufine3c": ("UFine3C_Annotations.json", "", "file_path"),
}


def write_dataset(root: Path, layout: str, records=None, images=True) -> Path:
    records = make_records(layout) if records is None else records
    anno, img_dir, field = LAYOUT[layout]
    root.mkdir(parents=True, exist_ok=True)
    (root / anno).write_text(json.dumps(records))
    if images:
        for i, r in enumerate(records):
            if isinstance(r, dict) and isinstance(r.get(field), str):
                write_image(root / img_dir / r[field], seed=i)
    return root


@pytest.fixture
def dataset_factory(tmp_path):
    def make(layout, records=None, images=True, name=None):
        return write_dataset(tmp_path / (name or layout), layout, records, images)
    return make
