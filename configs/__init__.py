"""YAML defaults of every rimrl command, installed as package data (``rimrl.configs``)."""
