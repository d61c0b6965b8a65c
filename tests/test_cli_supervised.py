"""``rimrl train supervised`` smoke runs and bad input."""

import json

import pytest

from rimrl.cli import main


@pytest.mark.parametrize("method", ["erm", "mixup", "manifold-mixup", "ict"])
@pytest.mark.parametrize("dataset", ["two-moons", "spirals", "digits"])
def test_each_method_on_each_dataset(tmp_path, method, dataset):
    args = ["train", "supervised", "--method", method, "--dataset", dataset, "--updates", "5",
            "--runs-dir", str(tmp_path), "--set", "train.eval_every=5"]
    if method == "ict":
        args += ["--labels-per-class", "3"]
    assert main(args) == 0
    (run,) = list(tmp_path.iterdir())
    result = json.loads((run / "results.json").read_text())
    assert result["method"] == method and 0 <= result["test"]["accuracy"] <= 1
    assert set(result["test"]) == {"accuracy", "nll", "ece"}
    assert (run / "decision_boundary.png").is_file() == (dataset != "digits")
    assert (run / "config.yaml").is_file() and list((run / "tb").iterdir())
    if method == "ict":
        assert result["labeled"] == 3 * (10 if dataset == "digits" else 2)
        assert "test_teacher" in result


@pytest.mark.parametrize("args, message", [
    (["--method", "mixupp"], "did you mean 'mixup'"),
    (["--dataset", "cifar"], "unknown dataset 'cifar'"),
    (["--alpha", "0"], "method.alpha must be positive"),
    (["--alpha", "-1"], "method.alpha must be positive"),
    (["--dataset", "two-moons", "--labels-per-class", "600"], "600 labels per class requested"),
    (["--updates", "0"], "train.updates must be a positive integer"),
])
def test_bad_input(tmp_path, capsys, args, message):
    assert main(["train", "supervised", "--runs-dir", str(tmp_path / "runs")] + args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_help_lists_every_method():
    from rimrl.cli import build_parser
    from rimrl.tasks.methods import METHODS

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = " ".join(train._subparsers._group_actions[0].choices["supervised"].format_help()
                    .split())
    assert all(name in text for name in METHODS) and "mean-teacher" in text
