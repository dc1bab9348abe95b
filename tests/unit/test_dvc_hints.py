"""The CLI's hint for a missing pipeline output inside a DVC project: `dvc pull` when dvc.lock records it."""
import yaml

from stages.dvc_hints import dvc_hint, stage_outputs

DVC_YAML = {"stages": {"prepare": {"cmd": "mdpr prepare", "outs": ["artifacts/data"]},
                       "train": {"cmd": "mdpr train", "outs": ["artifacts/model/model.pt"],
                                 "metrics": [{"artifacts/model/live/metrics.json": {"cache": True}}]}}}
DVC_LOCK = {"schema": "2.0", "stages": {"prepare": {"cmd": "mdpr prepare",
                                                    "outs": [{"path": "artifacts/data", "md5": "abc.dir"}]}}}
MESSAGE = "artifacts/data/classes.json not found; run `mdpr prepare` (or `dvc repro prepare`) first."


def project(tmp_path, lock: bool = True):
    (tmp_path / ".dvc").mkdir(parents=True)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    if lock:
        (tmp_path / "dvc.lock").write_text(yaml.safe_dump(DVC_LOCK))
    return tmp_path


def test_outputs_of_dvc_yaml_and_dvc_lock_entries():
    assert stage_outputs(DVC_YAML["stages"]) == {"artifacts/data": "prepare", "artifacts/model/model.pt": "train",
                                                 "artifacts/model/live/metrics.json": "train"}
    assert stage_outputs(DVC_LOCK["stages"]) == {"artifacts/data": "prepare"}


def test_a_recorded_output_gets_dvc_pull_and_an_unrecorded_one_dvc_repro(tmp_path):
    root = project(tmp_path)
    (root / "sub").mkdir()
    assert dvc_hint(MESSAGE, root / "sub") == ("This DVC project's dvc.lock records artifacts/data (stage prepare): "
                                               "`dvc pull` fetches it from the DVC remote, `dvc repro` rebuilds it.")
    assert dvc_hint("artifacts/model/model.pt not found; run `mdpr train`", root) == (
        "In this DVC project `dvc repro` builds artifacts/model/model.pt (stage train) and what it needs.")


def test_no_hint_outside_a_project_for_present_outputs_or_other_errors(tmp_path):
    assert dvc_hint(MESSAGE, tmp_path) is None                          # no dvc.yaml / .dvc
    root = project(tmp_path / "p")
    assert dvc_hint("params: train.lr = -1 is out of range", root) is None
    (root / "artifacts/data").mkdir(parents=True)                       # the output is there: another problem
    assert dvc_hint(MESSAGE, root) is None
