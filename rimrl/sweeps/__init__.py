"""Sweeps: a grid or a search of training runs (``rimrl sweep``).

- :mod:`rimrl.sweeps.plan`: the sweep file, its trials (planned lazily, named by their grid
  values), what each trial still needs, and validation before anything runs;
- :mod:`rimrl.sweeps.search`: the ``search:`` section (space, metric, sampler, scheduler),
  the scores a trial reports and the best trial's config file;
- :mod:`rimrl.sweeps.ray_runner`: running a grid's trials on Ray Tune (start or join Ray,
  clean up after a killed driver, one log per trial);
- :mod:`rimrl.sweeps.tuning`: running a search on Ray Tune (trials as child processes
  reporting their committed evaluations, early stopping, restoring a search).

Modules import each other directly, never through this package's ``__init__``.
"""
