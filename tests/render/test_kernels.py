import pytest
import torch

from d2f.errors import InputError
from d2f.render import KERNEL_SIZES, defocus_to_diameter, diameter_to_defocus, soft_disk_kernel
from d2f.render.kernels import soft_disk_spectra, soft_disk_spectrum


class TestSoftDiskKernel:
    @pytest.mark.parametrize("size", [1, 3, 7, 69])
    def test_shape_and_normalisation(self, size):
        kernel = soft_disk_kernel(size, dtype=torch.float64)
        assert kernel.shape == (size, size)
        assert torch.isclose(kernel.sum(), torch.tensor(1.0, dtype=torch.float64))
        assert (kernel >= 0).all()

    def test_formula(self):
        radius = 5
        kernel = soft_disk_kernel(2 * radius + 1, dtype=torch.float64)
        unnormalised = torch.tensor(
            [
                [
                    0.5 + 0.5 * torch.tanh(torch.tensor(0.25 * (radius**2 - x**2 - y**2) + 0.5)).item()
                    for x in range(-radius, radius + 1)
                ]
                for y in range(-radius, radius + 1)
            ],
            dtype=torch.float64,
        )
        torch.testing.assert_close(kernel, unnormalised / unnormalised.sum())

    def test_is_a_disk(self):
        kernel = soft_disk_kernel(33)
        assert torch.equal(kernel, kernel.flip(0)) and torch.equal(kernel, kernel.T)
        centre, corner, rim = kernel[16, 16], kernel[0, 0], kernel[16, 0]
        assert corner < 1e-6 * centre  # outside the disk
        assert rim > 0.3 * centre  # on the rim: inside the soft edge

    def test_device_and_dtype(self, device):
        kernel = soft_disk_kernel(5, device=device, dtype=torch.float64)
        assert kernel.device.type == device.type and kernel.dtype == torch.float64

    @pytest.mark.parametrize("size", [0, -3, 4, 2.0, True, "3"])
    def test_bad_size(self, size):
        with pytest.raises(InputError, match="kernel_sizes"):
            soft_disk_kernel(size)


class TestSoftDiskSpectrum:
    @pytest.mark.parametrize(("size", "shape"), [(3, (16, 20)), (11, (30, 31)), (69, (120, 144))])
    def test_equals_transform_of_centred_kernel(self, size, shape):
        radius = size // 2
        placed = torch.zeros(shape, dtype=torch.float64)
        placed[:size, :size] = soft_disk_kernel(size, dtype=torch.float64)
        placed = torch.roll(placed, (-radius, -radius), (0, 1))
        expected = torch.fft.rfft2(placed)
        spectrum = soft_disk_spectrum(size, shape, dtype=torch.float64)
        torch.testing.assert_close(spectrum, expected.real)
        assert expected.imag.abs().max() < 1e-12

    def test_too_small_shape(self):
        with pytest.raises(InputError, match="fft_shape"):
            soft_disk_spectrum(11, (4, 64))


class TestSoftDiskSpectra:
    def test_each_equals_the_transform_of_its_kernel(self, device):
        sizes, shape = (3, 11, 69, 1, 33), (96, 110)
        spectra = soft_disk_spectra(sizes, shape, device=device, dtype=torch.float64)
        assert spectra.shape == (5, 96, 56) and spectra.device.type == device.type
        for size, spectrum in zip(sizes, spectra.cpu(), strict=True):
            placed = torch.zeros(shape, dtype=torch.float64)
            placed[:size, :size] = soft_disk_kernel(size, dtype=torch.float64)
            placed = torch.roll(placed, (-(size // 2), -(size // 2)), (0, 1))
            torch.testing.assert_close(spectrum, torch.fft.rfft2(placed).real)

    def test_dtype(self):
        spectra = soft_disk_spectra((5, 7), (20, 20), dtype=torch.float32)
        assert spectra.dtype == torch.float32
        torch.testing.assert_close(spectra[1], soft_disk_spectrum(7, (20, 20), dtype=torch.float32))

    @pytest.mark.parametrize("sizes", [(), (3, 4), (0,)])
    def test_bad_sizes(self, sizes):
        with pytest.raises(InputError, match="kernel_sizes"):
            soft_disk_spectra(sizes, (20, 20))

    def test_too_small_shape(self):
        with pytest.raises(InputError, match="fft_shape"):
            soft_disk_spectra((3, 11), (64, 4))


class TestDefocusDiameter:
    def test_knots(self):
        assert defocus_to_diameter(0.0) == 1.0
        for level, size in enumerate(KERNEL_SIZES, start=1):
            assert defocus_to_diameter(level / 14) == pytest.approx(size)
            assert diameter_to_defocus(float(size)) == pytest.approx(level / 14)

    def test_clamped(self):
        assert defocus_to_diameter(-0.5) == 1.0
        assert defocus_to_diameter(3.0) == 69.0
        assert diameter_to_defocus(0.0) == 0.0
        assert diameter_to_defocus(500.0) == 1.0

    def test_linear_between_knots(self):
        assert defocus_to_diameter(0.5 / 14) == pytest.approx(2.0)
        assert diameter_to_defocus(64.0) == pytest.approx((13 + 3 / 8) / 14)

    def test_tensor_round_trip_and_gradient(self, device):
        defocus = torch.linspace(0, 1, 101, dtype=torch.float64, device=device, requires_grad=True)
        diameter = defocus_to_diameter(defocus)
        assert diameter.shape == defocus.shape and diameter.device.type == device.type
        torch.testing.assert_close(diameter_to_defocus(diameter), defocus)
        diameter.sum().backward()
        assert (defocus.grad > 0).all()  # strictly increasing map

    def test_custom_kernel_sizes(self):
        assert defocus_to_diameter(0.5, kernel_sizes=(3, 9)) == pytest.approx(3.0)
        assert diameter_to_defocus(6.0, kernel_sizes=(3, 9)) == pytest.approx(0.75)

    @pytest.mark.parametrize("sizes", [(), (5, 3), (1, 3), (4, 6)])
    def test_bad_kernel_sizes(self, sizes):
        with pytest.raises(InputError, match="kernel_sizes"):
            defocus_to_diameter(0.5, kernel_sizes=sizes)

    def test_nan(self):
        with pytest.raises(InputError, match="NaN"):
            diameter_to_defocus(float("nan"))
