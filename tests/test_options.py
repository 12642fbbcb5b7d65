"""``d2f.options``: one description of the render options, checked the same way everywhere."""

from __future__ import annotations

import math

import pytest

from d2f.errors import InputError
from d2f.options import RenderOptions, option_specs, options_from_flags, render_options


class TestRenderOptions:
    def test_defaults_change_nothing(self) -> None:
        assert RenderOptions().changed() == {}
        assert RenderOptions().depth_options() == []

    def test_changed_and_depth_options(self) -> None:
        options = render_options(strength=0.5, focus=(3, 4), aperture_blades=6)
        assert options.changed() == {"strength": 0.5, "focus": (3.0, 4.0), "aperture_blades": 6}
        assert options.depth_options() == ["focus"]

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("strength", -0.1),
            ("strength", math.nan),
            ("strength", True),
            ("aperture_blades", 2),
            ("aperture_blades", 13),
            ("aperture_blades", 4.5),
            ("aperture_curvature", 1.5),
            ("highlight_threshold", 1.2),
            ("highlight_gain", -1.0),
            ("f_number", 0.1),
            ("focus", (1.0,)),
            ("focus", (-1.0, 2.0)),
            ("focus", (math.inf, 2.0)),
        ],
    )
    def test_out_of_range_values_name_the_option(self, name: str, value: object) -> None:
        with pytest.raises(InputError, match=f"^{name}: expected"):
            render_options(**{name: value})

    def test_unknown_option_lists_the_known_ones(self) -> None:
        with pytest.raises(InputError, match="blades: not a render option; the options are strength, focus"):
            render_options(blades=6)

    def test_simulated_aperture_must_be_wider_than_the_photos(self) -> None:
        with pytest.raises(InputError, match="f_number: the simulated aperture f/8 must be wider"):
            render_options(f_number=8, input_f_number=4)

    def test_overrides_apply_on_top_of_options(self) -> None:
        base = RenderOptions(strength=2.0, aperture_blades=5)
        assert render_options(base, strength=0.5) == RenderOptions(strength=0.5, aperture_blades=5)


class TestOptionSpec:
    def test_every_field_has_a_spec_with_a_flag_and_help(self) -> None:
        names = [spec.name for spec in option_specs()]
        assert names[:3] == ["strength", "focus", "f_number"]
        assert all(spec.help and spec.flag.startswith("--") for spec in option_specs())

    def test_parse_reads_command_line_text(self) -> None:
        specs = {spec.name: spec for spec in option_specs()}
        assert specs["focus"].parse("12,34.5") == (12.0, 34.5)
        assert specs["aperture_blades"].parse("6") == 6
        with pytest.raises(InputError, match=r"^--aperture-blades: expected one of 0, 3, 4"):
            specs["aperture_blades"].parse("2")
        with pytest.raises(InputError, match=r"^--focus: expected two finite numbers"):
            specs["focus"].parse("12;34")

    def test_flag_errors_name_the_flag(self) -> None:
        with pytest.raises(InputError, match=r"^--f-number: the simulated aperture"):
            options_from_flags({"f_number": 8.0, "input_f_number": 4.0, "strength": None})
