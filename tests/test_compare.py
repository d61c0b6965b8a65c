"""``rimrl compare`` on synthetic run directories: every number against a hand computation."""

import json

import numpy as np
import pytest
import yaml

from rimrl.cli import main
from rimrl.report.stats import (bootstrap_mean_ci, human_normalized, iqm, optimality_gap,
                                relative_improvement, stratified_bootstrap_ci)

# final (last logged) scores: env -> method -> seed -> curve of (steps, score)
CURVES = {
    "DemonAttack": {
        "lstm": {0: [(100, 100.0), (200, 500.0)], 1: [(100, 300.0), (200, 700.0)]},
        "rims": {0: [(100, 200.0), (200, 900.0)], 1: [(100, 200.0), (200, 1100.0)]},
    },
    "rimrl/CueVector-v0": {
        "lstm": {0: [(50, 0.2), (100, 0.4)], 1: [(50, 0.0), (100, 0.6)]},
        "rims": {0: [(50, 0.5), (100, 0.5)], 1: [(50, 0.1), (100, 0.3)]},
    },
}


def write_run(root, env, core, seed, curve, distractors=None, activation=None):
    run = root / f"{env.replace('/', '-')}-{core}-s{seed}"
    (run / "tb").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"kind": "ppo"}))
    (run / "config.yaml").write_text(yaml.safe_dump(
        {"env": {"id": env}, "core": {"name": core}, "seed": seed}))
    rows = ["time/total_timesteps,rollout/ep_rew_mean,train/loss"]
    rows += [f"{step},{score},0.1" for step, score in curve]
    rows.append("300,,0.2")  # a log line without a score is skipped
    (run / "tb" / "progress.csv").write_text("\n".join(rows) + "\n")
    if distractors:
        (run / "distractors.json").write_text(json.dumps(distractors))
    if activation is not None:
        np.savez(run / "rims_activation.npz", active=activation,
                 episode_ends=np.arange(activation.shape[1]) % 4 == 3)
    return run


@pytest.fixture
def runs_dir(tmp_path):
    root = tmp_path / "sweep"
    for env, by_method in CURVES.items():
        for core, seeds in by_method.items():
            for seed, curve in seeds.items():
                distractors = None
                if env != "DemonAttack":
                    rate = {"lstm": [0.5, 0.3], "rims": [0.8, 0.6]}[core][seed]
                    distractors = {"splits": {"novel": {"success_rate": rate,
                                                        "return_mean": rate / 2}}}
                activation = np.eye(3, 8, dtype=np.uint8) if core == "rims" else None
                write_run(root, env, core, seed, curve, distractors, activation)
    (root / "not-a-run").mkdir()
    return root


def test_stats_hand_computed():
    assert iqm(np.array([100.0, 1, 2, 3, 4])) == 3.0  # cut 1 from each end of 5
    assert iqm(np.array([1.0, 2, 3, 4])) == 2.5
    assert optimality_gap(np.array([0.5, 1.5, 0.0])) == pytest.approx(0.5)
    assert human_normalized(1061.55, 152.1, 1971.0) == pytest.approx(0.5)
    assert relative_improvement(150.0, -100.0) == 2.5
    from rimrl.report.compare import relative_interval
    assert relative_interval([1.0], [1.0, 2.0], 100) is None  # one run: no spread
    lo, hi = relative_interval([2.0, 2.0], [1.0, 1.0], 100)
    assert lo == hi == 1.0  # no spread in either group: every draw gives +100%
    lo, hi = relative_interval([1.0, 3.0], [1.0, 1.0], 500)
    assert lo == 0.0 and hi == 2.0  # draws of the method's mean: 1, 2 or 3
    mean, low, high = bootstrap_mean_ci(np.array([3.0]))
    assert mean == low == high == 3.0
    point, lo, hi = stratified_bootstrap_ci([np.array([1.0]), np.array([3.0])], iqm, reps=50)
    assert point == lo == hi == 2.0  # one run per task: every replicate is the same
    point, lo, hi = stratified_bootstrap_ci([np.array([0.0, 1.0]), np.array([2.0, 3.0])],
                                            np.mean, reps=500)
    assert point == 1.5 and 0.5 <= lo < 1.5 < hi <= 2.5


