"""Challenge 2021 records written as the published files are (MATLAB v4 ``val``, WFDB headers with ``#Dx``):
one record (``write_record``), or a small training tree over three sources whose labels cover the four
label groups of the ResNet depth/channels/kernel study (``search_tree``), for runs that read per label
group and per source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ecgsearch.data.preprocess import STANDARD_LEADS

# Two scored classes of each label group (physionet2021.LABEL_GROUPS): AF, SB; IAVB, RBBB; LAD, RAD; LPR, LQT
GROUP_CODES = ("164889003", "426177001", "270492004", "59118001", "39732003", "47665007", "164947007",
               "111975006")
SOURCE_PREFIXES = ("A", "E", "HR")  # CPSC, Georgia, PTB-XL


def write_record(folder: Path, name: str, raw: np.ndarray, fs: float, layout: str, dx: str,
                 leads=STANDARD_LEADS, age: str = "61", sex: str = "Female") -> Path:
    """One Challenge record: MATLAB v4 int16 ``val`` (as the real files) and a header in ``layout``."""
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / f"{name}.mat", {"val": raw.astype(np.int16)}, format="4")
    n_sig, n = raw.shape
    if layout == "original":
        lines = [f"{name} {n_sig} {fs:g} {n} 05-Feb-2020 11:39:16"]
        lines += [f"{name}.mat 16+24 1000/mV 16 0 {raw[i, 0]} 0 0 {lead}" for i, lead in enumerate(leads)]
        lines += [f"#Age: {age}", f"#Sex: {sex}", f"#Dx: {dx}", "#Rx: Unknown"]
    else:
        first = f"{name}.mat" if layout == "matname" else name
        lines = [f"{first} {n_sig} {fs:g} {n}"]
        lines += [f"{name}.mat 16x1+24 1000.0(0)/mV 16 0 {raw[i, 0]} 0 0 {lead}"
                  for i, lead in enumerate(leads)]
        lines += [f"# Age: {age}", f"# Sex: {sex}", f"# Dx: {dx}", "# Rx: Unknown"]
    path = folder / f"{name}.hea"
    path.write_text("\n".join(lines) + "\n")
    return path



def search_tree(root: Path, per_source: int = 40, rate: float = 100.0, seconds: float = 4.0, seed: int = 0
                ) -> Path:
    """``per_source`` records of each of three sources in ``root`` (two levels down, as published), each with
    one or two of ``GROUP_CODES``; every class adds its own rhythm to the leads, so the labels can be learnt."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(rate * seconds)) / rate
    for prefix in SOURCE_PREFIXES:
        for i in range(per_source):
            codes = rng.choice(len(GROUP_CODES), size=int(rng.integers(1, 3)), replace=False)
            signal = 400 * np.sin(2 * np.pi * 1.2 * t) + rng.normal(0, 60, (12, len(t)))
            for k in codes:
                signal += 250 * np.sin(2 * np.pi * (2.0 + 1.5 * k) * t + rng.uniform(0, 2 * np.pi))
            write_record(root / prefix / f"g{i % 2}", f"{prefix}{i:04d}", np.round(signal), rate, "wfdb",
                         ",".join(GROUP_CODES[k] for k in sorted(codes)))
    return root
