"""Training: one contrastive loop with pluggable losses, and zslab's offline model zoo."""
from .contrastive import TrainConfig, train_contrastive
from .losses import LOSSES, build_loss
from .zoo import OFFLINE_TAG, list_offline_models, offline_model_dir, read_manifest

__all__ = ["TrainConfig", "train_contrastive", "LOSSES", "build_loss", "OFFLINE_TAG", "list_offline_models",
           "offline_model_dir", "read_manifest"]