def test_report_numbers_equal_hand_computations(runs_dir, capsys):
    assert main(["compare", str(runs_dir), "--reps", "200", "--points", "3"]) == 0
    out = runs_dir / "report"
    report = json.loads((out / "report.json").read_text())
    assert len(report["runs"]) == 8 and report["methods"] == ["lstm", "rims"]

    finals = report["final_scores"]
    assert finals["DemonAttack"]["lstm"]["mean"] == 600.0
    assert finals["DemonAttack"]["rims"]["mean"] == 1000.0
    assert finals["rimrl/CueVector-v0"]["rims"]["mean"] == pytest.approx(0.4)
    lo, hi = finals["DemonAttack"]["lstm"]["ci95"]
    # two seeds: a Student-t interval with 1 degree of freedom, t = 12.706
    scores = finals["DemonAttack"]["lstm"]["scores"]
    half = 12.7062047 * np.std(scores, ddof=1) / np.sqrt(2)
    assert (lo, hi) == pytest.approx((600.0 - half, 600.0 + half))

    # curves: Atari frames are 4 per agent step; the mean over seeds at each grid point
    c = report["curves"]["DemonAttack"]["lstm"]
    assert c["frames"] == [400.0, 600.0, 800.0]
    assert c["mean"] == [200.0, 400.0, 600.0]
    assert report["curves"]["rimrl/CueVector-v0"]["rims"]["frames"] == [50.0, 75.0, 100.0]

    rel = report["relative_improvement"]["per_env"]
    assert rel["DemonAttack"] == pytest.approx((1000 - 600) / 600)
    assert rel["rimrl/CueVector-v0"] == pytest.approx((0.4 - 0.5) / 0.5)

    agg = report["aggregate"]
    assert agg["human_normalized"] == {"DemonAttack": True, "rimrl/CueVector-v0": False}
    norm = lambda s: (s - 152.1) / (1971.0 - 152.1)  # noqa: E731
    rims_scores = [norm(900.0), norm(1100.0), 0.5, 0.3]
    assert agg["per_method"]["rims"]["iqm"][0] == pytest.approx(iqm(np.array(rims_scores)))
    assert agg["per_method"]["rims"]["optimality_gap"][0] == pytest.approx(
        np.mean([max(0.0, 1 - s) for s in rims_scores]))
    point, low, high = agg["per_method"]["lstm"]["iqm"]
    assert low <= point <= high

    novel = report["distractors"]["rimrl/CueVector-v0"]["novel"]
    assert novel["rims"]["success_rate"]["mean"] == pytest.approx(0.7)
    assert novel["lstm"]["success_rate"]["mean"] == pytest.approx(0.4)
    assert novel["lstm"]["return_mean"]["mean"] == pytest.approx(0.2)
    assert "DemonAttack" not in report["distractors"]
    # rims - lstm on novel, paired by seed: 0.8 - 0.5 and 0.6 - 0.3; of the 4 sign patterns
    # the two with one sign reach |mean| 0.3
    paired = report["paired"]["per_env"]["rimrl/CueVector-v0"]["novel"]
    assert paired["mean"] == pytest.approx(0.3) and paired["p"] == 0.5
    assert paired["ci95"] == pytest.approx([0.3, 0.3]) and paired["seeds"] == [0, 1]
    assert "DemonAttack" not in report["paired"]["per_env"]

    for rel_path in report["figures"].values():
        assert (out / rel_path).stat().st_size > 0
    assert any(k.startswith("activation") for k in report["figures"])
    md = (out / "report.md").read_text()
    assert "![DemonAttack](figures/curve_DemonAttack.png)" in md
    assert "relative_improvement.png" in md and "| DemonAttack | 66.7% | [" in md
    assert "| rimrl/CueVector-v0 | novel | rims | 2 |" in md
    assert "| rimrl/CueVector-v0 | novel | 2 | +0.300 | [+0.300, +0.300] | 0.500 | yes |" in md
    printed = capsys.readouterr().out
    assert "rims: IQM" in printed
    assert "rims - lstm success, paired over seeds [95% t-interval] (sign-flip p): novel " \
           "+0.300 [+0.300, +0.300] (p 0.50)" in printed
    # np.eye(3, 8): steps 0-2 activate RIM 0, 1, 2 alone, steps 3-7 none -> sets 1, 2, 4, 0 x5
    selection = report["selection"]["DemonAttack"]["rims"]
    expected = -(3 * (1 / 8) * np.log2(1 / 8) + (5 / 8) * np.log2(5 / 8))
    assert selection[0]["set_entropy_bits"] == pytest.approx(expected)
    assert selection[0]["top_set_share"] == pytest.approx(5 / 8)
    # episodes end after steps 3 and 7: step 4 starts one (set 0)
    assert selection[0]["start_set_entropy_bits"] == 0.0
    assert "## RIM selection" in md and "lstm" not in report["selection"]["DemonAttack"]


