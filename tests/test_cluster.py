"""``rimrl sweep --address`` on a cluster of two Ray nodes (a head and a worker node, each its
own raylet, as on two machines): trials run on both, and losing the worker node mid-trial
retries that trial on the head, resuming its run from its last checkpoint."""

import subprocess
import sys
import time

import pytest

from tests.test_sweep import TINY, sweep_file


def attempts(run) -> list[str]:
    """The Ray node ids of a trial's attempts, from its log."""
    return [line.split()[5] for line in (run / "trial.log").read_text().splitlines()
            if line.startswith("# attempt on Ray node ")]


def committed_step(run) -> int:
    from rimrl.commits import read_commit

    try:
        commit = read_commit(run)
    except Exception:  # mid-write on another node's schedule: look again
        return 0
    return commit.step if commit else 0


@pytest.mark.slow
def test_a_sweep_on_two_nodes_retries_a_trial_of_a_lost_node_from_its_checkpoint(tmp_path):
    """Two one-CPU nodes, two trials: one on each. Once the worker node's trial has a
    checkpoint, the node is killed (its raylet and workers, no goodbye); Ray retries the
    trial on the head, which resumes the run; both trials end whole (~2 min)."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from rimrl.learners.ppo import PPOLearner
    from rimrl.runs import RunSummary

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    head = cluster.head_node
    worker = cluster.add_node(num_cpus=1)
    driver = None
    try:
        path = sweep_file(tmp_path, grid={"seed": [0, 1]}, evaluate=None,
                          overrides={**TINY, "train.timesteps": 6400,
                                     "train.checkpoint_every": 64},
                          retries=2)
        driver = subprocess.Popen([sys.executable, "-m", "rimrl", "sweep", str(path),
                                   "--address", cluster.address],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        root = tmp_path / "sweeps" / "t"
        runs = [root / "seed=0", root / "seed=1"]
        deadline = time.monotonic() + 300
        on_worker = None
        while on_worker is None and time.monotonic() < deadline:
            time.sleep(0.5)
            for run in runs:
                if (run / "trial.log").is_file() and attempts(run) == [worker.node_id] \
                        and committed_step(run) > 0:
                    on_worker = run
        assert on_worker is not None, "no trial reached a checkpoint on the worker node"
        other = next(r for r in runs if r != on_worker)
        killed_at = committed_step(on_worker)
        cluster.remove_node(worker, allow_graceful=False)
        out, _ = driver.communicate(timeout=600)
        assert driver.returncode == 0, out
        # both nodes ran a trial; the lost one was retried on the head and resumed its run
        assert attempts(other) == [head.node_id]
        assert attempts(on_worker) == [worker.node_id, head.node_id]
        log = (on_worker / "trial.log").read_text()
        assert f"--resume {on_worker.resolve()}" in log and "resuming at" in log
        resumed_at = int(log.split("resuming at ")[1].split()[0])
        assert resumed_at >= killed_at > 0
        for run in runs:
            assert PPOLearner().finished(run)
            assert RunSummary.read(run).timesteps == 6400
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        cluster.shutdown()
