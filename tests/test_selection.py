"""train.selection='val': the reported checkpoint is the best validation epoch, and the record says so."""
import json


from harness.cli import main
from harness.config import load_config
from harness.engine.run import run_job
from harness.results import ResultsStore

TINY = dict(dataset=dict(type="synth", train_ids=12, val_ids=4, test_ids=6, images_per_id=2, xdomain_ids=4,
                         image_size=(32, 16)),
            cross_domain=[], method=dict(encoder=dict(image_size=(32, 16), context_length=40)),
            train=dict(epochs=3, batch_size=8, log_interval=5, selection="val"))

def test_val_selection_reports_the_best_validation_epoch(tmp_path):
    (path,) = run_job(load_config("fmfa", "synth", options=TINY), work_dir=str(tmp_path / "wd"),
                      results_dir=str(tmp_path / "r"), progress=False)
    rec = json.loads((path / "record.json").read_text())
    history = [json.loads(line) for line in (tmp_path / "wd" / "eval_history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    best = max(history, key=lambda h: (h["R1"], h["mAP"]))
    sel = rec["selection"]
    assert sel["rule"] == "val" and sel["selected_epoch"] == best["epoch"] and sel["epochs"] == 3
    assert rec["checkpoint"]["epoch"] == best["epoch"] and rec["checkpoint"]["path"].endswith("best_val.pth")
    # the test metrics are those of the selected weights: re-scoring best_val.pth gives the same numbers
    assert main(["eval", "--checkpoint", str(tmp_path / "wd" / "best_val.pth"), "--dataset", "synth",
                 "--results-dir", str(tmp_path / "r2")]) == 0
    (again,) = ResultsStore(tmp_path / "r2").records()
    assert again["metrics"] == rec["metrics"] and again["checkpoint"]["sha256"] == rec["checkpoint"]["sha256"]
    assert again["checkpoint"]["epoch"] == best["epoch"] and again["kind"] == "eval"

def test_val_split_holds_out_training_identities_on_a_dataset_without_val(tmp_path, dataset_factory, capsys):
    from conftest import make_records

    icfg = dataset_factory("icfg", make_records("icfg", n_ids=(10, 0, 3)))
    opts = ["method.encoder.preset=tiny", "method.encoder.image_size=(32,16)", "method.encoder.context_length=40",
            "method.cmt_depth=1", "train.batch_size=4", "train.log_interval=2", "method.encoder.checkpoint=random"]
    base = ["run", "--method", "fmfa", "--dataset", "icfg", "--data-root", str(icfg), "--epochs", "1",
            "--work-dir", str(tmp_path / "wd"), "--results-dir", str(tmp_path / "r"), "--cfg-options", *opts]
    assert main(base + ["train.selection=val"]) == 2
    assert "has no val split; set train.val_split=0.1" in capsys.readouterr().err
    assert main(base + ["train.selection=val", "train.val_split=0.2"]) == 0
    (rec,) = ResultsStore(tmp_path / "r").records()
    counts = rec["train_fingerprint"]["counts"]
    assert counts["val"]["ids"] == 2 and counts["train"]["ids"] == 8 and rec["selection"]["rule"] == "val"
    assert any("held out" in n for n in rec["data_notes"])


def test_runner_checkpoint_keys_carry_the_prefix_eval_strips():
    """``harness eval`` strips METHOD_KEY_PREFIX from a Runner checkpoint's keys: the prefix is HarnessModel's."""
    from harness.config import load_config
    from harness.engine.model import METHOD_KEY_PREFIX, HarnessModel, method_of
    from harness.registry import build_method

    method = build_method(load_config("irra", "synth").method, 4)
    model = HarnessModel(method)
    assert all(k.startswith(METHOD_KEY_PREFIX) for k in model.state_dict()) and method_of(model) is method
