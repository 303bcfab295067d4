"""Image decoding and each method's image pipeline, checked against torchvision/PIL and pinned to the
released code (file:line cited at each number)."""
import dataclasses
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from harness.data.loading import GalleryImages, ImageTransform, TrainPairs, load_image
from harness.data.splits import ImageRecord
from harness.errors import ConfigError
from harness.plugin import ImageSpec

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RNG = np.random.default_rng(0)
H, W = 24, 12


def _png_rgb16(path, a16: np.ndarray):
    """A 16-bit-per-channel RGB PNG (PIL cannot write one)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    h, w, _ = a16.shape
    raw = b"".join(b"\x00" + a16[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _palette_lookup(im: Image.Image) -> np.ndarray:
    pal = np.array(im.getpalette()[:768] + [0] * (768 - len(im.getpalette()[:768])), dtype=np.float64).reshape(-1, 3)
    return pal[np.asarray(im)]


def _make(mode, path):
    """Write an image in ``mode``; return the 8-bit RGB intensities it stands for (float, [H, W, 3])."""
    rgb = RNG.integers(0, 256, (H, W, 3)).astype(np.uint8)
    gray16 = RNG.integers(0, 65536, (H, W)).astype(np.uint16)
    if mode == "1":
        bits = RNG.random((H, W)) > 0.5
        Image.fromarray(bits).save(path)
        return np.repeat(bits[..., None] * 255.0, 3, -1)
    if mode == "L":
        Image.fromarray(rgb[..., 0]).save(path)
        return np.repeat(rgb[..., :1].astype(float), 3, -1)
    if mode == "LA":
        Image.fromarray(np.dstack([rgb[..., 0], rgb[..., 1]]), "LA").save(path)
        return np.repeat(rgb[..., :1].astype(float), 3, -1)
    if mode in ("P", "P+transparency"):
        im = Image.fromarray(rgb).quantize(16)
        if mode == "P+transparency":
            im.info["transparency"] = 0
        im.save(path)
        back = Image.open(path)
        assert back.mode == "P" and ("transparency" in back.info) == (mode == "P+transparency")
        return _palette_lookup(back)
    if mode == "RGB":
        Image.fromarray(rgb).save(path)
        return rgb.astype(float)
    if mode == "RGBA":
        Image.fromarray(np.dstack([rgb, rgb[..., 0]]), "RGBA").save(path)
        return rgb.astype(float)
    if mode == "CMYK":
        cmyk = np.dstack([255 - rgb, np.zeros((H, W), np.uint8)])
        Image.fromarray(cmyk, "CMYK").save(path)
        return rgb.astype(float)
    if mode == "I;16":
        Image.fromarray(gray16).save(path)
        return np.repeat(gray16[..., None] / 257.0, 3, -1)
    if mode == "I;16B":
        Image.fromarray(gray16.astype(">u2")).save(path)
        return np.repeat(gray16[..., None] / 257.0, 3, -1)
    if mode == "I":
        Image.fromarray(gray16.astype(np.int32)).save(path)
        return np.repeat(gray16[..., None] / 257.0, 3, -1)
    if mode == "I (8-bit values)":
        Image.fromarray(rgb[..., 0].astype(np.int32)).save(path)
        return np.repeat(rgb[..., :1].astype(float), 3, -1)
    if mode == "F":
        f = RNG.random((H, W)).astype(np.float32)
        Image.fromarray(f).save(path)
        return np.repeat(f[..., None] * 255.0, 3, -1)
    if mode == "RGB 16-bit":
        a16 = RNG.integers(0, 65536, (H, W, 3)).astype(np.uint16)
        _png_rgb16(path, a16)
        return a16 / 257.0
    raise AssertionError(mode)


MODES = {  # case: (file type, the mode PIL opens it in)
    "1": ("png", "1"), "L": ("png", "L"), "LA": ("png", "LA"), "P": ("png", "P"), "P+transparency": ("png", "P"),
    "RGB": ("png", "RGB"), "RGBA": ("png", "RGBA"), "CMYK": ("tif", "CMYK"), "I;16": ("png", "I;16"),
    "I;16B": ("tif", "I;16B"), "I": ("tif", "I"), "I (8-bit values)": ("tif", "I"), "F": ("tif", "F"),
    "RGB 16-bit": ("png", "RGB")}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_pil_mode_decodes_to_8bit_rgb_with_the_source_intensities(tmp_path, mode):
    ext, opened = MODES[mode]
    path = tmp_path / f"img.{ext}"
    want = _make(mode, path)
    assert Image.open(path).mode == opened
    got = load_image(path, (H, W)).permute(1, 2, 0).numpy().astype(float)  # same size: no resampling
    assert got.shape == (H, W, 3)
    np.testing.assert_allclose(got.mean(axis=(0, 1)), want.mean(axis=(0, 1)), atol=0.5)
    assert np.abs(got - want).max() <= 1.0  # every pixel, not only the mean


def test_plain_convert_rgb_would_have_saturated_16bit(tmp_path):
    """The bug this guards against: PIL's convert('RGB') clips 16-bit values at 255 (near-white image)."""
    path = tmp_path / "g16.png"
    want = _make("I;16", path)
    naive = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    assert naive.mean() > 240 > want.mean() + 100
    assert abs(load_image(path, (H, W)).float().mean().item() - want.mean()) < 0.5


