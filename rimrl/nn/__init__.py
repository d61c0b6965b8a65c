"""Networks only: no environment or algorithm code lives here."""

from rimrl.nn.rims import RIMCell, RIMs

__all__ = ["RIMCell", "RIMs"]
