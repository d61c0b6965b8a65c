"""rimrl: modular recurrent cores (RIMs), modular encoders and interpolation regularizers."""

__version__ = "0.1.0"
