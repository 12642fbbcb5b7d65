"""The D2F networks (pure ``nn.Module``s), the pipeline module and its checkpoints."""

from d2f.models.blocks import FeatureFusionBlock, ResidualConvUnit
from d2f.models.checkpoint import checkpoint_filter_fn, load_official, load_pretrained
from d2f.models.config import D2FConfig
from d2f.models.d2f import D2F, D2FOutput
from d2f.models.defocus_net import DefocusNet
from d2f.models.efficientnet_lite import EfficientNetLite0, load_imagenet_weights
from d2f.models.fusion_net import FusionNet, initial_focus_mask, luminance
from d2f.models.presets import CONFIGS, DEFAULT_MODEL, bundled_models, load, load_bundled
from d2f.models.radiance_net import RadianceNet

__all__ = [
    "CONFIGS",
    "D2F",
    "DEFAULT_MODEL",
    "D2FConfig",
    "D2FOutput",
    "DefocusNet",
    "EfficientNetLite0",
    "FeatureFusionBlock",
    "FusionNet",
    "RadianceNet",
    "ResidualConvUnit",
    "bundled_models",
    "checkpoint_filter_fn",
    "initial_focus_mask",
    "load",
    "load_bundled",
    "load_imagenet_weights",
    "load_official",
    "load_pretrained",
    "luminance",
]
