"""The desktop's windows: thin Qt views over the Qt-free models of ``workbench`` (one asyncio loop on Qt's,
through qasync). Views are ``qt_<thing>.py`` holding ``Qt<Thing>``; signals are ``sig_<past_tense>``."""

from workbench.qt.refcounts import keep_singletons_alive

keep_singletons_alive()  # before any Qt call: see refcounts.py (PySide6 6.12 on Python 3.11)
