"""SpheroSeg in a plain napari session (the npe2 manifest ``workbench/napari.yaml``), without Qt here.

- :mod:`~workbench.plugin.shapes`: segmentations as Shapes layer data and back, holes included; the one
  place coordinates cross the napari boundary.
- :mod:`~workbench.plugin.readers` and :mod:`~workbench.plugin.writers`: ``*.coco.json`` and QuPath
  ``*.geojson`` through the core's own import and export.
- :mod:`~workbench.plugin.samples`: the bundled sample images as napari sample data.
- :mod:`~workbench.plugin.segmenting`: one layer's pixels segmented here or on a Dask cluster.

The dock widget that uses them is :class:`workbench.qt.qt_napari_widget.QtNapariWidget`.
"""
