"""``d2f.train.blur_range``: fitting the blur-range head by ridge regression."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from d2f.errors import ConfigError, InputError
from d2f.models import D2F
from d2f.train.blur_range import (
    RidgeFit,
    cross_validate,
    disparity_range,
    fit_ridge,
    photo_features,
    predict_ridge,
    with_range_head,
)
from d2f.train.config import ModelConfig
from d2f.train.model import build_model
from tiny_models import TINY_LITE

DEPTH = dataclasses.replace(TINY_LITE, predicts="depth", working_long_side=128)


def linear_data(noise: float, count: int = 80, width: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    features = rng.normal(3.0, [1, 2, 5, 0.5, 1, 1], (count, width))
    targets = features @ np.array([0.5, -0.2, 0.1, 1.0, 0.0, 0.0]) + 2.0 + noise * rng.normal(size=count)
    return features, targets


class TestDisparityRange:
    def test_spans_the_first_to_the_99th_percentile(self) -> None:
        disparity = torch.linspace(0.2, 2.2, 10001).reshape(1, 1, -1)
        assert disparity_range(disparity) == pytest.approx(2.0 * 0.98, rel=1e-6)

    def test_a_flat_map_is_refused(self) -> None:
        with pytest.raises(InputError, match=r"^disparity: the map has no depth range"):
            disparity_range(torch.ones(1, 4, 4))


class TestFitRidge:
    def test_recovers_a_linear_law_in_original_units(self) -> None:
        features, targets = linear_data(noise=0.0)
        fit = fit_ridge(features, targets, penalty=1e-9)
        np.testing.assert_allclose(predict_ridge(fit, features), targets, atol=1e-5)

    def test_a_large_penalty_predicts_the_mean(self) -> None:
        features, targets = linear_data(noise=0.0)
        fit = fit_ridge(features, targets, penalty=1e9)
        np.testing.assert_allclose(predict_ridge(fit, features), targets.mean(), atol=1e-6)

    def test_bad_shapes_and_penalties_are_refused(self) -> None:
        with pytest.raises(InputError, match=r"^features, targets: expected"):
            fit_ridge(np.zeros((4, 2)), np.zeros(3), 1.0)
        with pytest.raises(InputError, match=r"^penalty: expected a positive number"):
            fit_ridge(np.zeros((4, 2)), np.zeros(4), 0.0)


class TestCrossValidate:
    def test_prefers_little_penalty_for_a_clean_law_and_much_for_noise(self) -> None:
        penalties = (1e-3, 1e3)
        clean = cross_validate(*linear_data(noise=0.01), penalties)
        assert clean[1e-3] < clean[1e3]
        rng = np.random.default_rng(1)
        noise = cross_validate(rng.normal(size=(20, 15)), rng.normal(size=20), penalties)
        assert noise[1e3] < noise[1e-3]

    def test_needs_enough_samples_per_fold(self) -> None:
        with pytest.raises(InputError, match=r"^folds: expected 2 to 2 folds for 5 samples"):
            cross_validate(np.zeros((5, 2)), np.zeros(5), (1.0,), folds=5)


class TestWithRangeHead:
    def test_the_head_predicts_the_fitted_ridge_on_the_photo_features(self) -> None:
        torch.manual_seed(0)
        model = D2F(DEPTH).eval()
        photo = torch.rand(3, 60, 90)
        features = photo_features(model, photo).numpy()
        rng = np.random.default_rng(2)
        fit = RidgeFit(rng.normal(0, 0.01, features.shape[0]), -0.3, 1.0)
        ranged = with_range_head(model, fit)
        assert ranged.config.blur_range and not model.config.blur_range
        with torch.no_grad():
            output = ranged(photo[None])
        expected = float(np.exp(predict_ridge(fit, features[None])[0]))
        assert float(output.disparity_range[0]) == pytest.approx(expected, rel=1e-4)

    def test_the_rest_of_the_model_is_unchanged(self) -> None:
        torch.manual_seed(0)
        model = D2F(DEPTH).eval()
        ranged = with_range_head(model, RidgeFit(np.zeros(model.defocus_net.pooled_size), 0.0, 1.0))
        image = torch.rand(1, 3, 64, 96)
        with torch.no_grad():
            torch.testing.assert_close(ranged.network_outputs(image).prediction,
                                       model.network_outputs(image).prediction)

    def test_needs_a_depth_model_and_matching_weights(self) -> None:
        with pytest.raises(InputError, match=r"^model: only a model that predicts depth"):
            with_range_head(D2F(TINY_LITE), RidgeFit(np.zeros(3), 0.0, 1.0))
        with pytest.raises(InputError, match=r"^fit: expected \d+ weights, got 3"):
            with_range_head(D2F(DEPTH), RidgeFit(np.zeros(3), 0.0, 1.0))


def test_photo_features_need_eval_mode() -> None:
    with pytest.raises(InputError, match=r"^model: expected eval mode"):
        photo_features(D2F(DEPTH).train(), torch.rand(3, 32, 32))


def test_training_refuses_a_blur_range_head() -> None:
    architecture = dataclasses.replace(DEPTH, blur_range=True)
    with pytest.raises(ConfigError, match=r"^config key model.architecture.blur_range: the blur-range head"):
        build_model(ModelConfig(architecture=architecture))
