"""Running searches on a Ray cluster through its Jobs API: ``ecgsearch submit``, ``status``, ``stop``, ``logs``.

See docs/cluster.md. ``client`` finds the cluster and its token, ``submit`` builds the job (space file,
runtime environment, entrypoint), ``entry`` is what the job runs, ``cli`` holds the subcommands.
"""
