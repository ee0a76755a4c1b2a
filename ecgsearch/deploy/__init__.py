"""A trained trial after the search: its model rebuilt from the run folder, applied to new records
(``predict``), or written as a deployable ONNX / OpenVINO model (``export``).

``card`` is the model card an export writes beside the model; ``runtime`` runs the PyTorch model or an
exported file on records (``predict`` serves a run or an export folder). May import latency (backends
check an export's numerics), analysis (the card's bootstrap intervals), train, the run folder, space,
data and the contracts. Read ``model.py`` first.
"""
