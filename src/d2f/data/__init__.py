"""Training and evaluation data: the EBB! dataset, synthetic scenes with exact ground truth, real depth.

- :class:`EBBDataset`: pairs of all-in-focus and bokeh photos from an EBB!-style folder.
- :class:`SyntheticBokehDataset`, :func:`generate_scene`, :func:`write_scene`, :func:`read_scene`:
  layered scenes rendered by the physically based :mod:`d2f.render.scene`.
- :class:`TextureBank`: photos and cut-outs for the scenes (procedural textures need none).
- :class:`RGBDBokehDataset`: real photos with measured depth and bokeh rendered from it.
- :func:`disparity_to_coc`, :func:`disparity_to_defocus`, :func:`fill_unknown`: real depth maps.
- :func:`half_resolution_size` and the paired transforms in :mod:`d2f.data.transforms`.
"""

from d2f.data.depth import disparity_to_coc, disparity_to_defocus, fill_unknown
from d2f.data.ebb import VAL294_IDS, EBBDataset
from d2f.data.rgbd import RGBDBokehDataset
from d2f.data.synthetic import (
    SyntheticBokehDataset,
    generate_scene,
    read_scene,
    scene_name,
    write_scene,
)
from d2f.data.textures import TextureBank, procedural_texture
from d2f.data.transforms import half_resolution_size

__all__ = [
    "VAL294_IDS",
    "EBBDataset",
    "RGBDBokehDataset",
    "SyntheticBokehDataset",
    "TextureBank",
    "disparity_to_coc",
    "disparity_to_defocus",
    "fill_unknown",
    "generate_scene",
    "half_resolution_size",
    "procedural_texture",
    "read_scene",
    "scene_name",
    "write_scene",
]
