"""Errors of the ResUNet model package; all are :class:`~cluster.exceptions.SpherosegError` subclasses::

SegmentationError                 (cluster.exceptions)
└── ModelError                    the model cannot be used as asked
    ├── WeightsError              a weights file or its model card is missing, corrupt or mismatched
    ├── TrainingDataError         training or fine-tuning data cannot be read or is unusable
    └── DeviceError               the requested device or precision is not available here
"""

from __future__ import annotations

from cluster.exceptions import SegmentationError

__all__ = ["DeviceError", "ModelError", "TrainingDataError", "WeightsError"]


class ModelError(SegmentationError):
    """The ResUNet cannot be used as asked."""


class WeightsError(ModelError):
    """A weights file or its model card is missing, corrupt, altered or does not fit the network."""


class TrainingDataError(ModelError):
    """Training or fine-tuning data cannot be read, or holds nothing usable."""


class DeviceError(ModelError):
    """The requested device or precision is not available on this machine."""
