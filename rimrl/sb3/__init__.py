"""What every Stable-Baselines3 learner shares (as SB3 keeps ``common/`` apart from its
algorithms): the env, train and eval config sections, making envs and splits, the checks
before a run, training with commits, evaluation during and after training, video, and the
callbacks and log writers.

- :mod:`rimrl.sb3.configs`: ``EnvConfig``, ``TrainConfig``, ``EvalConfig``;
- :mod:`rimrl.sb3.environments`: envs of every family, distractor splits;
- :mod:`rimrl.sb3.checks`: what a new run is checked for before anything is written;
- :mod:`rimrl.sb3.training`: ``learn_and_save`` (logging, checkpoints, Ctrl-C, divergence);
- :mod:`rimrl.sb3.iterations`: an iteration committed as one transaction;
- :mod:`rimrl.sb3.periodic_evaluation`: evaluations during training;
- :mod:`rimrl.sb3.evaluation`: ``rimrl evaluate`` and ``play`` (one rollout player);
- :mod:`rimrl.sb3.video`: frames and GIFs;
- :mod:`rimrl.sb3.callbacks`, :mod:`rimrl.sb3.logs`: SB3 callbacks and rimrl's log writers.

This package never imports :mod:`rimrl.learners` (tests/test_layers.py): learners use it.
"""
