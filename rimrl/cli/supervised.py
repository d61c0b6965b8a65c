"""``rimrl train supervised``: ERM, mixup, Manifold Mixup or ICT on a small data set."""

from __future__ import annotations

from rimrl.cli.common import add_common_train_args, prepare_run, requested_value

FLAGS = {"method": "method.name", "dataset": "data.name", "labels_per_class":
         "data.labels_per_class", "alpha": "method.alpha", "seed": "seed",
         "updates": "train.updates", "runs_dir": "runs_dir", "device": "device"}


def register(tasks) -> None:
    p = tasks.add_parser("supervised", help="ERM, mixup, manifold-mixup or ICT (thesis ch. 4, 6)")
    p.add_argument("--method", help="erm, mixup, manifold-mixup or ict")
    p.add_argument("--dataset", help="two-moons, spirals or digits")
    p.add_argument("--labels-per-class", type=int, help="keep only this many labels per class")
    p.add_argument("--alpha", type=float, help="mixing coefficient lam ~ Beta(alpha, alpha)")
    add_common_train_args(p, ["updates"], set_example="train.lr=3e-4")
    p.set_defaults(handler=train)


def train(args) -> int:
    import json

    import torch

    from rimrl.errors import UserError
    from rimrl.runs import write_json
    from rimrl.tasks.supervised import (SupervisedConfig, plot_decision_boundary,
                                        train_supervised)

    if args.resume is not None:
        raise UserError("supervised runs take seconds to minutes and do not resume; "
                        "start a new run instead")
    cfg, run_dir, _, lock = prepare_run(
        args, SupervisedConfig, "supervised.yaml", "supervised",
        name=lambda c: f"sup-{c.data.name}-{c.method.name}-s{c.seed}", flags=FLAGS,
        section=requested_value(args, args.dataset, "data.name", "supervised.yaml"))
    with lock:  # this process is the run's only writer until it ends
        print(f"run directory: {run_dir}")
        out = train_supervised(cfg, run_dir)
        result = out["result"]
        if out["data"].x_train.shape[1] == 2:
            path = run_dir / "decision_boundary.png"
            plot_decision_boundary(out["model"], out["data"], path,
                                   f"{cfg.method.name} on {cfg.data.name} "
                                   f"({result['labeled']} labels)")
            result["decision_boundary"] = str(path)
        torch.save(out["model"].state_dict(), run_dir / "model.pt")
        write_json(run_dir / "results.json", result)
        test = result["test"]
        print(f"{cfg.method.name} on {cfg.data.name}, {result['labeled']} labelled examples, "
              f"{cfg.train.updates} updates: test accuracy {test['accuracy']:.3f}, "
              f"NLL {test['nll']:.3f}, ECE {test['ece']:.3f}")
        if "test_teacher" in result:
            t = result["test_teacher"]
            print(f"mean teacher: accuracy {t['accuracy']:.3f}, NLL {t['nll']:.3f}, "
                  f"ECE {t['ece']:.3f}")
        print(json.dumps({"results": str(run_dir / "results.json")}))
        return 0
