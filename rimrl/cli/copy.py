"""``rimrl train copy`` and the evaluation of copying runs."""

from __future__ import annotations

from pathlib import Path

from rimrl.cli.common import add_common_train_args, prepare_run, shows_bar
from rimrl.errors import UserError

FLAGS = {"core": "core.name", "seed": "seed", "updates": "train.updates",
         "timesteps": "train.timesteps", "runs_dir": "runs_dir", "device": "device"}


def register(tasks) -> None:
    p = tasks.add_parser("copy", help="the copying task of thesis section 8.4.1")
    p.add_argument("--core", help="recurrent core: lstm, gru or rims")
    add_common_train_args(p, ["updates", "timesteps"], set_example="train.lr=3e-4")
    p.set_defaults(handler=train)


def train(args) -> int:
    from rimrl.config import save_config
    from rimrl.runs import load_checkpoint
    from rimrl.tasks.copying import CHECKPOINT_KEYS, CopyConfig, train_copy

    config, run_dir, ckpt, lock = prepare_run(
        args, CopyConfig, "copy.yaml", "copy",
        name=lambda c: f"copy-{c.core.name}-s{c.seed}", flags=FLAGS,
        resume_flags=("updates", "timesteps"),
    )
    with lock:  # this process is the run's only writer until it ends
        state = (load_checkpoint(ckpt, required=CHECKPOINT_KEYS) if ckpt is not None
                 else None)
        if args.resume is not None:
            save_config(config, run_dir / "config.yaml")  # the budget may have grown
        print(f"run directory: {run_dir}")
        summary = train_copy(config, run_dir, state, progress=shows_bar(args))
        print_summary(summary)
        return 0


def print_summary(summary: dict) -> None:
    print(f"copying task, core {summary['core']}, {summary['updates']} updates")
    print(f"{'gap':>6} {'CE (nats/step)':>15} {'accuracy':>9}")
    for gap, m in summary["gaps"].items():
        print(f"{gap:>6} {m['ce']:>15.4f} {m['accuracy']:>9.3f}")


def evaluate(args, run_dir: Path) -> int:
    import torch

    from rimrl.config import load_config
    from rimrl.runs import latest_checkpoint, load_checkpoint, write_json
    from rimrl.tasks.copying import CopyConfig, CopyModel, evaluate_copy

    config = load_config(CopyConfig, [run_dir / "config.yaml"])
    model = CopyModel(config.task, config.core)
    final = run_dir / "model.pt"
    if final.is_file():
        state = load_checkpoint(final)
    else:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise UserError(f"{run_dir} has no model.pt and no checkpoint to evaluate")
        state = load_checkpoint(ckpt, required=("model",))["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise UserError(f"the weights in {run_dir} do not fit its config.yaml "
                        f"({str(exc).splitlines()[0]})") from None
    gaps = args.gaps or config.task.eval_gaps
    if min(gaps) < 1:
        raise UserError(f"--gaps must be positive, got {gaps}")
    results = evaluate_copy(model, config.task, gaps, config.train.eval_batch, config.seed,
                            torch.device("cpu"))
    summary = {"core": config.core.name, "updates": config.total_updates(), "gaps": results}
    write_json(run_dir / "evaluation.json", summary)
    print_summary(summary)
    return 0
