"""Inversion and editing pipelines built from a generator and encoders."""
