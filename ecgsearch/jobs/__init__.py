"""Running searches on a Ray cluster through its Jobs API (the client side of ``ecgsearch submit``).

See docs/cluster.md. ``client`` finds the cluster and its token, ``submit`` builds the job (space file,
runtime environment, entrypoint); the subcommands are in ``ecgsearch.cli.jobs`` and the job's entrypoint in ``ecgsearch.cli.job_entry``.
May import the space language and the contracts; read ``submit.py`` first.
"""
