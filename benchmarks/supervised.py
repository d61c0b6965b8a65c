"""The thesis' claims for Mixup, Manifold Mixup and ICT, at CPU scale, over several seeds.

1. ICT on two moons with 3 labels per class (thesis ch. 6, Fig. 1) separates the moons
   (target test accuracy >= 0.95) where supervised-only training on the 6 labels does not.
2. Manifold Mixup flattens class-conditional representations (thesis 4.3.2): the sum of the
   non-leading singular values of each class's hidden representations (first hidden layer,
   mixing at that one fixed layer) is lower than with ERM, input mixup, dropout or weight
   decay. MLP (3 x 100) on scikit-learn's digits instead of MNIST.
3. Manifold Mixup's test NLL on digits (the default CNN) is no worse than ERM's.
Every run goes through ``rimrl.tasks.supervised.train_supervised`` (the code behind
``rimrl train supervised``). Usage: python benchmarks/supervised.py [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

from rimrl.learners.supervised import LEARNER
from rimrl.tasks.supervised import hidden_features, singular_value_spread, train_supervised

ICT_SETTINGS = ["method.alpha=1.0", "train.updates=5000"]
SPREAD_VARIANTS = {
    "ERM": ["method.name=erm"],
    "weight decay": ["method.name=erm", "train.weight_decay=0.001"],
    "dropout": ["method.name=erm", "model.dropout=0.3"],
    "input mixup": ["method.name=mixup", "method.alpha=1.0"],
    "manifold mixup": ["method.name=manifold-mixup", "method.alpha=2.0",
                       "method.layers=[hidden1]"],
}


def run(dataset: str, overrides: list[str], seed: int) -> dict:
    cfg = LEARNER.load_config([f"data.name={dataset}", f"seed={seed}"] + overrides)
    return train_supervised(cfg)


def mean_sd(values) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {sd:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    start = time.perf_counter()

    print("1. two moons, 3 labels per class: test accuracy (mean +- sd over seeds)")
    acc = {}
    for label, method in [("supervised only (ERM)", "erm"), ("ICT", "ict")]:
        acc[label] = [run("two-moons", [f"method.name={method}", "data.labels_per_class=3"]
                          + (ICT_SETTINGS if method == "ict" else []), s)["result"]["test"]
                      ["accuracy"] for s in args.seeds]
        print(f"   {label:<24} {mean_sd(acc[label])}   per seed {[round(a, 3) for a in acc[label]]}",
              flush=True)

    print("2. digits, MLP 3x100, first hidden layer: per-class singular values (test set)")
    spread = {}
    for label, overrides in SPREAD_VARIANTS.items():
        rest, top = [], []
        for s in args.seeds:
            out = run("digits", ["model.kind=mlp", "model.hidden=[100,100,100]"] + overrides, s)
            data = out["data"]
            feats = hidden_features(out["model"], "hidden1", data.x_test)
            rest.append(singular_value_spread(feats, data.y_test))
            top.append(singular_value_spread(feats, data.y_test, relative=True))
        spread[label] = rest
        print(f"   {label:<16} sum of non-leading SVs {mean_sd(rest)}; relative to the "
              f"leading SV {mean_sd(top)}", flush=True)

    print("3. digits, CNN: test NLL and accuracy")
    nll = {}
    for label, method in [("ERM", "erm"), ("manifold mixup", "manifold-mixup")]:
        results = [run("digits", [f"method.name={method}"], s)["result"]["test"]
                   for s in args.seeds]
        nll[label] = [r["nll"] for r in results]
        print(f"   {label:<16} NLL {mean_sd(nll[label])}, accuracy "
              f"{mean_sd([r['accuracy'] for r in results])}", flush=True)

    print(f"seeds {args.seeds}; {(time.perf_counter() - start) / 60:.1f} min")
    ict = statistics.mean(acc["ICT"])
    erm = statistics.mean(acc["supervised only (ERM)"])
    lowest = min(spread, key=lambda k: statistics.mean(spread[k]))
    print(f"claims: ICT accuracy {ict:.3f} (target >= 0.95) vs ERM {erm:.3f}; lowest "
          f"singular-value spread: {lowest}; manifold mixup NLL / ERM NLL = "
          f"{statistics.mean(nll['manifold mixup']) / statistics.mean(nll['ERM']):.2f} "
          "(target <= 1.00)")


if __name__ == "__main__":
    main()
