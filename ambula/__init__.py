"""Ambula: patient management for outpatient practices."""

__version__ = "0.1.0"