@pytest.mark.parametrize("interpolation,mode", [("bilinear", T.InterpolationMode.BILINEAR),
                                                ("bicubic", T.InterpolationMode.BICUBIC)])
def test_resize_matches_torchvision_resize_on_pil(tmp_path, interpolation, mode):
    Image.fromarray(RNG.integers(0, 256, (90, 41, 3)).astype(np.uint8)).save(tmp_path / "a.png")
    ours = load_image(tmp_path / "a.png", (32, 16), interpolation)
    ref = T.PILToTensor()(T.Resize((32, 16), interpolation=mode)(Image.open(tmp_path / "a.png").convert("RGB")))
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("fill,value", [("mean", list(CLIP_MEAN)), ("zero", 0)])
def test_erasing_equals_torchvision_random_erasing(fill, value):
    """Same draws in the same order as torchvision's RandomErasing (IRRA uses value=mean), so with the
    global RNG in the same state both erase the same rectangle with the same fill."""
    spec = ImageSpec(size=(48, 16), erasing_fill=fill, erasing_area=(0.02, 0.4), erasing_ratio=(0.3, 3.3))
    tf = ImageTransform(spec, train=True)
    ref_tf = T.RandomErasing(p=1.0, scale=(0.02, 0.4), ratio=(0.3, 3.3), value=value)
    x = torch.randn(3, 48, 16, generator=torch.Generator().manual_seed(1))
    changed = 0
    for seed in range(40):
        torch.manual_seed(seed)
        ref = ref_tf(x.clone())
        torch.manual_seed(seed)
        torch.rand(1)  # RandomErasing's probability draw
        ours = tf.erase(x.clone(), None)
        assert torch.equal(ours, ref), seed
        changed += not torch.equal(ours, x)
    assert changed >= 35


def _erased_fractions(spec, n=300):
    tf = ImageTransform(spec, train=True)
    x = torch.full((3, 48, 16), 7.0)
    out = []
    for s in range(n):
        y = tf.erase(x.clone(), torch.Generator().manual_seed(s))
        out.append(((y != 7.0).any(0)).float().mean().item())
    return np.array(out), y


def test_pixel_fill_is_per_pixel_normal_noise_on_at_most_a_third():
    """timm RandomErasing(mode='pixel'): N(0, 1) per pixel and channel, area fraction in [0.02, 1/3]."""
    spec = ImageSpec(size=(48, 16), erasing_fill="pixel", erasing_area=(0.02, 1 / 3), erasing_ratio=(0.3, 1 / 0.3))
    frac, _ = _erased_fractions(spec)
    assert frac.max() <= 1 / 3 + 0.04  # rounding h and w to whole pixels
    tf = ImageTransform(spec, train=True)
    vals = []
    for s in range(200):
        y = tf.erase(torch.full((3, 48, 16), 7.0), torch.Generator().manual_seed(s))
        vals.append(y[y != 7.0])
    vals = torch.cat(vals)
    assert vals.numel() > 10_000 and abs(vals.mean().item()) < 0.05 and abs(vals.std().item() - 1) < 0.05
    irra, _ = _erased_fractions(ImageSpec(size=(48, 16)))
    assert irra.max() > 0.36  # IRRA's scale goes to 0.4: the two specs really differ


def test_augmentation_is_seeded_per_seed_epoch_and_sample(tmp_path):
    for i in range(3):
        Image.fromarray(RNG.integers(0, 256, (40, 20, 3)).astype(np.uint8)).save(tmp_path / f"{i}.png")
    recs = [ImageRecord(pid=i, path=f"{i}.png", captions=["a", "b"]) for i in range(3)]
    spec = ImageSpec(size=(32, 16), erasing_fill="pixel", train_interpolation="bicubic")
    a = TrainPairs(recs, tmp_path, spec, seed=3)
    torch.manual_seed(0)
    x0 = a[1]["image"]
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(TrainPairs(recs, tmp_path, spec, seed=3)[1]["image"], x0)
    a.set_epoch(1)
    assert not torch.equal(a[1]["image"], x0)
    assert not torch.equal(TrainPairs(recs, tmp_path, spec, seed=4)[1]["image"], x0)


