"""Outputs drawn from a profile: flame graphs and differential graphs, palettes, speedscope documents, reports and tables.

A new output format is a module here that takes a
:class:`tracebridge.profile.model.Profile`.  May import every stage below it
(readers, profile, image, support); never the CLI or ``capture``.
"""
