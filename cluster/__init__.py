"""The segmentation core: everything that runs on a Dask worker, and how workers are launched.

Image reading (:mod:`cluster.imaging`), segmenters behind one protocol (:mod:`cluster.segmenter`),
masks to polygons with holes (:mod:`cluster.polygons`), morphology metrics (:mod:`cluster.metrics`)
and exports (:mod:`cluster.exports`). This package imports neither ``server`` nor ``workbench``, and no Qt,
GraphQL or SQL.
"""
