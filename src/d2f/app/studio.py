"""The app's work, without the web: photos held in memory, their network outputs computed once, fast
previews and full-resolution renders from them.

A preview renders a copy of the photo shrunk to ``preview_side`` pixels (long side) and looks like the
full-resolution result shrunk: D2F measures blur in pixels of its stage-1 image, so for a model that
predicts defocus the preview keeps the defocus map (what the fusion network sees) and draws the blur
kernels smaller by the ratio of the two stage-1 sizes (``kernel_scale`` of :meth:`D2F.forward`: a disc of
61 stage-1 pixels at full size is one of 13 in a preview a fifth as large). Models that predict depth
measure blur relative to the photo already. A model with a fixed working size (d2f-lite-2) previews with
the full render's network outputs (its depth, focus and blur range, computed from the photo) wherever the
preview and the photo reach stage 1 at the same size. Photos smaller than ``preview_side`` are previewed
at full size, so their preview is exactly the full render.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from d2f.errors import InputError
from d2f.io import ImageMetadata, decode_image_and_metadata, encode_image
from d2f.models import D2F, NetworkOutputs
from d2f.options import RenderOptions, option_specs, render_options
from d2f.render.lens import check_focus_point

#: Download formats by upload extension (formats that keep EXIF and the colour profile); others: JPEG.
_DOWNLOAD_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF",
                     ".tiff": "TIFF"}
_FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif"}
# Pixels per strip of the full-resolution fusion (each strip is one step of the progress).
_STRIP_PIXELS = {"cpu": 2**20, "default": 2**23}


@dataclass
class Photo:
    """A loaded photo: ``image`` (3, H, W) float32 in [0, 1] on the CPU, ``preview`` (3, h, w) its copy
    at preview size (``image`` itself when small enough), and the network outputs of each, once run."""

    id: str
    name: str
    image: torch.Tensor
    metadata: ImageMetadata
    preview: torch.Tensor
    networks: dict[str, NetworkOutputs] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[-1], self.image.shape[-2]


@dataclass
class Preview:
    """A preview render: ``bokeh`` (3, h, w) and ``defocus`` (1, h, w), the defocus map a full render
    would save with ``--save-defocus``, shrunk to the preview's size."""

    bokeh: torch.Tensor
    defocus: torch.Tensor


@dataclass
class Download:
    """A full-resolution render encoded as a file with the photo's metadata."""

    data: bytes
    filename: str
    media_type: str


