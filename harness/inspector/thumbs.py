"""Gallery thumbnails embedded as data URIs, read only from below the data root the user names.

A gallery path comes from the results store, so it is data: an absolute path, a ``..`` step or a link
leading out of the root is refused like a missing file (a placeholder, counted), never opened."""
from __future__ import annotations

import base64
import io
from pathlib import Path, PurePosixPath

from PIL import Image, UnidentifiedImageError

THUMB_HEIGHT = 128
MAX_PIXELS = 64_000_000  # decompression-bomb guard, as the loaders' default


class Thumbnails:
    def __init__(self, data_root: Path, image_dir: str, height: int = THUMB_HEIGHT):
        self.root = data_root.resolve()
        sub = self._inside(image_dir) if image_dir not in ("", ".") else self.root
        # the dataset folder, or the image folder itself when the user named that
        self.image_root = sub if sub is not None and sub.is_dir() else self.root
        self.height = height
        self._cache: dict[str, str | None] = {}
        self.missing: set[str] = set()

    def _inside(self, rel: str) -> Path | None:
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or "\\" in rel or not rel:
            return None
        full = (self.root / p).resolve()
        return full if full == self.root or full.is_relative_to(self.root) else None

    def resolve(self, rel: str) -> Path | None:
        """The image file for a gallery path, or None (outside the root, or absent)."""
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or "\\" in rel or not rel:
            return None
        full = (self.image_root / p).resolve()
        if not full.is_relative_to(self.root) or not full.is_file():
            return None
        return full

    def data_uri(self, rel: str) -> str | None:
        """``data:image/png;base64,...`` of the thumbnail, or None (the page shows a placeholder)."""
        if rel in self._cache:
            return self._cache[rel]
        uri = None
        f = self.resolve(rel)
        if f is not None:
            try:
                with Image.open(f) as im:
                    if im.width * im.height > MAX_PIXELS:
                        raise ValueError("too many pixels")
                    im = im.convert("RGB")
                    w = max(1, round(im.width * self.height / im.height))
                    im = im.resize((w, self.height), Image.BILINEAR)
                    buf = io.BytesIO()
                    im.save(buf, format="PNG")
                uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
                uri = None
        if uri is None:
            self.missing.add(rel)
        self._cache[rel] = uri
        return uri
