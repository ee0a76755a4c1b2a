"""The entrypoint of a submitted job on the cluster: ``ecgsearch run`` on the space file the job carries.

``python -m ecgsearch.cli.job_entry --out OUT [--trials N] [--resume]`` writes the job's space file (from
``$ECGSEARCH_JOB_SPACE``) to a private temporary folder under its own name, then runs the search exactly
as ``ecgsearch run`` would; inside a Ray job, ``RAY_ADDRESS`` makes the search join the cluster.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from ecgsearch.cli.app import main
from ecgsearch.jobs.submit import SPACE_ENV, SPACE_NAME_ENV


def job_main(argv: Sequence[str] | None = None) -> int:
    """The entrypoint of a submitted job on the cluster: ``ecgsearch run`` on the space file it carries."""
    text = os.environ.get(SPACE_ENV)
    if text is None:
        print(f"error: ${SPACE_ENV} is not set: this entrypoint runs inside jobs made by `ecgsearch submit`.",
              file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="ecgsearch-job-"))
    try:
        path = folder / Path(os.environ.get(SPACE_NAME_ENV) or "space.yaml").name
        path.write_text(text, encoding="utf-8")
        args = list(sys.argv[1:] if argv is None else argv)
        return main(["run", str(path), *args])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(job_main())
