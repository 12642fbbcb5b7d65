"""The app's work without a browser: Studio's previews and full renders, and the server's answers."""

from __future__ import annotations

import dataclasses
import http.client
import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from d2f.app import AppServer, Studio
from d2f.errors import ImageReadError, InputError
from d2f.io import encode_image, pil_to_tensor
from d2f.models import D2F
from d2f.options import option_specs
from d2f.pipeline import default_model, render_image
from tiny_models import TINY_LITE

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "d2f" / "samples" / "coffee.jpg"


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny() -> D2F:
    torch.manual_seed(0)
    return D2F(TINY_LITE).eval()


def count_network_passes(model: D2F) -> list[int]:
    calls = [0]
    model.defocus_net.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_the_page_gets_every_option_and_what_the_model_takes(tiny) -> None:
    described = Studio(tiny).describe()["options"]
    assert [option["name"] for option in described] == [spec.name for spec in option_specs()]
    supported = {option["name"] for option in described if option["supported"]}
    assert supported == tiny.supported_options()
    assert "focus" not in supported  # a defocus model


def test_a_small_photo_previews_exactly_its_full_render_and_runs_the_networks_once(tiny) -> None:
    studio = Studio(tiny, preview_side=128)
    passes = count_network_passes(tiny)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 120, 3), dtype=np.uint8))
    photo = studio.load(jpeg_bytes(image), "small.jpg")
    settings = [{"strength": 1.0}, {"strength": 2.0, "aperture_blades": 6}, {"highlight_gain": 9.0}]
    previews = [studio.preview(photo.id, studio.options(values)).bokeh for values in settings]
    download = studio.render_full(photo.id, studio.options(settings[-1]))
    assert passes == [1]  # the preview's outputs serve the full render too: they are the same image
    assert download.filename == "small_bokeh.jpg" and download.media_type == "image/jpeg"
    for preview, values in zip(previews, settings, strict=True):
        torch.testing.assert_close(preview, render_image(photo.image, tiny, **values), rtol=0, atol=1e-6)


def test_a_large_photo_previews_its_full_render_shrunk() -> None:
    model = default_model()
    studio = Studio(model, preview_side=768)
    large = Image.open(SAMPLE).resize((1536, 1024), Image.BICUBIC)
    photo = studio.load(jpeg_bytes(large), "large.jpg")
    preview = studio.preview(photo.id, studio.options({"strength": 1.5}))
    assert preview.bokeh.shape == (3, 512, 768) and preview.defocus.shape == (1, 512, 768)
    full = render_image(photo.image, model, strength=1.5)
    shrunk = F.interpolate(full[None], size=(512, 768), mode="bilinear", antialias=True)[0]
    # Rendered as if the preview were the photo, the blur would be twice as wide.
    naive = render_image(photo.preview, model, strength=1.5)
    error, naive_error = (float((shrunk - other).abs().mean()) for other in (preview.bokeh, naive))
    assert error < naive_error / 3
    assert error < 1.5 / 255


def ranged_model_counting_network_inputs() -> tuple[D2F, list[tuple[int, ...]]]:
    """A tiny depth model with a blur-range head, and the shapes of the images its networks ran on."""
    torch.manual_seed(0)
    config = dataclasses.replace(TINY_LITE, predicts="depth", working_long_side=128, blur_range=True)
    model = D2F(config).eval()
    shapes: list[tuple[int, ...]] = []
    run_networks = model.network_outputs

    def counting(image: torch.Tensor, **kwargs):
        shapes.append(tuple(image.shape))
        return run_networks(image, **kwargs)

    model.network_outputs = counting
    return model, shapes


