"""``D2F.forward(strength=S)``: 0 gives the input back exactly, 1 is the model's own, others scale the blur
diameter linearly (clipped to the renderer's largest kernel)."""

from __future__ import annotations

import pytest
import torch

from d2f.errors import InputError
from d2f.models import D2F
from d2f.render import KERNEL_SIZES, defocus_to_diameter
from tiny_models import TINY_LITE


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.rand(2, 3, 45, 77, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def model(image: torch.Tensor) -> D2F:
    """A random model whose defocus map on ``image`` spans [-0.5, 1.5] (beyond the renderer's range)."""
    torch.manual_seed(0)
    model = D2F(TINY_LITE).eval()
    last = model.defocus_net.head.conv3  # linear: rescaling it rescales the defocus map
    with torch.no_grad():
        defocus = model(image).defocus
        scale = 2 / (defocus.max() - defocus.min())
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(-0.5 - scale * defocus.min())
    return model


def run(model: D2F, image: torch.Tensor, **options):
    with torch.no_grad():
        return model(image, **options)


def test_strength_zero_gives_the_input_back_exactly(model: D2F, image: torch.Tensor, device) -> None:
    model, image = model.to(device), image.to(device)
    output = run(model, image, strength=0.0)
    assert torch.equal(output.bokeh, image)
    assert output.bokeh.data_ptr() != image.data_ptr()
    assert torch.equal(output.defocus, torch.zeros_like(output.defocus))
    assert torch.equal(output.fusion_mask, torch.ones(2, 1, 45, 77, device=device))
    assert not torch.equal(run(model, image).bokeh, image)  # the model itself does blur


def test_strength_one_is_the_models_own(model: D2F, image: torch.Tensor) -> None:
    default, explicit = run(model, image), run(model, image, strength=1.0)
    assert float(default.defocus.min()) < 0 and float(default.defocus.max()) > 1  # not clipped at 1
    for field in ("bokeh", "defocus", "bokeh_small", "fusion_mask"):
        assert torch.equal(getattr(explicit, field), getattr(default, field)), field


@pytest.mark.parametrize("strength", [0.5, 3.0])
def test_other_strengths_scale_the_blur_diameter(model: D2F, image: torch.Tensor, strength: float) -> None:
    own, scaled = run(model, image), run(model, image, strength=strength)
    sizes = model.config.kernel_sizes
    own_blur = defocus_to_diameter(own.defocus.clamp(0, 1), sizes) - 1  # beyond the one in-focus pixel
    expected = (1 + strength * own_blur).clamp(max=sizes[-1])
    torch.testing.assert_close(defocus_to_diameter(scaled.defocus, sizes), expected, rtol=1e-5, atol=1e-4)
    assert scaled.bokeh.shape == image.shape and not torch.equal(scaled.bokeh, own.bokeh)


def test_half_strength_halves_the_blur_diameter() -> None:
    from d2f.models.d2f import scale_blur

    defocus = torch.tensor([0.0, 3 / 14, 9 / 14]).reshape(1, 1, 1, 3)  # diameters 1, 7, 33 px
    halved = defocus_to_diameter(scale_blur(defocus, 0.5, KERNEL_SIZES)).flatten().tolist()
    assert halved == pytest.approx([1.0, 4.0, 17.0])


def test_gentler_strength_stays_closer_to_the_input(model: D2F, image: torch.Tensor) -> None:
    distances = [(run(model, image, strength=s).bokeh - image).abs().mean() for s in (0.25, 1.0)]
    assert distances[0] < distances[1]


@pytest.mark.parametrize("strength", [-0.1, float("nan"), float("inf"), True, "1"])
def test_bad_strength_is_refused(model: D2F, image: torch.Tensor, strength: object) -> None:
    with pytest.raises(InputError, match="strength: expected a finite number >= 0"):
        run(model, image, strength=strength)
