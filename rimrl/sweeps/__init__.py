"""Sweeps: a grid of training runs (``rimrl sweep``).

- :mod:`rimrl.sweeps.plan`: the sweep file, its trials (planned lazily, named by their grid
  values), what each trial still needs, and validation before anything runs;
- :mod:`rimrl.sweeps.ray_runner`: running the trials on Ray Tune (start or join Ray, clean
  up after a killed driver, one log per trial).

Modules import each other directly, never through this package's ``__init__``.
"""