def _torchvision_test_pipeline(path, size, interpolation, mean, std):
    return T.Compose([T.Resize(size, interpolation=interpolation), T.ToTensor(), T.Normalize(mean, std)])(
        Image.open(path).convert("RGB"))


def _fmfa():
    from tipr_methods.fmfa import FMFA
    return FMFA(num_classes=4, encoder=dict(type="clip", preset="tiny", image_size=(32, 16), context_length=24),
                cmt_depth=1)


def _ivt(**kw):
    from tipr_methods.ivt import IVT
    return IVT(vision=dict(type="clip", preset="tiny", image_size=(32, 16)),
               text=dict(type="bert", preset="tiny", context_length=32), stride=6, drop_path=0.0, **kw)


def _lgur(**kw):
    from tipr_methods.lgur import LGUR
    return LGUR(num_classes=4, vision=dict(type="clip", preset="tiny", image_size=(32, 16)),
                text=dict(type="bert", preset="tiny", context_length=32), dim=64, dict_size=20, part_dim=32,
                recon=dict(heads=2, dim_head=16, mlp_dim=64), proto=dict(heads=2, dim_head=32, mlp_dim=64), **kw)


def test_fmfa_pipeline_is_the_released_one():
    s = _fmfa().image_spec
    # yinhao1102/FMFA@d0a3403 datasets/build.py:29 (test) and :38 (train) use T.Resize((h, w)), whose default
    # interpolation is bilinear (torchvision transforms.py Resize.__init__); same file as anosorae/IRRA
    # datasets/build.py:28,37.
    assert (s.train_interpolation, s.test_interpolation) == ("bilinear", "bilinear")
    # FMFA datasets/build.py:24-25 (IRRA build.py:23-24): CLIP mean/std.
    assert s.mean == CLIP_MEAN and s.std == CLIP_STD
    # FMFA datasets/build.py:39-40: RandomHorizontalFlip(0.5), Pad(10) + RandomCrop.
    assert s.augment["flip"] is True and s.augment["pad_crop"] == 10
    # FMFA datasets/build.py:44 (IRRA build.py:43): RandomErasing(scale=(0.02, 0.4), value=mean) after Normalize;
    # p and ratio are torchvision's defaults 0.5 and (0.3, 3.3) (transforms.py RandomErasing.__init__).
    assert s.augment["erasing"] == 0.5 and s.erasing_area == (0.02, 0.4) and s.erasing_ratio == (0.3, 3.3)
    assert s.erasing_fill == "mean"


def test_ivt_pipeline_is_the_released_one():
    m = _ivt()
    s = m.image_spec
    # TencentYoutuResearch/PersonRetrieval-IVT@f205788 datasets/make_dataloader.py:142 Resize(SIZE_TRAIN,
    # interpolation=3) = bicubic; :153 Resize(SIZE_TEST) with torchvision's default, bilinear.
    assert (s.train_interpolation, s.test_interpolation) == ("bicubic", "bilinear")
    # make_dataloader.py:143-145 Pad(10) (configs/CUHK_PEDES/vit_base_uvt_bert.yml:27 PADDING: 10), RandomCrop,
    # RandomHorizontalFlip(p=0.5) (yml:25).
    assert s.augment["flip"] is True and s.augment["pad_crop"] == 10
    # make_dataloader.py:148 timm RandomErasing(probability=RE_PROB=0.5 (yml:26), mode='pixel', max_count=1):
    # timm defaults min_area=0.02, max_area=1/3, min_aspect=0.3, max_aspect=1/min_aspect
    # (timm/data/random_erasing.py RandomErasing.__init__, unchanged since timm 0.4.12 pinned by IVT).
    assert s.augment["erasing"] == 0.5 and s.erasing_fill == "pixel"
    assert s.erasing_area == pytest.approx((0.02, 1 / 3)) and s.erasing_ratio == pytest.approx((0.3, 1 / 0.3))
    assert s.train_views == 3  # one augmented view per text level
    # configs/CUHK_PEDES/vit_base_uvt_bert.yml:28-29 PIXEL_MEAN/STD 0.5: selectable through the constructor
    # (the default stays CLIP's, matching the CLIP backbone the harness uses; see the model card).
    half = _ivt(image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5)).image_spec
    assert half.mean == (0.5, 0.5, 0.5) and half.std == (0.5, 0.5, 0.5)


