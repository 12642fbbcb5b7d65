"""Aperture shapes and cat's eye: the render of a single bright pixel is the lens's aperture."""

import math

import pytest
import torch

from d2f.errors import InputError
from d2f.render import LayeredBlur, WeightedLayeredRender, layer_masks, layered_blur, weighted_layered_render
from d2f.render.backends import blur_levels_batched, blur_levels_cropped, blur_levels_direct
from d2f.render.kernels import (
    Aperture,
    aperture_kernel,
    aperture_spectra,
    soft_disk_kernel,
    soft_disk_spectra,
)
from d2f.render.layered import CATS_EYE_ZONES

# A large top kernel (radius 30) and two small ones: defocus 1 + 1/9 selects the top level alone.
SIZES = (5, 9, 61)
TOP = 1 + 1 / 9


def impulse_response(aperture=None, *, size=97, at=None, cats_eye=0.0, backend="fft", dtype=torch.float64):
    """The render of one bright pixel on black at the largest defocus, and where the pixel was."""
    y, x = at if at is not None else (size // 2, size // 2)
    image = torch.zeros(1, 1, size, size, dtype=dtype)
    image[..., y, x] = 1.0
    defocus = torch.full_like(image, TOP)
    blurred = layered_blur(
        image, defocus, kernel_sizes=SIZES, backend=backend, aperture=aperture, cats_eye=cats_eye
    )
    return blurred[0, 0], (y, x)


def ideal_polygon(radius: float, blades: int, rotation: float, grid: int) -> torch.Tensor:
    """Pixels of a (grid, grid) image centred on the middle whose centres lie inside the polygon with
    corners on the circle of ``radius``, one corner up at rotation 0 (degrees counter-clockwise)."""
    offsets = torch.arange(grid, dtype=torch.float64) - grid // 2
    y, x = offsets[:, None], offsets[None, :]
    inside = torch.ones(grid, grid, dtype=torch.bool)
    apothem = radius * math.cos(math.pi / blades)
    for index in range(blades):
        # Outward normal of edge ``index``, midway between two corners; y points down in the image.
        angle = math.pi / 2 + math.radians(rotation) + (index + 0.5) * 2 * math.pi / blades
        inside &= x * math.cos(angle) - y * math.sin(angle) <= apothem
    return inside


def support(response: torch.Tensor) -> torch.Tensor:
    """The lit pixels: above half the response's plateau."""
    return response > 0.5 * response.max()


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / float((a | b).sum())


@pytest.mark.parametrize("blades", [3, 5, 6, 8, 12])
@pytest.mark.parametrize("rotation", [0.0, 17.0])
def test_impulse_renders_the_polygon(blades, rotation):
    response, _ = impulse_response(Aperture(blades, rotation))
    assert math.isclose(float(response.sum()), 1.0, abs_tol=1e-9)
    ideal = ideal_polygon(SIZES[-1] // 2, blades, rotation, response.shape[-1])
    assert iou(support(response), ideal) >= 0.9
    if blades < 8:  # a round disc of that diameter fits a few-bladed polygon clearly worse
        disc = ideal_polygon(SIZES[-1] // 2, 360, 0.0, response.shape[-1])
        assert iou(support(response), disc) < iou(support(response), ideal)


def test_rotation_rotates_the_shape():
    upright, _ = impulse_response(Aperture(5))
    turned, _ = impulse_response(Aperture(5, 90.0))
    # A quarter turn counter-clockwise of the picture (rows y down): the top corner goes to the left.
    torch.testing.assert_close(turned, torch.rot90(upright, 1, dims=(0, 1)), atol=1e-12, rtol=0)
    flipped, _ = impulse_response(Aperture(3, 180.0))
    torch.testing.assert_close(flipped, impulse_response(Aperture(3))[0].flip(0), atol=1e-12, rtol=0)
    assert not torch.allclose(upright, turned, atol=1e-6)


def test_a_triangle_points_up():
    response, (y, _) = impulse_response(Aperture(3))
    lit_rows = support(response).any(dim=1).nonzero()[:, 0]
    # The corner reaches the full radius above; the opposite edge only half of it below.
    assert y - int(lit_rows[0]) == pytest.approx(30, abs=1)
    assert int(lit_rows[-1]) - y == pytest.approx(15, abs=1)


def test_curvature_one_is_todays_disk():
    disk, _ = impulse_response(None)
    for blades in (3, 6, 9):
        torch.testing.assert_close(impulse_response(Aperture(blades, 30.0, 1.0))[0], disk, atol=1e-12, rtol=0)
        nearly_round, _ = impulse_response(Aperture(blades, 30.0, 0.99999))
        assert float((nearly_round - disk).abs().max()) < 1e-4
    assert torch.equal(aperture_kernel(33, Aperture(7, curvature=1.0)), soft_disk_kernel(33))


def test_curvature_rounds_the_blades():
    straight, _ = impulse_response(Aperture(5, curvature=0.0))
    curved, _ = impulse_response(Aperture(5, curvature=0.6))
    disc = ideal_polygon(SIZES[-1] // 2, 360, 0.0, straight.shape[-1])
    assert iou(support(curved), disc) > iou(support(straight), disc)
    assert support(curved).sum() > support(straight).sum()


@pytest.mark.parametrize(
    "aperture",
    [
        None,
        Aperture(3),
        Aperture(6, 10.0),
        Aperture(7, -40.0, 0.5),
        Aperture(12, 5.0, 0.2),
        Aperture(clip=(0.8, -0.5)),
    ],
)
def test_backends_agree_for_every_shape(aperture, device, dtype):
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 60, 72, generator=generator, dtype=dtype).to(device)
    defocus = torch.rand(2, 1, 60, 72, generator=generator, dtype=dtype).to(device) * 1.1
    for cats_eye in (0.0, 1.0):
        results = [
            layered_blur(
                image,
                defocus,
                kernel_sizes=(3, 7, 13, 25),
                backend=backend,
                aperture=aperture,
                cats_eye=cats_eye,
            )
            for backend in ("direct", "fft")
        ]
        torch.testing.assert_close(results[0], results[1], atol=1e-4, rtol=0)


def test_spectra_are_those_of_the_kernels():
    aperture = Aperture(5, 12.0, 0.3, clip=(0.4, 0.2))
    shape = (40, 36)
    spectra = aperture_spectra((5, 21), shape, aperture, dtype=torch.float64)
    for index, size in enumerate((5, 21)):
        grid = torch.zeros(shape, dtype=torch.float64)
        radius = size // 2
        kernel = aperture_kernel(size, aperture, dtype=torch.float64)
        for row in range(size):
            for column in range(size):
                grid[(row - radius) % shape[0], (column - radius) % shape[1]] = kernel[row, column]
        torch.testing.assert_close(spectra[index], torch.fft.rfft2(grid))
    round_spectra = aperture_spectra((5, 21), shape, None, dtype=torch.float64)
    assert torch.equal(round_spectra, soft_disk_spectra((5, 21), shape, dtype=torch.float64))


def test_kernels_keep_unit_sum_and_soft_edge():
    for aperture in (Aperture(3), Aperture(8, 22.5, 0.4), Aperture(clip=(1.5, 0.0))):
        kernel = aperture_kernel(41, aperture, dtype=torch.float64)
        assert math.isclose(float(kernel.sum()), 1.0, rel_tol=1e-12)
        assert (kernel >= 0).all()
        values = kernel[kernel > 1e-3 * kernel.max()] / kernel.max()
        assert ((values > 0.05) & (values < 0.95)).any()  # a soft rim, not a hard step


# Zones of 96 px cross-fading over 24 px: a disc of radius 30 around (45, 45) lies inside the corner
# zone, and one around the middle inside the centre zone, whatever the number of zones.
FRAME = 96 * CATS_EYE_ZONES
FAR = FRAME - 1 - 45


class TestCatsEye:
    @pytest.mark.parametrize("size", [(1, 2), (7, 5), (40, 52), (50, 76)])
    @pytest.mark.parametrize("backend", ["direct", "fft"])
    def test_zones_render_like_the_whole_frame(self, size, backend):
        """With a vanishing strength every zone has the round kernels: the zones, their windows and
        their cross-fades then give the whole-frame render back."""
        generator = torch.Generator().manual_seed(1)
        image = torch.rand(1, 3, *size, generator=generator, dtype=torch.float64)
        defocus = torch.rand(1, 1, *size, generator=generator, dtype=torch.float64)
        whole = layered_blur(image, defocus, backend=backend)
        zones = layered_blur(image, defocus, backend=backend, cats_eye=1e-12)
        torch.testing.assert_close(zones, whole, atol=1e-9, rtol=0)

    def test_centre_is_the_round_disc(self):
        round_disc, _ = impulse_response(None, size=FRAME, backend="fft")
        centre, _ = impulse_response(None, size=FRAME, cats_eye=1.0, backend="fft")
        torch.testing.assert_close(centre, round_disc, atol=1e-12, rtol=0)

    @pytest.mark.parametrize("corner", [(45, 45), (45, FAR), (FAR, FAR), (FAR, 45)])
    def test_corner_is_a_radial_lens_shape(self, corner):
        response, (y, x) = impulse_response(None, size=FRAME, at=corner, cats_eye=1.0, backend="fft")
        lit = support(response)
        rows, columns = lit.nonzero().T.double()
        radial = torch.tensor([x - (FRAME - 1) / 2, y - (FRAME - 1) / 2], dtype=torch.float64)
        radial = radial / radial.norm()
        along = (columns - x) * radial[0] + (rows - y) * radial[1]
        across = -(columns - x) * radial[1] + (rows - y) * radial[0]
        # Narrow along the radius, long across it (the long axis is tangential), centred on the light.
        assert float(along.max() - along.min()) < 0.8 * float(across.max() - across.min())
        assert abs(float(along.mean())) < 1.0 and abs(float(across.mean())) < 1.0
        # The ideal lens shape: two discs of the kernel's radius displaced by +-shift / 2 along the
        # radius, the shift being that of the corner zone's centre, a zone's half side from the frame's.
        half_diagonal = FRAME / 2 * 2**0.5
        centre_distance = (FRAME / 2 - FRAME / CATS_EYE_ZONES / 2) * 2**0.5
        shift = 1.2 * centre_distance / half_diagonal * 30
        offsets = torch.arange(FRAME, dtype=torch.float64)
        dy, dx = offsets[:, None] - y, offsets[None, :] - x
        ideal = torch.ones(FRAME, FRAME, dtype=torch.bool)
        for sign in (1, -1):
            cy, cx = sign * shift / 2 * radial[1], sign * shift / 2 * radial[0]
            ideal &= (dx - cx) ** 2 + (dy - cy) ** 2 <= 30**2
        assert iou(lit, ideal) >= 0.9
        disc = dx**2 + dy**2 <= 30**2
        assert iou(lit, disc) < 0.8

    def test_strength_narrows_the_eye(self):
        widths = []
        for strength in (0.5, 1.0, 2.0):
            response, _ = impulse_response(None, size=FRAME, at=(45, 45), cats_eye=strength, backend="fft")
            lit = support(response)
            widths.append(int(lit.sum()))
        assert widths[0] > widths[1] > widths[2]


def test_bad_apertures_are_one_line_errors():
    with pytest.raises(InputError, match="blades"):
        Aperture(2)
    with pytest.raises(InputError, match="curvature"):
        Aperture(5, curvature=1.5)
    with pytest.raises(InputError, match="cats_eye"):
        layered_blur(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), cats_eye=-1.0)


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("track_gradients", [False, True])
def test_every_backend_path_takes_the_shape(track_gradients, padded):
    """The whole-frame batched path (the GPU's), the cropped path (the CPU's) and the direct one agree,
    also on windows that carry their surroundings (``padded``, as the cat's eye's zones are)."""
    sizes = (3, 7, 13, 25)
    values = torch.rand(1, 2, 40, 52, dtype=torch.float64, requires_grad=track_gradients)
    masks = layer_masks(torch.rand(1, 1, 40, 52, dtype=torch.float64), len(sizes) + 1)
    aperture = Aperture(5, 20.0, 0.2, clip=(0.5, 0.3))
    options = {"padded": padded}
    direct = [level.stack for level in blur_levels_direct(values, masks, sizes, aperture, **options)]
    levels = blur_levels_batched(values, masks, sizes, direct_max_size=7, aperture=aperture, **options)
    batched = [level.stack for level in levels]
    cropped = list(blur_levels_cropped(values, masks, sizes, aperture, **options))
    assert direct[0].shape[-2:] == ((40 - 24, 52 - 24) if padded else (40, 52))
    for ours, fast, boxed in zip(direct, batched, cropped, strict=True):
        torch.testing.assert_close(fast, ours, atol=1e-10, rtol=0)
        height, width = boxed.stack.shape[-2:]
        window = ours[..., boxed.top : boxed.top + height, boxed.left : boxed.left + width]
        torch.testing.assert_close(boxed.stack, window, atol=1e-10, rtol=0)


def test_modules_take_the_aperture():
    image, weight = torch.rand(1, 3, 30, 40), torch.rand(1, 1, 30, 40)
    defocus = torch.rand(1, 1, 30, 40)
    module = WeightedLayeredRender(kernel_sizes=(3, 7, 11), aperture=Aperture(6), cats_eye=1.0)
    expected = weighted_layered_render(
        image, defocus, weight, kernel_sizes=(3, 7, 11), aperture=Aperture(6), cats_eye=1.0
    )
    assert torch.equal(module(image, defocus, weight), expected)
    assert "cats_eye=1.0" in repr(module)
    blur = LayeredBlur(kernel_sizes=(3, 7, 11), aperture=Aperture(5))
    expected = layered_blur(image, defocus, kernel_sizes=(3, 7, 11), aperture=Aperture(5))
    assert torch.equal(blur(image, defocus), expected)
