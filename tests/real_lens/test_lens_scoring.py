import math

import numpy as np
import pytest
from PIL import Image

from d2f.errors import InputError
from d2f.metrics import blur_map_agreement, psnr, ssim, structural_measures
from d2f.real_lens.pairs import RowError, read_pairs_csv
from d2f.real_lens.scoring import Renderer, Rendering, ScoredPair, baseline_renderer, score_pairs
from lens_scenes import F_NUMBERS, lens_scene, write_lens_pairs


@pytest.fixture
def pairs(tmp_path):
    return read_pairs_csv(write_lens_pairs(tmp_path))[0]


def lens_renderer(f_number):
    """A method that knows the answer: the lens's own photo at ``f_number``."""
    return Renderer(f"lens f/{f_number:g}", lambda image, options: Rendering(lens_scene()[1][f_number]))


def test_measures_of_each_method_against_each_target(pairs):
    image, bokeh, mask = lens_scene()
    renderers = [baseline_renderer("identity"), baseline_renderer("gaussian"), lens_renderer(2.0)]
    scored = list(score_pairs(pairs, renderers))
    assert [item.pair.name for item in scored] == ["scene-f8", "scene-f4", "scene-f2"]
    for item, f_number in zip(scored, F_NUMBERS, strict=True):
        target = bokeh[f_number]
        gaussian = renderers[1].render(image, {}).image
        score = item.scores["gaussian"]
        assert score.psnr == pytest.approx(psnr(gaussian, target))
        assert score.ssim == pytest.approx(ssim(gaussian, target))
        assert score.blur_agreement == pytest.approx(blur_map_agreement(gaussian, image, target))
        expected = structural_measures(gaussian, image, target, mask)
        assert score.subject_sharpness == pytest.approx(expected.subject_sharpness)
        assert score.background_blur_match == pytest.approx(expected.background_blur_match)
        identity = item.scores["identity"]
        assert identity.blur_agreement == 0.0 and identity.subject_sharpness == 1
        assert item.notes == [] and item.focus_source is None
        assert item.mask_background is not None and item.mask_background.any()
    itself = scored[2].scores["lens f/2"]
    assert math.isinf(itself.psnr) and itself.blur_agreement == 1.0
    assert scored[0].scores["lens f/2"].blur_agreement > 0.7  # f/2 blurs where f/8 does, only more


def test_a_rendering_is_reused_for_the_same_photo_and_hints(pairs):
    calls = []

    def render(image, options):
        calls.append(dict(options))
        return Rendering(image.copy())

    list(score_pairs(pairs, [Renderer("plain", render)]))
    assert calls == [{}]
    calls.clear()
    told = Renderer("told", render, takes_hints=True)
    list(score_pairs(pairs, [told], focus_hint=True, aperture_hint=True))
    focus = (63.0, 55.0)  # the middle of the subject's 64x64 box
    assert calls == [{"focus": focus, "f_number": f_number, "input_f_number": 16.0} for f_number in F_NUMBERS]


def test_failures_are_row_errors_and_the_other_pairs_are_scored(pairs, tmp_path):
    (tmp_path / "f4.png").unlink()
    outcomes = list(score_pairs(pairs, [baseline_renderer("identity")]))
    assert [type(outcome) for outcome in outcomes] == [ScoredPair, RowError, ScoredPair]
    assert outcomes[1].message == f"row 3 (scene-f4): {tmp_path / 'f4.png'}: no such file"
    assert outcomes[1].exit_code == 2

    def broken(image, options):
        raise RuntimeError("out of memory\nmore detail")

    outcomes = list(score_pairs(pairs[:1], [Renderer("broken", broken)]))
    assert outcomes[0].message == "row 2 (scene-f8): rendering failed: out of memory"
    assert outcomes[0].exit_code == 1
    small = Renderer("small", lambda image, options: Rendering(image[:40]))
    assert "small: expected an (128, 192, 3) uint8 rendering" in next(score_pairs(pairs[:1], [small])).message


def test_the_visitor_sees_each_pair_with_its_images(pairs):
    seen = []
    list(score_pairs(pairs, [baseline_renderer("gaussian")], visit=lambda *args: seen.append(args)))
    assert len(seen) == 3
    scored, loaded, renderings = seen[0]
    assert scored.pair is loaded.pair and set(renderings) == {"gaussian"}
    assert renderings["gaussian"].image.shape == loaded.image.shape


def test_unknown_baseline():
    with pytest.raises(InputError, match="baseline"):
        baseline_renderer("box")


def test_a_resized_target_is_noted(pairs, tmp_path):
    Image.open(tmp_path / "f2.png").resize((96, 64)).save(tmp_path / "f2.png")
    scored = list(score_pairs(pairs, [baseline_renderer("identity")]))[2]
    assert scored.notes == ["target 96x64 resized to the photo's 192x128"]
    assert np.isfinite(scored.scores["identity"].psnr)