def test_a_depth_model_previews_with_the_full_renders_depth_focus_and_blur_range() -> None:
    ranged, shapes = ranged_model_counting_network_inputs()
    studio = Studio(ranged, preview_side=192)
    large = Image.open(SAMPLE).resize((576, 384), Image.BICUBIC)
    photo = studio.load(jpeg_bytes(large), "large.jpg")
    options = studio.options({"focus": (100.0, 200.0), "f_number": 2.0})
    preview = studio.preview(photo.id, options)
    studio.render_full(photo.id, options)
    assert shapes == [(1, 3, 384, 576)] and set(photo.networks) == {"full"}  # one pass, from the photo
    with torch.inference_mode():
        full = ranged(photo.image[None], options)
    expected = F.interpolate(full.defocus.float(), size=(128, 192), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(preview.defocus, expected, rtol=0, atol=1e-5)


def test_a_focus_point_outside_the_photo_is_refused_in_the_preview_too() -> None:
    ranged, _ = ranged_model_counting_network_inputs()
    studio = Studio(ranged, preview_side=192)
    photo = studio.load(jpeg_bytes(Image.open(SAMPLE).resize((576, 384), Image.BICUBIC)), "large.jpg")
    with pytest.raises(InputError, match=r"^focus: \(577, 10\) is outside the photo \(576x384 pixels"):
        studio.preview(photo.id, studio.options({"focus": (577.0, 10.0)}))
    edge = studio.preview(photo.id, studio.options({"focus": (576.0, 384.0)}))  # the far corner is on it
    assert edge.bokeh.shape == photo.preview.shape


def test_a_depth_model_previews_with_its_own_pass_where_the_stage1_sizes_differ() -> None:
    ranged, shapes = ranged_model_counting_network_inputs()
    studio = Studio(ranged, preview_side=192)
    photo = studio.load(jpeg_bytes(Image.open(SAMPLE).resize((202, 151), Image.BICUBIC)), "odd.jpg")
    assert ranged.stage1_size(151, 202) != ranged.stage1_size(*photo.preview.shape[-2:])  # rounding
    preview = studio.preview(photo.id, studio.options({"f_number": 2.0}))
    assert preview.bokeh.shape == photo.preview.shape and set(photo.networks) == {"preview"}
    assert shapes == [(1, *photo.preview.shape)]


def test_the_full_render_keeps_the_metadata_and_reports_progress(tiny) -> None:
    studio = Studio(tiny)
    exif = Image.Exif()
    exif[0x0110] = "Test Camera"
    image = Image.open(SAMPLE).resize((96, 64), Image.BICUBIC)  # smooth: little JPEG error
    photo = studio.load(jpeg_bytes(image, exif=exif.tobytes()), "camera.jpg")
    assert photo.metadata.exif is not None
    progress: list[float] = []
    options = studio.options({"strength": 1.5})
    download = studio.render_full(photo.id, options, lambda fraction, _: progress.append(fraction))
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) >= 4
    result = Image.open(io.BytesIO(download.data))
    assert result.size == (96, 64) and result.getexif()[0x0110] == "Test Camera"
    expected = encode_image(render_image(photo.image, tiny, strength=1.5), "JPEG", quality=95)
    expected_pixels = pil_to_tensor(Image.open(io.BytesIO(expected)))
    assert float((pil_to_tensor(result) - expected_pixels).abs().max()) < 2 / 255


def test_bad_photos_and_options_are_refused_by_name(tiny) -> None:
    studio = Studio(tiny, max_megapixels=0.001, keep=1)
    with pytest.raises(ImageReadError, match=r"^notes.txt: not an image file"):
        studio.load(b"hello", "notes.txt")
    with pytest.raises(ImageReadError, match=r"^big.jpg: image is 60x40 .* above the limit"):
        studio.load(jpeg_bytes(Image.new("RGB", (60, 40))), "big.jpg")
    first = studio.load(jpeg_bytes(Image.new("RGB", (20, 10))), "a.jpg")
    studio.load(jpeg_bytes(Image.new("RGB", (20, 10))), "b.jpg")
    with pytest.raises(InputError, match=r"^photo: no longer in memory"):
        studio.photo(first.id)
    with pytest.raises(InputError, match=r"^focus: this model predicts defocus, not depth"):
        studio.options({"focus": [3, 4]})
    with pytest.raises(InputError, match=r"^aperture_blades: expected one of 0, 3"):
        studio.options({"aperture_blades": 2})


def test_the_server_answers_errors_as_json_and_only_to_this_machine(tiny) -> None:
    server = AppServer(Studio(tiny), 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]

        def ask(method: str, path: str, body: bytes | None = None, headers: dict | None = None):
            connection = http.client.HTTPConnection(host, port, timeout=30)
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type"), response.read()

        status, kind, body = ask("GET", "/api/config")
        assert status == 200 and len(json.loads(body)["options"]) == len(option_specs())
        status, _, body = ask("POST", "/api/photo?name=notes.txt", b"not an image")
        assert status == 400 and json.loads(body)["error"].startswith("notes.txt: not an image file")
        status, _, body = ask("POST", "/api/preview", b"{not json")
        assert status == 400 and "not valid JSON" in json.loads(body)["error"]
        status, _, body = ask("GET", "/api/config", headers={"Host": "elsewhere.example:80"})
        assert status == 400 and "127.0.0.1 or localhost" in json.loads(body)["error"]
        status, kind, body = ask("GET", "/")
        assert status == 200 and kind.startswith("text/html") and b"/static/app.js" in body
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
