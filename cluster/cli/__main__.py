"""``python -m cluster.cli``: the ``spheroseg`` command, for callers that know the interpreter but not where
its scripts are (the desktop starting its own server, a bundled application)."""

from cluster.cli.main import main

main()
