"""Image features from a CNN trained on the seen classes only: the clean zero-shot control for pretrained features.

Classic ZSL benchmarks insist that the feature extractor never saw a test class (Xian et al.'s proposed splits
remove the unseen classes that ImageNet contains). The lab's ImageNet EfficientNet-Lite0 has seen ImageNet's
zebras, oxen and boots, so its features may carry knowledge of Animal-MNIST's or Fashion-MNIST's unseen classes.
:data:`SEEN_CNN` is the alternative: a small CNN trained from scratch on the problem's own training images (seen
classes only, grey 28×28 as stored), whose penultimate layer gives the features. It is cached under the
datasets' identities and the seed.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch
import torch.nn.functional as F

#: The ``features`` name that selects this extractor in :func:`zslab.methods.gzsl.build_problem`.
SEEN_CNN = "seen-class cnn"
FEATURE_DIM = 128
IMAGE_SIZE = 28
EPOCHS = 15
BATCH_SIZE = 64
#: Bump when the architecture or training changes: cached CNNs then miss.
SEEN_CNN_VERSION = 1


class SmallCNN(torch.nn.Module):
    """Two conv-pool blocks and a 128-unit layer (the features), then the seen-class head."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(64 * (IMAGE_SIZE // 4) ** 2, FEATURE_DIM), torch.nn.ReLU())
        self.head = torch.nn.Linear(FEATURE_DIM, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def grey_images(ds) -> torch.Tensor:
    """``[N, 1, 28, 28]`` floats in [0, 1] of a dataset's images (greyscale, resized to 28 when needed)."""
    from ..datasets.base import without_transform

    view = without_transform(ds)
    images = []
    for i in range(len(view)):
        image = view[i][0].convert("L")
        if image.size != (IMAGE_SIZE, IMAGE_SIZE):
            image = image.resize((IMAGE_SIZE, IMAGE_SIZE))
        images.append(np.asarray(image, dtype=np.float32) / 255.0)
    return torch.as_tensor(np.stack(images))[:, None] if images else torch.empty(0, 1, IMAGE_SIZE, IMAGE_SIZE)


def train_seen_cnn(images: torch.Tensor, labels: torch.Tensor, n_classes: int, seed: int,
                   epochs: int = EPOCHS) -> SmallCNN:
    """A :class:`SmallCNN` trained by cross-entropy on ``images`` (labels 0..n_classes-1; Adam, seeded)."""
    if len(images) == 0:
        raise ValueError("no training images for the seen-class CNN")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = SmallCNN(n_classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start:start + BATCH_SIZE]
            optimiser.zero_grad()
            F.cross_entropy(model(images[rows]), labels[rows]).backward()
            optimiser.step()
    return model.eval()


def seen_cnn_features(train_ds, test_ds, seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(train features, test features)``: a CNN trained on ``train_ds`` (its classes are the seen ones; its
    targets index them) encodes both datasets. Cached under both datasets' identities (their files and sample
    selections) and the seed, so a warm call decodes no image."""
    from ..cache import TensorCache

    def compute() -> Dict[str, torch.Tensor]:
        train_images, test_images = grey_images(train_ds), grey_images(test_ds)
        labels = torch.as_tensor(np.asarray(train_ds.targets), dtype=torch.long)
        model = train_seen_cnn(train_images, labels, len(train_ds.classes), seed)
        with torch.no_grad():
            return {"train": model.body(train_images), "test": model.body(test_images)}

    description = {"kind": "seen-class cnn features", "version": SEEN_CNN_VERSION, "seed": int(seed),
                   "epochs": EPOCHS, "classes": list(train_ds.classes), "train": train_ds.identity,
                   "test": test_ds.identity}
    out = TensorCache().get_or_compute(description, compute)
    return out["train"], out["test"]
