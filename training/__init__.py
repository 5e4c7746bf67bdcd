"""Offline training of the safety head: the corpus (data files and their generator) and the trainer.

Outside the runtime on purpose: nothing in ``ecoalign/``, ``api/`` or ``workers/`` imports this package and the
wheel does not ship it; the runtime only loads the trained head (``ecoalign/evaluators/data/safety_head_v3.npz``).
"""
