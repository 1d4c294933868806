"""Write any dataset out as an ``imagefolder`` (``root/<class>/<index>.<ext>``).

Why: one folder of files is what every other evaluator reads (CLIP_benchmark's ImageFolder, plain
torchvision), so benchmarks and the tensor-path tests compare pipelines on the very same files; optional
per-image sizes make the set look like a photo collection (mixed resolutions and aspect ratios).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from PIL import Image

from ..errors import check_choice
from ..io import atomic_write
from .base import ZSDataset

FORMATS = {"jpg": "JPEG", "png": "PNG"}


def export_imagefolder(dataset: ZSDataset, root: str | os.PathLike, image_format: str = "jpg",
                       sizes: Optional[Sequence[Tuple[int, int]]] = None, quality: int = 95) -> List[str]:
    """Write every image of ``dataset`` to ``root/<class name, _ for spaces>/<index>.<image_format>`` and
    return the class folder names in label order. ``build_dataset("imagefolder", root=root)`` reads the
    folder back with the same class names (its labels follow the sorted folder names).

    ``sizes``: ``(width, height)`` pairs used in turn (image ``i`` gets ``sizes[i % len(sizes)]``, bicubic);
    ``None`` keeps each image's size. Files are written atomically, so a crash leaves no truncated image.
    """
    check_choice("image_format", image_format, tuple(FORMATS))
    root = Path(root)
    folders = [name.replace(" ", "_").replace("/", "_") for name in dataset.classes]
    if len(set(folders)) != len(folders):
        raise ValueError(f"{dataset.name}: class names collide as folder names: {sorted(folders)}")
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
    options = {"quality": quality} if image_format == "jpg" else {}
    for i in range(len(dataset)):
        image: Image.Image = dataset._image(i)
        if sizes:
            image = image.resize(tuple(sizes[i % len(sizes)]), Image.BICUBIC)
        label = int(dataset.targets[i])
        atomic_write(root / folders[label] / f"{i:06d}.{image_format}",
                     lambda p: image.save(p, format=FORMATS[image_format], **options))
    return folders
