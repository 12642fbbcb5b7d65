import csv
import math
from pathlib import Path

import numpy as np
import pytest

from d2f.real_lens.pairs import LensPair, read_pairs_csv
from d2f.real_lens.scoring import Renderer, Rendering, ScoredPair, baseline_renderer, score_pairs
from d2f.real_lens.sweeps import aperture_sweeps
from lens_scenes import F_NUMBERS, lens_scene, write_lens_pairs


def told_lens(reverse=False):
    """Renders the lens's photo at the f-number it is told (or at the opposite end of the range)."""
    order = dict(zip(F_NUMBERS, F_NUMBERS[::-1] if reverse else F_NUMBERS, strict=True))
    return Renderer(
        "reversed" if reverse else "lens",
        lambda image, options: Rendering(lens_scene()[1][order[options["f_number"]]]),
        takes_hints=True,
    )


def scored_pairs(folder: Path, renderers, *, mask=True):
    path = write_lens_pairs(folder)
    if not mask:
        rows = list(csv.DictReader(path.open()))
        for row in rows:
            row["focus_mask"] = ""
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return list(score_pairs(read_pairs_csv(path)[0], renderers, aperture_hint=True))


@pytest.mark.parametrize("mask", [True, False], ids=["focus mask", "widest aperture"])
def test_a_method_that_blurs_like_the_lens_follows_the_aperture(tmp_path, mask):
    renderers = [baseline_renderer("identity"), baseline_renderer("gaussian"), told_lens(), told_lens(True)]
    (sweep,) = aperture_sweeps(scored_pairs(tmp_path, renderers, mask=mask))
    assert sweep.scene == "scene" and sweep.set == "synthetic"
    assert sweep.pairs == ["scene-f8", "scene-f4", "scene-f2"] and sweep.f_numbers == list(F_NUMBERS)
    assert sweep.background == ("focus mask" if mask else "widest aperture")
    assert 1 < sweep.lens_blur[0] < sweep.lens_blur[1] < sweep.lens_blur[2]
    assert sweep.lens_order == 1.0
    assert sweep.order == {"identity": 0.0, "gaussian": 0.0, "lens": 1.0, "reversed": -1.0}
    assert sweep.blur["lens"] == sweep.lens_blur and sweep.blur_error["lens"] == 0.0
    assert sweep.blur["identity"] == [1.0] * 3
    expected = np.mean([math.log2(blur) for blur in sweep.lens_blur])
    assert sweep.blur_error["identity"] == pytest.approx(expected)
    assert sweep.blur_error["reversed"] > 0


def test_pairs_without_f_numbers_or_with_one_aperture_are_no_sweep(tmp_path):
    scored = scored_pairs(tmp_path, [baseline_renderer("identity")])
    assert len(aperture_sweeps(scored)) == 1
    assert aperture_sweeps(scored[:1]) == []

    def without_f_number(item: ScoredPair) -> ScoredPair:
        pair = item.pair
        bare = LensPair(pair.row, pair.name, pair.set, pair.original, pair.bokeh, pair.f_original, None)
        return ScoredPair(bare, item.scores, item.notes, None, item.textured, item.target_change)

    assert aperture_sweeps([without_f_number(item) for item in scored]) == []


def test_scene_names_end_before_a_separator(tmp_path):
    scored = scored_pairs(tmp_path, [baseline_renderer("identity")])
    for names, expected in [
        (["vabd0001-f8", "vabd0001-f2.8"], "vabd0001"),
        (["room_a", "room_b"], "room"),
        (["a1", "a2"], "f16.png"),  # nothing in common up to a separator: the photo's name
    ]:
        renamed = []
        for item, name in zip(scored, names, strict=False):
            pair = item.pair
            renamed_pair = LensPair(pair.row, name, pair.set, pair.original, pair.bokeh, 16.0, pair.f_bokeh)
            renamed.append(ScoredPair(renamed_pair, item.scores, [], None, item.textured, item.target_change))
        assert aperture_sweeps(renamed)[0].scene == expected
