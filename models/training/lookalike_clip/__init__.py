"""Lookalike's tiny CLIP: open_clip-compatible towers, word-level tokenizer, catalog data, losses and ONNX export.

Scripts next to this package (``train_clip.py``, ``train_fare.py``, ``export.py``, ``evaluate.py``, ``fixtures.py``,
``write_card.py``, ``export_openclip.py``) are run from ``models/training``; ``train_all.sh`` chains them.
"""