def test_lgur_pipeline_is_the_released_one():
    s = _lgur().image_spec
    # ZhiyinShao-H/LGUR@c203cc7 data/dataloader.py:21 (train) and :40 (test): Resize((384, 128), interpolation=3).
    assert (s.train_interpolation, s.test_interpolation) == ("bicubic", "bicubic")
    # data/dataloader.py:22-24: Pad(10), RandomCrop, RandomHorizontalFlip(); no erasing in the transform list
    # (option/options.py:50 --random_erasing is declared, default 0.0, and never read).
    assert s.augment["flip"] is True and s.augment["pad_crop"] == 10 and s.augment["erasing"] == 0
    # data/dataloader.py:26,42 ImageNet mean/std: selectable through the constructor.
    imagenet = _lgur(image_mean=(0.485, 0.456, 0.406), image_std=(0.229, 0.224, 0.225)).image_spec
    assert imagenet.mean == (0.485, 0.456, 0.406) and imagenet.std == (0.229, 0.224, 0.225)


BIL, BIC = T.InterpolationMode.BILINEAR, T.InterpolationMode.BICUBIC
HALF, IMAGENET = ((0.5,) * 3, (0.5,) * 3), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The released pipelines written out here (not read from the method's spec), erasing left out:
# FMFA datasets/build.py:38-44: Resize (bilinear), RandomHorizontalFlip(0.5), Pad(10), RandomCrop, CLIP stats;
# IVT make_dataloader.py:141-155: Resize bicubic, Pad(10), RandomCrop, RandomHorizontalFlip; test bilinear; 0.5/0.5;
# LGUR data/dataloader.py:20-42: Resize bicubic, Pad(10), RandomCrop, RandomHorizontalFlip; test bicubic; ImageNet.
RELEASED_PIPELINES = {
    "fmfa": (lambda hw: [T.Resize(hw, BIL), T.RandomHorizontalFlip(0.5), T.Pad(10), T.RandomCrop(hw)], BIL,
             (CLIP_MEAN, CLIP_STD), {}),
    "ivt": (lambda hw: [T.Resize(hw, BIC), T.Pad(10), T.RandomCrop(hw), T.RandomHorizontalFlip(0.5)], BIL, HALF,
            dict(image_mean=HALF[0], image_std=HALF[1])),
    "lgur": (lambda hw: [T.Resize(hw, BIC), T.Pad(10), T.RandomCrop(hw), T.RandomHorizontalFlip()], BIC, IMAGENET,
             dict(image_mean=IMAGENET[0], image_std=IMAGENET[1])),
}


@pytest.mark.parametrize("name", list(RELEASED_PIPELINES))
def test_loaders_feed_each_method_its_released_pipeline(tmp_path, name):
    """Gallery images equal the released test transform; training images (erasing off) equal the released train
    transform run by torchvision on the global generator seeded as the loader seeds sample 0 of epoch 0."""
    from harness.data.loading import sample_seed

    train, test_mode, (mean, std), kw = RELEASED_PIPELINES[name]
    Image.fromarray(RNG.integers(0, 256, (77, 35, 3)).astype(np.uint8)).save(tmp_path / "p.png")
    spec = (_fmfa() if name == "fmfa" else dict(ivt=_ivt, lgur=_lgur)[name](**kw)).image_spec
    hw = spec.size
    got = GalleryImages(["p.png"], tmp_path, spec)[0]
    torch.testing.assert_close(got, _torchvision_test_pipeline(tmp_path / "p.png", hw, test_mode, mean, std),
                               atol=1e-5, rtol=0)
    no_erasing = dataclasses.replace(spec, augment=dict(spec.augment, erasing=0.0), train_views=1)
    pairs = TrainPairs([ImageRecord(0, "p.png", ["x"])], tmp_path, no_erasing, seed=5)
    for epoch in range(6):  # several seeds: flips and offsets both vary
        pairs.set_epoch(epoch)
        torch.manual_seed(sample_seed(5, epoch, 0))
        pipeline = T.Compose(train(hw) + [T.ToTensor(), T.Normalize(mean, std)])
        want = pipeline(Image.open(tmp_path / "p.png").convert("RGB"))
        torch.testing.assert_close(pairs[0]["image"], want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kw,key", [(dict(train_interpolation="lanczos"), "train_interpolation"),
                                    (dict(erasing_fill="noise"), "erasing_fill"),
                                    (dict(augment=dict(flip=True, erase=0.5)), "augment"),
                                    (dict(augment=dict(erasing=1.5)), "augment.erasing"),
                                    (dict(erasing_area=(0.5, 0.2)), "erasing_area")])
def test_image_spec_rejects_bad_values(kw, key):
    with pytest.raises(ConfigError, match=key):
        ImageSpec(**kw)
