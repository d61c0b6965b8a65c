"""The copying task of thesis section 8.4.1 (RIMs paper, Table 1) as a learner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rimrl.commits import committed_checkpoint
from rimrl.config import save_config
from rimrl.errors import UserError
from rimrl.learners.base import Flag, Learner, prepare_run, saved_config
from rimrl.learners.requests import EvalRequest, TrainRequest, option
from rimrl.progress import shows_bar
from rimrl.runs import CONFIG_FILE, EVALUATION_FILE, MODEL_PT, load_checkpoint, write_result


@dataclass(frozen=True)
class CopyEvalOptions:
    """``rimrl evaluate`` options of copying-task runs."""

    gaps: Optional[tuple[int, ...]] = option(None, "gaps to test (default: the config's "
                                             "task.eval_gaps)", kind=int, many=True,
                                             metavar="GAP")

    def __post_init__(self):
        if self.gaps is not None and min(self.gaps) < 1:
            raise UserError(f"--gaps must be positive, got {list(self.gaps)}")


class CopyLearner(Learner):
    """``rimrl train copy``: a recurrent core (lstm, gru, rims) learns to copy symbols
    across a dormant gap (:mod:`rimrl.tasks.copying`)."""

    name = "copy"
    summary = "the copying task of thesis section 8.4.1"
    defaults_file = "copy.yaml"
    budget_keys = ("train.updates", "train.timesteps")
    final_file = MODEL_PT
    set_example = "train.learning_rate=3e-4"
    eval_options = CopyEvalOptions
    flags = (
        Flag("core", "core.name", "recurrent core: lstm, gru or rims"),
        Flag("updates", "train.updates", "training budget in updates", int),
        Flag("timesteps", "train.timesteps", "training budget in time steps (sequence "
             "steps over the batch)", int),
    )

    def config_class(self) -> type:
        from rimrl.tasks.copying import CopyConfig  # heavy
        return CopyConfig

    def run_name(self, config) -> str:
        return f"copy-{config.core.name}-s{config.seed}"

    def train(self, request: TrainRequest) -> int:
        from rimrl.sb3.training import StopOnInterrupt  # heavy
        from rimrl.tasks.copying import CHECKPOINT_KEYS, train_copy  # heavy

        config, run_dir, commit, lock = prepare_run(request, self)
        with lock:  # this process is the run's only writer until it ends
            ckpt = commit.path(run_dir, commit.checkpoint)
            state = (load_checkpoint(ckpt, required=CHECKPOINT_KEYS) if ckpt is not None
                     else None)
            if request.resume is not None:
                save_config(config, run_dir / CONFIG_FILE)  # the budget may have grown
            print(f"run directory: {run_dir}")
            with StopOnInterrupt() as interrupt:
                summary = train_copy(config, run_dir, state, progress=shows_bar(request),
                                     stop_requested=lambda: interrupt.requested)
            if "interrupted_at" in summary:
                print(f"interrupted at update {summary['interrupted_at']}; checkpoint saved\n"
                      f"continue with: rimrl train {self.name} --resume {run_dir}", flush=True)
                return interrupt.exit_code
            print_summary(summary)
            return 0

    def evaluate(self, request: EvalRequest) -> int:
        import torch  # heavy

        from rimrl.tasks.copying import CopyModel, evaluate_copy  # heavy

        run_dir = request.run_dir
        config = saved_config(self.config_class(), run_dir)
        model = CopyModel(config.task, config.core)
        final = run_dir / MODEL_PT
        if final.is_file():
            state = load_checkpoint(final)
        else:
            ckpt = committed_checkpoint(run_dir)
            if ckpt is None:
                raise UserError(f"{run_dir} has no {MODEL_PT} and no checkpoint to evaluate")
            state = load_checkpoint(ckpt, required=("model",))["model"]
        try:
            model.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError) as exc:
            raise UserError(f"the weights in {run_dir} do not fit its {CONFIG_FILE} "
                            f"({str(exc).splitlines()[0]})") from None
        gaps = request.options.gaps or config.task.eval_gaps
        results = evaluate_copy(model, config.task, gaps, config.train.eval_batch, config.seed,
                                torch.device("cpu"))
        summary = {"core": config.core.name, "updates": config.total_updates(),
                   "gaps": results}
        print_summary(summary)
        write_result(run_dir / EVALUATION_FILE, summary)
        return 0


def print_summary(summary: dict) -> None:
    print(f"copying task, core {summary['core']}, {summary['updates']} updates")
    print(f"{'gap':>6} {'CE (nats/step)':>15} {'accuracy':>9}")
    for gap, m in summary["gaps"].items():
        print(f"{gap:>6} {m['ce']:>15.4f} {m['accuracy']:>9.3f}")


LEARNER = CopyLearner()
