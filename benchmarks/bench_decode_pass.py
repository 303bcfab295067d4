"""Cost of the full decode pass `harness run` makes before training (harness.data.loading.require_images),
first run and cached rerun. N JPEGs of CUHK-PEDES's typical size (about 128 x 384 px) in a temporary folder.

    python benchmarks/bench_decode_pass.py [N]
"""
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main(n: int = 2000):
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TIPR_CACHE"] = str(Path(tmp) / "cache")
        from harness.data.loading import require_images
        from harness.data.splits import ImageRecord

        root = Path(tmp) / "imgs"
        root.mkdir()
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (384, 128, 3), dtype=np.uint8)
        recs = []
        for i in range(n):
            Image.fromarray(np.roll(base, i, axis=0)).save(root / f"{i}.jpg", quality=90)
            recs.append(ImageRecord(pid=i, path=f"{i}.jpg", captions=["x"]))
        t0 = time.perf_counter()
        require_images(recs, root, "bench")
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        require_images(recs, root, "bench")
        again = time.perf_counter() - t0
        print(f"{n} images 128x384 JPEG: full decode pass {first:.2f} s ({first / n * 1e3:.2f} ms/image), "
              f"cached rerun {again:.2f} s ({again / n * 1e3:.3f} ms/image)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
