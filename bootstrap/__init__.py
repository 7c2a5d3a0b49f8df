"""Yijian's first stage and base layer.

Everything importable from ``bootstrap`` runs on a bare Python 3.10+ with the
standard library only: stage 0 (``python -m bootstrap``) prepares the
launcher's environment on a machine that has nothing else, and the launcher
builds on the same modules (bundle layout, error tree, language choice).
Importing this package loads nothing beyond the standard library; a test
checks it in a fresh interpreter.
"""
