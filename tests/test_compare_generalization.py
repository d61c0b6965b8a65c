"""``rimrl compare`` on runs that evaluated during training: per-split success curves over
seeds (the thesis' Fig. 4 shape) and final scores from the last evaluation, by hand."""

import json

import pytest

from rimrl.cli import main
from rimrl.runs import EVAL_COLUMNS, write_evaluations
from tests.test_compare import write_run

ENV = "rimrl/Pickup-v0"
# method -> seed -> [(step, split, success, return)]
EVALS = {
    "lstm": {0: [(100, "train", 0.5, 0.4), (100, "novel", 0.2, 0.1),
                 (200, "train", 0.9, 0.8), (200, "novel", 0.4, 0.3)],
             1: [(100, "train", 0.3, 0.2), (100, "novel", 0.0, 0.0),
                 (200, "train", 0.7, 0.6), (200, "novel", 0.6, 0.5)]},
    "rims": {0: [(100, "train", 0.4, 0.3), (100, "novel", 0.4, 0.3),
                 (200, "train", 0.8, 0.7), (200, "novel", 0.8, 0.7),
                 (300, "train", 1.0, 0.9)]},  # a step the other seeds lack is left out
}


def rows(evals):
    return [dict.fromkeys(EVAL_COLUMNS, 0) | {"step": step, "split": split, "episodes": 10,
                                              "deterministic": False, "success_rate": success,
                                              "success_lo": success, "success_hi": success,
                                              "return_mean": ret}
            for step, split, success, ret in evals]


@pytest.fixture
def runs(tmp_path):
    for method, seeds in EVALS.items():
        for seed, evals in seeds.items():
            write_run(tmp_path, ENV, method, seed, [(100, 0.1), (200, 0.2)])
            write_evaluations(tmp_path / f"rimrl-Pickup-v0-{method}-s{seed}", rows(evals))
    return tmp_path


def test_curves_and_final_scores_from_evaluations(runs, capsys):
    assert main(["compare", str(runs), "--reps", "50", "--no-progress"]) == 0
    report = json.loads((runs / "report" / "report.json").read_text())
    lstm = report["generalization"][ENV]["lstm"]
    assert lstm["train"]["frames"] == [100, 200]
    assert lstm["train"]["success_mean"] == pytest.approx([0.4, 0.8])
    assert lstm["novel"]["success_mean"] == pytest.approx([0.1, 0.5])
    assert lstm["novel"]["ci95_low"][1] <= 0.5 <= lstm["novel"]["ci95_high"][1]
    rims = report["generalization"][ENV]["rims"]
    assert rims["train"]["frames"] == [100, 200, 300] and rims["train"]["ci95_low"] is None
    finals = report["final_scores"][ENV]
    assert finals["lstm"]["scores"] == pytest.approx([0.8, 0.6])  # last train-row returns
    assert finals["rims"]["scores"] == pytest.approx([0.9])
    assert finals["lstm"]["sources"] == ["last evaluation"]
    md = (runs / "report" / "report.md").read_text()
    assert "## Generalization over training" in md and "generalization_rimrl_Pickup-v0.png" in md
    assert (runs / "report" / "figures" / "generalization_rimrl_Pickup-v0.png").is_file()
    assert "| rimrl/Pickup-v0 | rims | novel | 200 | 0.8 | n=1, no interval |" in md


def test_rows_of_resumed_runs_join_the_grid_of_their_multiples(tmp_path):
    """Two seeds evaluated every 100 steps; seed 1 was resumed from a checkpoint between
    rollout ends, so its rows sit at other steps (104, 236 instead of 128, 256). Each row
    counts at the multiple it was made for (100, 200); the second row of a multiple (the end
    of training, 260) keeps its own step."""
    import yaml

    steps = {0: [128, 256], 1: [104, 236, 260]}
    for seed, at in steps.items():
        run = write_run(tmp_path, ENV, "lstm", seed, [(100, 0.1), (200, 0.2)])
        config = yaml.safe_load((run / "config.yaml").read_text()) | {"eval": {"every": 100}}
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        write_evaluations(run, rows([(s, "train", 0.1 * (i + 1) + 0.05 * seed, 0.0)
                                     for i, s in enumerate(at)]))
    assert main(["compare", str(tmp_path), "--reps", "20", "--no-progress"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    curve = report["generalization"][ENV]["lstm"]["train"]
    assert curve["frames"] == [100, 200]
    assert curve["success_mean"] == pytest.approx([0.125, 0.225])


def test_runs_without_evaluations_keep_the_training_score(tmp_path):
    write_run(tmp_path, ENV, "lstm", 0, [(100, 0.1), (200, 0.25)])
    assert main(["compare", str(tmp_path), "--reps", "10", "--no-progress"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["generalization"] == {}
    assert report["final_scores"][ENV]["lstm"]["sources"] == ["training episodes"]
