"""The thesis' claims for ICT, Mixup and Manifold Mixup, at CPU scale, over several seeds.

1. ICT on two moons with 3 labels per class (thesis ch. 6, Fig. 1) against supervised-only
   training on the 6 labels and a mean teacher (the same teacher and consistency weight,
   Gaussian input noise instead of interpolation). ICT as the thesis and its official code
   run it: EMA warm-up and mixup on the labelled batch (the config defaults); the earlier
   setting (neither) as an ablation. The thesis' figure is qualitative (no accuracy).
2. Manifold Mixup "flattens" class-conditional representations (thesis 4.3.2): the thesis'
   raw measure (sum of the non-leading singular values per class at the first hidden layer,
   mixing at that one fixed layer) next to scale-free ones (relative to the leading value,
   values for 90% of the energy, with and without centring), for ERM, weight decay, dropout,
   input mixup and Manifold Mixup. MLP (3 x 100) on scikit-learn's digits instead of MNIST.
3. Manifold Mixup's test NLL on digits (the default CNN) against ERM's.
Every run goes through ``rimrl.tasks.supervised.train_supervised`` (the code behind
``rimrl train supervised``). Usage: python benchmarks/supervised.py [--seeds 0 1 2 3 4]
[--parts 1 2 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from rimrl.learners.supervised import LEARNER
from rimrl.tasks.supervised import (SPECTRUM_MEASURES, hidden_features, spectrum_measures,
                                    train_supervised)

SEMI = ["data.labels_per_class=3", "train.updates=5000"]
SEMI_VARIANTS = {
    "supervised only (ERM)": ["method.name=erm"],
    "mean teacher": ["method.name=mean-teacher"],
    "ICT (defaults: warm-up, labelled mixup)": ["method.name=ict"],
    "ICT without either (earlier rimrl)": ["method.name=ict", "method.ema_warmup=false",
                                           "method.supervised_mixup=false"],
}
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
    if len(values) == 1:
        return f"{values[0]:.3f} (n=1)"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    start = time.perf_counter()

    if 1 in args.parts:
        print("1. two moons, 3 labels per class, 5000 updates: test accuracy (mean ± sd over "
              "seeds)")
        for label, overrides in SEMI_VARIANTS.items():
            results = [run("two-moons", SEMI + overrides, s)["result"] for s in args.seeds]
            acc = [r["test"]["accuracy"] for r in results]
            line = f"   {label:<42} {mean_sd(acc)}   per seed {[round(a, 3) for a in acc]}"
            if "test_teacher" in results[0]:
                line += (f"; its teacher "
                         f"{mean_sd([r['test_teacher']['accuracy'] for r in results])}")
            print(line, flush=True)

    if 2 in args.parts:
        print("2. digits, MLP 3x100, first hidden layer, test set: per-class singular values "
              "(mean ± sd over seeds; lower = flatter)")
        print(f"   {'variant':<16} " + " ".join(f"{m:>18}" for m in SPECTRUM_MEASURES))
        for label, overrides in SPREAD_VARIANTS.items():
            measures = {m: [] for m in SPECTRUM_MEASURES}
            for s in args.seeds:
                out = run("digits", ["model.kind=mlp", "model.hidden=[100,100,100]"]
                          + overrides, s)
                data = out["data"]
                feats = hidden_features(out["model"], "hidden1", data.x_test)
                for m, v in spectrum_measures(feats, data.y_test).items():
                    measures[m].append(v)
            print(f"   {label:<16} " + " ".join(f"{mean_sd(measures[m]):>18}"
                                                for m in SPECTRUM_MEASURES), flush=True)

    if 3 in args.parts:
        print("3. digits, CNN: test NLL and accuracy")
        nll = {}
        for label, method in [("ERM", "erm"), ("manifold mixup", "manifold-mixup")]:
            results = [run("digits", [f"method.name={method}"], s)["result"]["test"]
                       for s in args.seeds]
            nll[label] = [r["nll"] for r in results]
            print(f"   {label:<16} NLL {mean_sd(nll[label])}, accuracy "
                  f"{mean_sd([r['accuracy'] for r in results])}", flush=True)
        print(f"   manifold mixup NLL / ERM NLL = "
              f"{statistics.mean(nll['manifold mixup']) / statistics.mean(nll['ERM']):.2f}")
    print(f"seeds {args.seeds}; {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
