"""Model configs small enough for fast tests, shared by several test folders."""

from d2f.models import D2FConfig

#: A d2f-lite-shaped model (EfficientNet-Lite0 encoder) with narrow heads and three blur levels.
TINY_LITE = D2FConfig(
    encoder="efficientnet_lite0",
    decoder_features=8,
    head_features=(8, 8),
    fusion_features=(4,),
    kernel_sizes=(3, 7, 11),
)
