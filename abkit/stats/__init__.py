"""Estimators: pure functions of moments (no I/O, no printing, no plotting)."""
