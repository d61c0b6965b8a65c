"""Networks only: no environment or algorithm code lives here.

``RIMCell`` and ``RIMs`` are imported on first use, so the torch-free modules of this package
(:mod:`rimrl.nn.selection`) stay light for the report.
"""

__all__ = ["RIMCell", "RIMs"]


def __getattr__(name: str):
    if name in __all__:
        from rimrl.nn import rims
        return getattr(rims, name)
    raise AttributeError(f"module 'rimrl.nn' has no attribute {name!r}")
