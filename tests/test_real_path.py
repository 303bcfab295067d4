"""The path a researcher walks first: `harness run` of each method on each public dataset format, from
pretrained files in their exact upstream layouts (an OpenAI TorchScript CLIP archive, an open_clip hub
folder, a BERT `save_pretrained` folder), scored on the test split and on a UFine3C-format set, with
records that name every file with its sha256. Tiny shapes, one epoch, CPU."""
import json

import pytest

from harness.cli import main
from harness.hashing import sha256_file
from harness.results import ResultsStore

from conftest import make_records, write_dataset
from upstream_weights import write_bert_folder, write_open_clip_folder, write_openai_torchscript

DATASETS = ("cuhk", "icfg", "rstp", "ufine6926")
TINY = {
    "fmfa": ["method.encoder.preset=tiny", "method.encoder.image_size=(32,16)", "method.encoder.context_length=40",
             "method.cmt_depth=1"],
    "irra": ["method.encoder.preset=tiny", "method.encoder.image_size=(32,16)", "method.encoder.context_length=40",
             "method.cmt_depth=1"],
    "ivt": ["method.vision.preset=tiny", "method.vision.image_size=(32,16)", "method.text.preset=tiny",
            "method.stride=6", "method.drop_path=0.0", "method.levels=['sentence']"],
    "lgur": ["method.vision.preset=tiny", "method.vision.image_size=(32,16)", "method.text.preset=tiny",
             "method.text.context_length=40",
             "method.dim=64", "method.dict_size=20", "method.part_dim=32", "method.recon.heads=2",
             "method.recon.dim_head=16", "method.recon.mlp_dim=64", "method.proto.heads=2", "method.proto.dim_head=32",
             "method.proto.mlp_dim=64"],
}
CLIP_ONLY = ("fmfa", "irra")  # one CLIP encoder under method.encoder; IVT/LGUR: method.vision + method.text (BERT)
CLIP_KEY = {m: "method.encoder.checkpoint" if m in CLIP_ONLY else "method.vision.checkpoint" for m in TINY}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """The pretrained files and the datasets, written once for the module."""
    root = tmp_path_factory.mktemp("upstream")
    files = dict(openai=write_openai_torchscript(root / "openai" / "ViT-B-16.pt"),
                 open_clip=write_open_clip_folder(root / "open_clip"), bert=write_bert_folder(root / "bert"))
    data = {d: write_dataset(root / d, d, make_records(d, n_ids=(4, 2, 2))) for d in DATASETS}
    data["ufine3c"] = write_dataset(root / "ufine3c", "ufine3c")
    return root, files, data


# each method is also scored cross-domain (UFine3C) after one of the formats, to keep the CI time down
CROSS = {"fmfa": "cuhk", "irra": "ufine6926", "ivt": "icfg", "lgur": "rstp"}


def _argv(method, dataset, upstream, tmp_path, clip="openai", text="bert", cross=True):
    root, files, data = upstream
    opts = [*TINY[method], f"{CLIP_KEY[method]}={files[clip]}", "train.batch_size=16", "train.log_interval=2",
            "train.num_workers=0"]
    if cross:
        opts.append(f"cross_domain=[dict(type='ufine3c', root='{data['ufine3c']}')]")
    if method not in CLIP_ONLY:
        opts.append(f"method.text.path={files[text] if text == 'bert' else text}")
    return ["run", "--method", method, "--dataset", dataset, "--data-root", str(data[dataset]), "--epochs", "1",
            "--work-dir", str(tmp_path / "wd"), "--results-dir", str(tmp_path / "r"), "--cfg-options", *opts]


def _files_named(rec) -> dict:
    return {f["path"]: f for e in rec["weights_ledger"] for f in e["files"]}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(TINY))
