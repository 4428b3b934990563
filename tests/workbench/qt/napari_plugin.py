"""The plugin's manifest made known to napari in tests, whether or not this checkout is the one installed
(an editable install made before the manifest existed has no ``napari.manifest`` entry point)."""

from __future__ import annotations

from pathlib import Path

import pytest
from npe2 import PluginManager, PluginManifest

PLUGIN = "spheroseg-workbench"
MANIFEST = Path(__file__).resolve().parents[3] / "workbench" / "napari.yaml"


@pytest.fixture(scope="session")
def spheroseg_plugin() -> str:
    """The plugin's name, registered for the session (napari keeps a plugin's commands once registered, so
    it is never taken back)."""
    manager = PluginManager.instance()
    manager.discover()
    if PLUGIN not in {manifest.name for manifest in manager.iter_manifests()}:
        manager.register(PluginManifest.from_file(MANIFEST))
    return PLUGIN
