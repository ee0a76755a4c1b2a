"""ECG data before any model sees it: the dataset contract, preprocessing, the cache, augmentation.

``source`` is the contract a dataset plugin fulfils (``EcgSource`` -> ``EcgArrays``); ``preprocess``,
``spectral`` and ``signal_writer`` are what readers share; ``cache`` builds each (dataset, parameters)
entry once and memory-maps it; ``prepare`` turns a space file's ``data`` section into an entry with
user-facing errors; ``features`` keeps an estimator's per-lead features in the entry; ``augment`` is the train-time augmentation of a batch (``augment_params``: its parameters, without torch); ``inspect`` summarises an
entry. May import the contracts only. Read ``source.py`` first, then ``cache.py``.
"""

from ecgsearch.data.source import SPLITS, EcgArrays, EcgSource, Progress

__all__ = ["EcgArrays", "EcgSource", "Progress", "SPLITS"]