@pytest.mark.parametrize("dataset", DATASETS)
def test_method_trains_on_each_public_format_from_upstream_files(method, dataset, upstream, tmp_path):
    """Both CLIP layouts are met by every method: the OpenAI archive on cuhk/rstp, open_clip on icfg/ufine6926."""
    _, files, _ = upstream
    clip = "openai" if dataset in ("cuhk", "rstp") else "open_clip"
    cross = CROSS[method] == dataset
    assert main(_argv(method, dataset, upstream, tmp_path, clip=clip, cross=cross)) == 0
    recs = {r["eval_dataset"]: r for r in ResultsStore(tmp_path / "r").records()}
    assert set(recs) == ({dataset, "ufine3c"} if cross else {dataset})
    assert not cross or set(recs["ufine3c"]["per_source"]) == {"UFine6926", "CUHK-PEDES"}
    for rec in recs.values():
        assert rec["train_dataset"] == dataset and rec["encoder_weights"] != "random-init"
        ledger = {e["key"]: e for e in rec["weights_ledger"]}
        vision = "method.encoder" if method in CLIP_ONLY else "method.vision"
        assert ledger[vision]["random"] is False and ledger[vision]["encoder"] == "clip"
        (clip_file,) = ledger[vision]["files"]
        assert clip_file["path"] == str(files[clip].resolve()) and clip_file["sha256"] == sha256_file(files[clip])
        assert clip_file["format"] == {"openai": "openai-torchscript", "open_clip": "open_clip-state-dict"}[clip]
        assert clip_file["position_grid"] == ([14, 14] if clip == "openai" else [8, 4])
        if method not in CLIP_ONLY:
            bert = ledger["method.text"]
            names = {f["path"].rsplit("/", 1)[-1] for f in bert["files"]}
            assert {"config.json", "model.safetensors", "tokenizer.json"} <= names and not bert["random"]
            assert all(f["sha256"] == sha256_file(f["path"]) and f["format"] == "save_pretrained"
                       for f in bert["files"])
        named = _files_named(rec)
        assert all(sha256_file(p) == f["sha256"] for p, f in named.items())
        assert rec["plugins"][0]["distribution"] == "tipr-harness" and len(rec["plugin_source_sha256"]) == 64
        assert set(rec["library_versions"]) == {"torch", "torchvision", "open_clip_torch", "transformers", "mmengine"}
        assert rec["torch_threads"] >= 1 and 0 <= rec["metrics"]["R1"] <= 100
        # one epoch is shorter than every released warm-up / milestone: the record says how the schedule was fitted
        assert rec["schedule_fit"] and all(n.startswith("param_scheduler.0") for n in rec["schedule_fit"])
    if (method, dataset) == ("ivt", "ufine6926"):  # `harness eval` of the checkpoint names the same files
        _, _, data = upstream
        assert main(["eval", "--checkpoint", str(tmp_path / "wd" / "epoch_1.pth"), "--dataset", "ufine3c",
                     "--data-root", str(data["ufine3c"]), "--results-dir", str(tmp_path / "e")]) == 0
        (ev,) = ResultsStore(tmp_path / "e").records()
        assert ev["kind"] == "eval" and ev["weights_ledger"] == recs[dataset]["weights_ledger"]
        assert ev["plugin_source_sha256"] == recs[dataset]["plugin_source_sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ivt", "lgur"])
def test_guard_names_the_methods_own_keys_and_each_missing_part(method, upstream, tmp_path, capsys):
    root, files, data = upstream
    base = ["run", "--method", method, "--dataset", "cuhk", "--data-root", str(data["cuhk"]), "--epochs", "1",
            "--work-dir", str(tmp_path / "wd"), "--results-dir", str(tmp_path / "r"), "--cfg-options", *TINY[method],
            "train.batch_size=4"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "method.vision.checkpoint=" in err and "method.text.path=" in err and "method.encoder" not in err
    assert main(base + [f"method.vision.checkpoint={files['openai']}"]) == 2  # the text part is still random
    err = capsys.readouterr().err
    assert "method.text (bert)" in err and "method.vision (clip)" not in err and not (tmp_path / "r").exists()
    # asked for on purpose: runs, and the record says which part is random and that it was asked for
    assert main(base + [f"method.vision.checkpoint={files['openai']}", "method.text.path=random"]) == 0
    (rec,) = ResultsStore(tmp_path / "r").records()
    ledger = {e["key"]: e for e in rec["weights_ledger"]}
    assert ledger["method.text"]["random"] and ledger["method.text"]["random_on_purpose"]
    assert not ledger["method.vision"]["random"] and rec["encoder_weights"][0]["sha256"] == sha256_file(files["openai"])
    assert json.loads(json.dumps(rec["config"]))["method"]["text"]["path"] == "random"
