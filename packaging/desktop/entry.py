"""The bundle's one program: ``SpheroSeg`` opens the workbench; ``SpheroSeg <command>`` is ``spheroseg``.

A frozen bundle has no Python to run ``python -m cluster.cli`` with, yet the workbench starts its offline
server that way (``sys.executable -m cluster.cli server serve --offline``), and the cluster its daemon
(``-m cluster.launch.daemon``). In the bundle ``sys.executable`` is this program, so it understands
``-m <module>`` as Python does, and the same code runs frozen or not. Dask's worker processes come back
here too, through multiprocessing's ``freeze_support``.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys


def main() -> None:
    multiprocessing.freeze_support()  # a Dask worker process: runs its work and exits here
    arguments = sys.argv[1:]
    if len(arguments) >= 2 and arguments[0] == "-m":
        module = arguments[1]
        sys.argv = [sys.argv[0], *arguments[2:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    from cluster.cli.main import main as spheroseg

    # double-clicked, or started from the menu: the window
    sys.argv = [sys.argv[0], *(arguments or ["workbench"])]
    spheroseg()


if __name__ == "__main__":
    main()
