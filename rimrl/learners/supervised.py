"""ERM, mixup, Manifold Mixup and ICT on small data sets (thesis ch. 4 and 6) as a learner."""

from __future__ import annotations

import json
from typing import Optional

from rimrl.errors import UserError
from rimrl.learners.base import Flag, Learner, prepare_run
from rimrl.learners.requests import TrainRequest
from rimrl.runs import DECISION_BOUNDARY, MODEL_PT, RESULTS_FILE, save_torch, write_json
from rimrl.tasks.methods import METHODS


class SupervisedLearner(Learner):
    """``rimrl train supervised``: :func:`rimrl.tasks.supervised.train_supervised`; the
    data set picks its section of ``supervised.yaml``."""

    name = "supervised"
    summary = "ERM, mixup, manifold-mixup or ICT (thesis ch. 4, 6)"
    defaults_file = "supervised.yaml"
    final_file = MODEL_PT
    set_example = "train.learning_rate=3e-4"
    flags = (
        Flag("method", "method.name", ", ".join(METHODS[:-1]) + " or " + METHODS[-1]),
        Flag("dataset", "data.name", "two-moons, spirals or digits"),
        Flag("labels_per_class", "data.labels_per_class",
             "keep only this many labels per class", int),
        Flag("alpha", "method.alpha", "mixing coefficient lam ~ Beta(alpha, alpha)", float),
        Flag("updates", "train.updates", "training budget in updates", int),
    )

    def config_class(self) -> type:
        from rimrl.tasks.supervised import SupervisedConfig  # heavy
        return SupervisedConfig

    def section(self, requested: dict) -> Optional[str]:
        name = requested.get("data", {}).get("name")
        return str(name) if name is not None else None

    def run_name(self, config) -> str:
        return f"sup-{config.data.name}-{config.method.name}-s{config.seed}"

    def train(self, request: TrainRequest) -> int:
        from rimrl.tasks.supervised import plot_decision_boundary, train_supervised  # heavy

        if request.resume is not None:
            raise UserError("supervised runs take seconds to minutes and do not resume; "
                            "start a new run instead")
        cfg, run_dir, _, lock = prepare_run(request, self)
        with lock:  # this process is the run's only writer until it ends
            print(f"run directory: {run_dir}")
            out = train_supervised(cfg, run_dir)
            result = out["result"]
            if out["data"].x_train.shape[1] == 2:
                path = run_dir / DECISION_BOUNDARY
                plot_decision_boundary(out["model"], out["data"], path,
                                       f"{cfg.method.name} on {cfg.data.name} "
                                       f"({result['labeled']} labels)")
                result["decision_boundary"] = str(path)
            save_torch(run_dir / MODEL_PT, out["model"].state_dict())
            write_json(run_dir / RESULTS_FILE, result)
            test = result["test"]
            print(f"{cfg.method.name} on {cfg.data.name}, {result['labeled']} labelled "
                  f"examples, {cfg.train.updates} updates: test accuracy "
                  f"{test['accuracy']:.3f}, NLL {test['nll']:.3f}, ECE {test['ece']:.3f}")
            if "test_teacher" in result:
                t = result["test_teacher"]
                print(f"mean teacher: accuracy {t['accuracy']:.3f}, NLL {t['nll']:.3f}, "
                      f"ECE {t['ece']:.3f}")
            print(json.dumps({"results": str(run_dir / RESULTS_FILE)}))
            return 0


LEARNER = SupervisedLearner()
