"""Pure tensor functions of the D2F renderer: no learned weights, differentiable throughout."""

from d2f.render import scene
from d2f.render.kernels import (
    KERNEL_SIZES,
    Aperture,
    defocus_to_diameter,
    diameter_to_defocus,
    soft_disk_kernel,
)
from d2f.render.layered import BACKENDS, layer_masks, layered_blur, weighted_layered_render
from d2f.render.modules import LayeredBlur, SaturationWeight, WeightedLayeredRender
from d2f.render.radiance import saturation_weight

__all__ = [
    "BACKENDS",
    "KERNEL_SIZES",
    "Aperture",
    "LayeredBlur",
    "SaturationWeight",
    "WeightedLayeredRender",
    "defocus_to_diameter",
    "diameter_to_defocus",
    "layer_masks",
    "layered_blur",
    "saturation_weight",
    "scene",
    "soft_disk_kernel",
    "weighted_layered_render",
]
