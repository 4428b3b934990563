"""The server runs on a machine without torch: a lab server holds no model, its workers do."""

from __future__ import annotations

import subprocess
import sys

# torch is made unimportable (as on a machine without it) rather than only checked for afterwards, so a
# module that imports it under try/except still shows up. Alembic's migration scripts run only inside
# alembic's context, so they are left to the migration tests.
_IMPORT_EVERY_SERVER_MODULE = """
import importlib, pkgutil, sys
sys.modules['torch'] = None
import server
for module in pkgutil.walk_packages(server.__path__, 'server.'):
    if '.migrations' not in module.name:
        importlib.import_module(module.name)
from server.app import create_app
from server.cli import server as server_commands
loaded = sorted(name for name in sys.modules if name.split('.')[0] in {'torch', 'torchvision', 'safetensors'})
assert not [name for name in loaded if sys.modules[name] is not None], loaded
"""


def test_every_server_module_imports_without_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERY_SERVER_MODULE], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
