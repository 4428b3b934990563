"""The desktop's windows: thin Qt views over the Qt-free models of ``workbench`` (one asyncio loop on Qt's,
through qasync). Views are ``qt_<thing>.py`` holding ``Qt<Thing>``; signals are ``sig_<past_tense>``."""
