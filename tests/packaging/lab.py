"""packaging/lab/local.py imported as a module (it is a script in a folder that is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

LOCAL = Path(__file__).resolve().parents[2] / "packaging" / "lab" / "local.py"


def local_module() -> ModuleType:
    name = "spheroseg_lab_local"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, LOCAL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