def test_group_by_another_key(runs_dir):
    assert main(["compare", str(runs_dir), "--by", "seed", "--reps", "20"]) == 0
    report = json.loads((runs_dir / "report" / "report.json").read_text())
    assert report["methods"] == ["0", "1"]
    assert report["relative_improvement"]["per_env"] == {}


@pytest.mark.parametrize("setup,message", [
    (lambda p: p.mkdir(), "no PPO or IQN runs"),
    (lambda p: None, "is not a directory"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, setup, message):
    target = tmp_path / "empty"
    setup(target)
    assert main(["compare", str(target)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_grouping_key(runs_dir, capsys):
    assert main(["compare", str(runs_dir), "--by", "core.size"]) == 2
    assert "no config key 'core.size'" in capsys.readouterr().err


def test_single_runs_get_no_interval_and_a_warning(tmp_path, capsys):
    """n=1: no interval over seeds, a visible warning, the seeds behind each relative
    improvement; a single run's distractor cells keep its own episode-level interval."""
    root = tmp_path / "runs"
    split = {"success_rate": 0.2, "success_ci95": [0.15, 0.26], "episodes": 200,
             "return_mean": 0.1, "return_ci95": [0.07, 0.13]}
    write_run(root, "rimrl/Pickup-v0", "rims", 0, [(50, 0.1), (100, 0.2)],
              {"splits": {"novel": split}})
    write_run(root, "rimrl/Pickup-v0", "lstm", 0, [(50, 0.1), (100, 0.25)],
              {"splits": {"novel": dict(split, success_rate=0.3)}})
    write_run(root, "rimrl/Pickup-v0", "lstm", 1, [(50, 0.1), (100, 0.35)],
              {"splits": {"novel": dict(split, success_rate=0.5)}})
    assert main(["compare", str(root), "--reps", "50", "--points", "3"]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 group(s) rest on a single run" in err and "rimrl/Pickup-v0 / rims" in err
    report = json.loads((root / "report" / "report.json").read_text())
    finals = report["final_scores"]["rimrl/Pickup-v0"]
    assert finals["rims"]["ci95"] is None and finals["rims"]["n"] == 1
    assert finals["lstm"]["ci95"] is not None and finals["lstm"]["n"] == 2
    assert report["curves"]["rimrl/Pickup-v0"]["rims"]["ci95_low"] is None
    assert report["relative_improvement"]["seeds"]["rimrl/Pickup-v0"] == {"rims": 1, "lstm": 2}
    assert report["relative_improvement"]["ci95"]["rimrl/Pickup-v0"] is None
    novel = report["distractors"]["rimrl/Pickup-v0"]["novel"]
    assert novel["rims"]["success_rate"]["sd"] is None
    assert novel["lstm"]["success_rate"] == pytest.approx(
        {"mean": 0.4, "sd": np.std([0.3, 0.5], ddof=1), "min": 0.3, "max": 0.5})
    assert [r["success_ci95"] for r in novel["lstm"]["per_run"]] == [[0.15, 0.26]] * 2
    md = (root / "report" / "report.md").read_text()
    assert "**Warning:** 1 group(s) rest on a single run" in md
    assert "| rimrl/Pickup-v0 | rims | 1 | 0.2 | n=1, no interval |" in md
    assert "| rims 1, lstm 2 |" in md
    assert "| rimrl/Pickup-v0 | novel | rims | 1 | 0.2 [0.15, 0.26] | 0.1 [0.07, 0.13] |" in md
    assert "| rimrl/Pickup-v0 | novel | lstm | 2 | 0.4 ± 0.141 (0.3-0.5) |" in md


@pytest.mark.parametrize("bad", ["nan", "1e308", "-inf"])
def test_runs_with_unusable_scores_are_left_out_with_a_warning(tmp_path, capsys, bad):
    env = "rimrl/CueVector-v0"
    for seed in (0, 1):
        write_run(tmp_path, env, "lstm", seed, CURVES[env]["lstm"][seed])
    write_run(tmp_path, env, "lstm", 2, [(100, 0.5), (200, bad)])
    assert main(["compare", str(tmp_path), "--reps", "20", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "left out 1 run(s) whose scores are not finite numbers" in err
    assert "rimrl-CueVector-v0-lstm-s2" in err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["final_scores"][env]["lstm"]["seeds"] == [0, 1]


def test_seed_level_intervals_hold_their_level_at_5_seeds():
    """2,000 draws of 5 seeds from a known normal: the seed-level interval covers the true
    mean 93-97% of the time (the percentile bootstrap it replaced covers ~83%)."""
    from rimrl.report.stats import bootstrap_mean_ci, seed_mean_ci

    rng = np.random.default_rng(1)
    draws = rng.normal(0.4, 0.1, size=(2000, 5))
    covered = [lo <= 0.4 <= hi for lo, hi in (seed_mean_ci(d)[1:] for d in draws)]
    assert 0.93 <= np.mean(covered) <= 0.97
    boot = [lo <= 0.4 <= hi for lo, hi in (bootstrap_mean_ci(d, reps=400)[1:]
                                            for d in draws[:500])]
    assert np.mean(boot) < 0.88


def test_paired_difference_by_hand():
    """The old memory regime's per-seed train differences (RESULTS): t-interval with 4 degrees
    of freedom and the exact sign-flip p (6 of 32 patterns as extreme); sign flips of
    (1, 2, 3) reach |mean| 2 only with one sign (2 of 8); 10 seeds switch to the bootstrap."""
    from rimrl.report.stats import T_BELOW, paired_difference, sign_flip_p

    d = paired_difference([-0.130, -0.115, -0.010, -0.160, 0.025], [0.0] * 5)
    assert d["mean"] == pytest.approx(-0.078)
    assert d["ci95"] == pytest.approx([-0.178164, 0.022164], abs=1e-6)
    assert d["p"] == pytest.approx(6 / 32) and d["interval"] == "t"
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(0.25)
    assert paired_difference(np.arange(T_BELOW), np.zeros(T_BELOW))["interval"] == "bootstrap"


def test_honest_groups_copies_links_mixed_sources_and_row_order(tmp_path, capsys):
    """A copied run counts its seed once (named as left out); a symlinked run is read, and a
    link back into the tree does not loop or count twice; a group mixing evaluation- and
    training-scored runs is warned about; evaluation rows out of order still give the last
    step's score as final."""
    import shutil

    root = tmp_path / "runs"
    a = write_run(root, "rimrl/CueVector-v0", "lstm", 0, [(50, 0.1), (100, 0.2)])
    shutil.copytree(a, root / "copy-of-s0")
    elsewhere = write_run(tmp_path / "other", "rimrl/CueVector-v0", "lstm", 1,
                          [(50, 0.3), (100, 0.4)])
    (root / "linked-s1").symlink_to(elsewhere, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (elsewhere / "evaluations.csv").write_text(
        "step,split,episodes,deterministic,success_rate,success_lo,success_hi,return_mean,"
        "return_lo,return_hi,seconds\n"
        "100,clean,4,False,1,0.5,1,0.9,0.8,1,1\n"
        "50,clean,4,False,0,0,0.5,0.1,0,0.2,1\n")
    assert main(["compare", str(root), "--reps", "50", "--points", "3"]) == 0
    err = capsys.readouterr().err
    assert "left out 1 duplicate run(s), so each seed counts once: " in err
    assert "(a copy of copy-of-s0)" in err
    # the same seed with another config is kept, and named
    b = write_run(tmp_path / "lr", "rimrl/CueVector-v0", "lstm", 0, [(50, 0.1), (100, 0.3)])
    config = yaml.safe_load((b / "config.yaml").read_text())
    (b / "config.yaml").write_text(yaml.safe_dump(dict(config, ppo={"learning_rate": 0.1})))
    report = json.loads((root / "report" / "report.json").read_text())
    lstm = report["final_scores"]["rimrl/CueVector-v0"]["lstm"]
    assert lstm["seeds"] == [0, 1] and lstm["scores"] == pytest.approx([0.2, 0.9])
    assert "final scores are of different kinds" in err
    shutil.rmtree(root / "report")
    b.rename(root / "zz-other-lr")
    assert main(["compare", str(root), "--reps", "50", "--points", "3"]) == 0
    err = capsys.readouterr().err
    assert "seed 0 appears in runs that differ in ppo.learning_rate; group by one" in err