class Studio:
    """Loads photos and renders them with one model; safe to call from several threads (renders queue).

    Args:
        model: the D2F model (moved to ``device``, put in eval mode).
        device: where the model runs.
        precision: ``"fp32"`` or ``"bf16"`` (see :meth:`D2F.forward`).
        max_megapixels: larger uploads are refused.
        preview_side: long side of previews, in pixels.
        keep: how many photos stay in memory (the oldest is dropped).
    """

    def __init__(
        self,
        model: D2F,
        *,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        max_megapixels: float | None = 50.0,
        preview_side: int = 768,
        keep: int = 2,
    ):
        if not isinstance(model, D2F):
            raise InputError(f"model: expected a d2f.models.D2F, got {type(model).__name__}")
        if isinstance(preview_side, bool) or not isinstance(preview_side, int) or preview_side < 64:
            raise InputError(f"preview_side: expected an integer >= 64, got {preview_side!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.max_megapixels = max_megapixels
        self.preview_side = preview_side
        self.keep = keep
        self._photos: OrderedDict[str, Photo] = OrderedDict()
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------- description

    def describe(self) -> dict[str, Any]:
        """What the page needs to build its controls: every render option, and which this model takes."""
        supported = self.model.supported_options()
        defaults = RenderOptions()
        options = []
        for spec in option_specs():
            options.append({
                "name": spec.name,
                "label": spec.name.replace("_", " "),
                "help": spec.help,
                "kind": spec.kind,
                "minimum": spec.minimum,
                "maximum": spec.maximum,
                "slider": spec.slider,
                "allowed": spec.allowed,
                "default": getattr(defaults, spec.name),
                "needs_depth": spec.needs_depth,
                "supported": spec.name in supported,
            })
        return {
            "options": options,
            "predicts_depth": self.model.config.predicts_depth,
            "preview_side": self.preview_side,
            "max_megapixels": self.max_megapixels,
        }

    # ----------------------------------------------------------------------------------------- photos

    def load(self, data: bytes, name: str) -> Photo:
        """Decode an uploaded file (nothing is written to disk); ImageReadError names ``name``."""
        name = Path(name or "upload").name
        image, metadata = decode_image_and_metadata(data, name, max_megapixels=self.max_megapixels)
        photo = Photo(secrets.token_hex(8), name, image, metadata, self._shrink(image))
        with self._lock:
            self._photos[photo.id] = photo
            while len(self._photos) > self.keep:
                self._photos.popitem(last=False)
        return photo

    def photo(self, photo_id: str) -> Photo:
        """The loaded photo of this id; InputError once it has been dropped for newer ones."""
        photo = self._photos.get(photo_id)
        if photo is None:
            raise InputError("photo: no longer in memory (newer photos replaced it); load it again")
        return photo

    def _shrink(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        scale = self.preview_side / max(height, width)
        if scale >= 1:
            return image
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        shrunk = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)
        return shrunk[0].clamp(0, 1)

    # ---------------------------------------------------------------------------------------- renders

    def options(self, values: dict[str, Any]) -> RenderOptions:
        """Options from the page's values (JSON: a point is a list), checked against this model."""
        if not isinstance(values, dict):
            raise InputError(f"options: expected an object of option values, got {type(values).__name__}")
        values = {name: tuple(value) if isinstance(value, list) else value for name, value in values.items()}
        options = render_options(**values)
        self.model.check_supported(options)
        return options

    def preview(self, photo_id: str, options: RenderOptions) -> Preview:
        """Render the photo's preview (the networks run only the first time for a photo)."""
        photo = self.photo(photo_id)
        ratio = self._blur_ratio(photo)
        width = photo.size[0]
        focus = options.focus
        if focus is not None:
            check_focus_point(focus, *photo.size)
            # Clamped: the preview's rounded size may end a fraction of a pixel short of the photo's edge.
            scale = photo.preview.shape[-1] / width
            preview_height, preview_width = photo.preview.shape[-2:]
            focus = (min(focus[0] * scale, preview_width), min(focus[1] * scale, preview_height))
        output = self._render(
            photo, self._preview_key(photo), photo.preview, replace(options, focus=focus), kernel_scale=ratio
        )
        defocus = output.defocus[0].float()
        defocus = F.interpolate(
            defocus[None], size=photo.preview.shape[-2:], mode="bilinear", align_corners=False
        )[0]
        return Preview(output.bokeh[0].float().cpu(), defocus.cpu())

    def render_full(
        self, photo_id: str, options: RenderOptions, progress: Callable[[float, str], None] | None = None
    ) -> Download:
        """Render the photo at full resolution and encode it with its metadata.

        ``progress(fraction, stage)`` is called as the work advances (fraction in [0, 1]).
        """
        photo = self.photo(photo_id)
        report = progress or (lambda fraction, stage: None)
        width, height = photo.size
        budget = _STRIP_PIXELS.get(self.device.type, _STRIP_PIXELS["default"])
        strip_height = max(16, budget // width)
        strips = math.ceil(height / strip_height)
        steps = 3 + strips  # networks, blur layers, the fusion's strips, encoding
        done = {"strips": 0}

        def count_strip(*_: object) -> None:
            done["strips"] += 1
            report((2 + done["strips"]) / steps, f"fusing at full resolution ({done['strips']}/{strips})")

        report(0.0, "waiting for the previous render")
        output = self._render(
            photo,
            "full",
            photo.image,
            options,
            strip_height=strip_height,
            on_start=lambda cached: report(0.0, "rendering the blur" if cached else "running the networks"),
            on_networks=lambda: report(1 / steps, "rendering the blur"),
            on_fusion=count_strip,
        )
        report((steps - 1) / steps, "encoding")
        image_format = _DOWNLOAD_FORMATS.get(Path(photo.name).suffix.lower(), "JPEG")
        data = encode_image(output.bokeh[0].float().cpu(), image_format, metadata=photo.metadata)
        report(1.0, "done")
        filename = f"{Path(photo.name).stem}_bokeh{_FORMAT_EXTENSIONS[image_format]}"
        return Download(data, filename, f"image/{image_format.lower()}")

    def _render(
        self,
        photo: Photo,
        which: str,
        image: torch.Tensor,
        options: RenderOptions,
        *,
        strip_height: int | None = None,
        kernel_scale: float = 1.0,
        on_start: Callable[[bool], None] | None = None,
        on_networks: Callable[[], None] | None = None,
        on_fusion: Callable[..., None] | None = None,
    ):
        """One render with the model (one at a time); the callbacks follow its progress: ``on_start``
        (whether the network outputs are cached), ``on_networks`` once they are there, ``on_fusion``
        after each strip of the fusion network."""
        with self._lock, torch.inference_mode(), contextlib.ExitStack() as cleanup:
            network = photo.networks.get(which)
            if on_start is not None:
                on_start(network is not None)
            batch = image[None].to(self.device)
            if network is None:
                # The "full" outputs always come from the photo itself, even for a preview.
                source = photo.image if which == "full" else photo.preview
                network_input = batch if source is image else source[None].to(self.device)
                network = self.model.network_outputs(network_input, precision=self.precision)
                photo.networks[which] = network
            if on_networks is not None:
                on_networks()
            if on_fusion is not None:
                cleanup.callback(self.model.fusion_net.register_forward_hook(on_fusion).remove)
            return self.model(
                batch,
                options,
                network=network,
                precision=self.precision,
                strip_height=strip_height,
                kernel_scale=kernel_scale,
            )

    def _preview_key(self, photo: Photo) -> str:
        """Which network outputs a preview uses: the full render's when the preview is the photo, or
        when the model works at a fixed size and both reach stage 1 at the same size, so that the
        preview sees the very depth, focus and blur range of the full render."""
        if photo.preview is photo.image:
            return "full"
        if self.model.config.working_long_side is not None and self.model.stage1_size(
            *photo.preview.shape[-2:]
        ) == self.model.stage1_size(*photo.image.shape[-2:]):
            return "full"
        return "preview"

    def _blur_ratio(self, photo: Photo) -> float:
        """How much smaller a blur disc is in the preview's stage 1 than in the full render's."""
        if self.model.config.predicts_depth or photo.preview is photo.image:
            return 1.0
        full = self.model.stage1_size(*photo.image.shape[-2:])
        preview = self.model.stage1_size(*photo.preview.shape[-2:])
        return math.sqrt(preview[0] * preview[1] / (full[0] * full[1]))
