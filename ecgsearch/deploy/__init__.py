"""A trained trial after the search: its model rebuilt from the run folder, applied to new records
(``predict``), or written as a deployable ONNX / OpenVINO model (``export``).

May import latency (backends check an export's numerics), train, the run folder, space, data and the
contracts. Read ``model.py`` first.
"""
