"""The spheroid segmentation model: a compact ResUNet in torch, its weights, training and inference.

Module map (torch is imported only by the modules marked *):

- :mod:`.network` * the ResUNet (residual blocks, GroupNorm, optional attention gates on skips);
- :mod:`.targets` working resolution and training targets (foreground fraction, instance cores);
- :mod:`.decoding` probabilities to instance labels (core-seeded watershed, rings rejoined, bands such as
  well walls dropped, bilinear outline refinement);
- :mod:`.refinement` small spheroids outlined again from the network's second look at crops around them;
- :mod:`.devices` * device (CUDA, MPS, CPU), autocast precision, channels_last, threads;
- :mod:`.inference` * :class:`~.inference.Predictor`: resize, pad, batch, tile, run, resize back;
- :mod:`.segmenter` :class:`~.segmenter.ResUNetSegmenter`, the ``"resunet"`` method (loads torch lazily);
- :mod:`.card` model cards and checksums; :mod:`.weights` * safetensors save and load;
- :mod:`.data` training samples (synthetic, folders of image/mask pairs, COCO/GeoJSON exports);
- :mod:`.training` * :func:`~.training.train` and :func:`~.training.fine_tune`.

Errors are in :mod:`.exceptions`.
"""

from __future__ import annotations
