"""``d2f render`` through ``d2f.cli.main``: outputs, exit codes and one-line errors for bad input."""

from __future__ import annotations

import errno
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import d2f.pipeline
from d2f.cli import main
from d2f.errors import ImageReadError
from d2f.models import D2F, D2FConfig, presets
from d2f.models.checkpoint import OFFICIAL_PREFIXES


@pytest.fixture(scope="module")
def model() -> D2F:
    torch.manual_seed(0)
    return D2F(D2FConfig()).eval()


@pytest.fixture(scope="module")
def weights(model: D2F, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model.save_pretrained(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def official(model: D2F, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The model saved as the paper's two checkpoint files, under the reference implementation's keys."""
    folder = tmp_path_factory.mktemp("official")
    inverse = [(new, old) for old, new in OFFICIAL_PREFIXES]

    def reference_key(key: str) -> str:
        return next(old + key[len(new) :] for new, old in inverse if key.startswith(new))

    state = model.state_dict()
    stage1 = {
        reference_key(k): v for k, v in state.items() if k.startswith(("defocus_net.", "radiance_net."))
    }
    stage2 = {reference_key(k): v for k, v in state.items() if k.startswith("fusion_net.")}
    torch.save({"net": stage1, "optimizer": {}}, folder / "stage1.pth")
    torch.save(stage2, folder / "stage2.pth")
    return folder / "stage1.pth", folder / "stage2.pth"


def photo(path: Path, height: int = 37, width: int = 53, seed: int = 0, **options: object) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, **options)
    return path


def render(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    """Run ``d2f render``; returns the exit code and stderr."""
    code = main(["render", *(str(arg) for arg in argv)])
    return code, capsys.readouterr().err


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("d2f render: error:")]


def assert_clean_failure(stderr: str, *names: object) -> None:
    """One error line per named file, each naming it, and no traceback."""
    assert "Traceback" not in stderr
    lines = error_lines(stderr)
    assert len(lines) == len(names), stderr
    for line, name in zip(lines, names, strict=True):
        assert str(name) in line


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# ------------------------------------------------------------------------------------------ rendering


def test_help_lists_render(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "render" in capsys.readouterr().out


def test_one_file_with_project_weights(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path, model: D2F
) -> None:
    source = photo(tmp_path / "tiny.png")
    code, stderr = render(capsys, source, "-o", tmp_path / "out.png", "--weights", weights, "--device", "cpu")
    assert code == 0 and stderr == f"wrote {tmp_path / 'out.png'}\n"  # no progress bar for one image
    with Image.open(tmp_path / "out.png") as result:
        assert result.size == (53, 37) and result.mode == "RGB"
        expected = d2f.pipeline.render_image(np.asarray(Image.open(source)), model, "cpu")
        assert np.array_equal(np.asarray(result), expected)


def test_official_checkpoints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, official: tuple[Path, Path], model: D2F
) -> None:
    source = photo(tmp_path / "photo.png", 70, 90)
    output = tmp_path / "a.png"
    code, _ = render(capsys, source, "-o", output, "--stage1", official[0], "--stage2", official[1])
    assert code == 0
    expected = d2f.pipeline.render_image(np.asarray(Image.open(source)), model, "cpu")
    assert np.array_equal(np.asarray(Image.open(output)), expected)


def test_output_format_follows_extension_and_quality(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path, model: D2F
) -> None:
    source = photo(tmp_path / "in.png", 96, 130)
    assert render(capsys, source, "-o", tmp_path / "low.jpg", "--weights", weights, "--quality", "5")[0] == 0
    with Image.open(tmp_path / "low.jpg") as low:
        assert low.format == "JPEG" and low.size == (130, 96)
    expected = Image.fromarray(d2f.pipeline.render_image(np.asarray(Image.open(source)), model, "cpu"))
    expected.save(tmp_path / "expected_q5.jpg", quality=5)
    expected.save(tmp_path / "expected_q95.jpg", quality=95)
    assert (tmp_path / "low.jpg").read_bytes() == (tmp_path / "expected_q5.jpg").read_bytes()
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "expected_q95.jpg").stat().st_size / 2


def test_folder_in_folder_out(capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path) -> None:
    inputs = tmp_path / "photos"
    inputs.mkdir()
    photo(inputs / "b.jpg", 40, 30, seed=1)
    photo(inputs / "a.png", 33, 47, seed=2)
    (inputs / "notes.txt").write_text("not an image")
    (inputs / "nested").mkdir()
    photo(inputs / "nested" / "deep.png")
    code, stderr = render(capsys, inputs, "-o", tmp_path / "results" / "today", "--weights", weights)
    assert code == 0 and not error_lines(stderr)
    assert "2/2" in stderr  # the progress bar, on stderr
    output = tmp_path / "results" / "today"
    assert files_in(output) == ["a.png", "b.jpg"]
    assert Image.open(output / "a.png").size == (47, 33)
    assert Image.open(output / "b.jpg").format == "JPEG"


def test_several_files_into_a_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path
) -> None:
    first, second = photo(tmp_path / "one.png"), photo(tmp_path / "two.bmp", 21, 31)
    code, _ = render(capsys, first, second, "-o", tmp_path / "out", "--weights", weights)
    assert code == 0 and files_in(tmp_path / "out") == ["one.png", "two.bmp"]
    assert Image.open(tmp_path / "out" / "two.bmp").size == (31, 21)


def test_save_defocus(capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path) -> None:
    source = photo(tmp_path / "in.png", 45, 61)
    code, _ = render(
        capsys, source, "-o", tmp_path / "out" / "shot.jpg", "--weights", weights, "--save-defocus"
    )
    assert code == 0
    assert files_in(tmp_path / "out") == ["shot.jpg", "shot_defocus.png", "shot_defocus_color.png"]
    with Image.open(tmp_path / "out" / "shot_defocus.png") as defocus:
        assert defocus.mode == "I;16" and defocus.size == (61, 45)
    with Image.open(tmp_path / "out" / "shot_defocus_color.png") as colour:
        assert colour.mode == "RGB" and colour.size == (61, 45)


def test_exif_orientation(capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    source = photo(tmp_path / "turned.jpg", 30, 64, exif=exif)
    assert render(capsys, source, "-o", tmp_path / "out.png", "--weights", weights)[0] == 0
    assert Image.open(tmp_path / "out.png").size == (30, 64)


@pytest.mark.parametrize("name", ["out.jpg", "out.png"])
def test_output_keeps_the_colour_profile_and_exif(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path, name: str
) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112], exif[0x0110] = 6, "Test Camera"  # orientation, model
    source = photo(tmp_path / "turned.jpg", 30, 64, exif=exif.tobytes(), icc_profile=profile)
    assert render(capsys, source, "-o", tmp_path / name, "--weights", weights)[0] == 0
    with Image.open(tmp_path / name) as output:
        assert output.size == (30, 64) and output.info["icc_profile"] == profile
        assert output.getexif()[0x0110] == "Test Camera"
        assert 0x0112 not in output.getexif()  # already upright: a viewer must not turn it again


def test_colour_modes_render(capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path) -> None:
    inputs = tmp_path / "modes"
    inputs.mkdir()
    # Every conversion is checked pixel by pixel in tests/test_io.py; here the awkward ones end to end.
    modes = {"rgba.png": "RGBA", "deep.png": "I;16", "cmyk.jpg": "CMYK"}
    for name, mode in modes.items():
        Image.new(mode, (41, 29)).save(inputs / name)
        assert Image.open(inputs / name).mode == mode
    code, stderr = render(capsys, inputs, "-o", tmp_path / "out", "--weights", weights)
    assert code == 0 and not error_lines(stderr)
    for name in modes:
        with Image.open(tmp_path / "out" / name) as result:
            assert result.mode == "RGB" and result.size == (41, 29)


# ----------------------------------------------------------------------------------------- bad input


def test_without_weights_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presets, "BUNDLE_ROOT", tmp_path / "no-weights")  # installed without a bundle
    code, stderr = render(capsys, photo(tmp_path / "in.png"), "-o", tmp_path / "out" / "x.png")
    assert code == 2
    assert_clean_failure(stderr, "no model available")
    assert "--stage1" in stderr and "--weights" in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda folder: folder / "missing.png", "no such file or folder"),
        (lambda folder: _write(folder / "text.png", b"hello, not an image"), "not an image"),
        (lambda folder: _write(folder / "empty.jpg", b""), "empty"),
        (lambda folder: _write(folder / "zero.png", _png_header(0, 16)), "zero width or height"),
        (lambda folder: _truncated_jpeg(folder / "cut.jpg"), "truncated"),
        (lambda folder: photo(folder / "big.png", 600, 1000), "above the limit of 0.5 megapixels"),
    ],
    ids=["missing", "not-an-image", "empty", "zero-sized", "truncated", "too-large"],
)
def test_bad_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path, make, problem: str
) -> None:
    source = make(tmp_path)
    output = tmp_path / "out"
    code, stderr = render(
        capsys, source, "-o", output / "x.png", "--weights", weights, "--max-megapixels", "0.5"
    )
    assert code == 2
    assert_clean_failure(stderr, source)
    assert problem in stderr
    assert not output.exists()


def test_bad_image_with_debug_shows_the_error(tmp_path: Path, weights: Path) -> None:
    source = _write(tmp_path / "text.png", b"not an image")
    with pytest.raises(ImageReadError, match="not an image"):
        main(["render", str(source), "-o", str(tmp_path / "x.png"), "--weights", str(weights), "--debug"])


def test_empty_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, stderr = render(capsys, tmp_path / "empty", "-o", tmp_path / "out")
    assert code == 2
    assert_clean_failure(stderr, tmp_path / "empty")
    assert "no image files" in stderr


def test_one_bad_file_among_good_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo(inputs / "a.png")
    _truncated_jpeg(inputs / "b.jpg")
    photo(inputs / "c.png", seed=3)
    code, stderr = render(
        capsys, inputs, tmp_path / "missing.png", "-o", tmp_path / "out", "--weights", weights
    )
    assert code == 2
    assert_clean_failure(stderr, tmp_path / "missing.png", inputs / "b.jpg")
    assert "2 of 4 inputs failed" in stderr
    assert files_in(tmp_path / "out") == ["a.png", "c.png"]


def test_existing_output_is_kept_without_overwrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path
) -> None:
    source, output = photo(tmp_path / "in.png"), tmp_path / "out.png"
    output.write_bytes(b"precious")
    code, stderr = render(capsys, source, "-o", output, "--weights", weights)
    assert code == 2 and output.read_bytes() == b"precious"
    assert_clean_failure(stderr, output)
    assert "--overwrite" in stderr
    assert render(capsys, source, "-o", output, "--weights", weights, "--overwrite")[0] == 0
    assert Image.open(output).size == (53, 37)
    assert files_in(tmp_path) == ["in.png", "out.png"]


def test_existing_defocus_output_is_kept_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path
) -> None:
    source = photo(tmp_path / "in.png")
    (tmp_path / "out_defocus.png").write_bytes(b"precious")
    code, stderr = render(capsys, source, "-o", tmp_path / "out.png", "--weights", weights, "--save-defocus")
    assert code == 2 and "out_defocus.png: already exists" in stderr
    assert files_in(tmp_path) == ["in.png", "out_defocus.png"]


def test_output_never_replaces_its_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path
) -> None:
    source = photo(tmp_path / "in.png")
    before = source.read_bytes()
    code, stderr = render(capsys, source, "-o", source, "--weights", weights, "--overwrite")
    assert code == 2 and "replace the input" in stderr and source.read_bytes() == before


def test_two_inputs_with_the_same_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path
) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    first, second = photo(tmp_path / "x" / "same.png"), photo(tmp_path / "y" / "same.png", seed=5)
    code, stderr = render(capsys, first, second, "-o", tmp_path / "out", "--weights", weights, "--overwrite")
    assert code == 2
    assert_clean_failure(stderr, second)
    assert "also the output of" in stderr
    assert files_in(tmp_path / "out") == ["same.png"]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--stage1", "a.pth"], "--stage1 and --stage2 go together"),
        (["--weights", "w", "--stage1", "a", "--stage2", "b"], "cannot be combined"),
        (["--quality", "0"], "--quality"),
        (["--max-megapixels", "0"], "--max-megapixels"),
        (["--device", "tpu"], "device"),
    ],
)
def test_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], problem: str
) -> None:
    code, stderr = render(capsys, photo(tmp_path / "in.png"), "-o", tmp_path / "out.png", *extra)
    assert code == 2
    assert_clean_failure(stderr, problem)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("value", ["-5,10", "-0.5,3"])
def test_a_negative_focus_is_one_line_not_the_usage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    code, stderr = render(capsys, photo(tmp_path / "in.png"), "-o", tmp_path / "out.png", "--focus", value)
    assert code == 2 and "usage" not in stderr
    assert stderr.strip().splitlines() == [
        f"d2f render: error: --focus: expected two finite numbers x,y >= 0 (pixels of the input), got "
        f"({float(value.split(',')[0])}, {float(value.split(',')[1])})"
    ]
    assert not (tmp_path / "out.png").exists()


def test_cuda_requested_without_cuda(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, stderr = render(capsys, photo(tmp_path / "in.png"), "-o", tmp_path / "out.png", "--device", "cuda")
    assert code == 2
    assert_clean_failure(stderr, "CUDA is not available")


def test_several_inputs_need_an_output_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    first, second = photo(tmp_path / "a.png"), photo(tmp_path / "b.png")
    code, stderr = render(capsys, first, second, "-o", tmp_path / "out.png")
    assert code == 2
    assert_clean_failure(stderr, tmp_path / "out.png")
    assert "must be a folder" in stderr and not (tmp_path / "out.png").exists()


# ---------------------------------------------------------------------------------------- checkpoints


def render_checkpoints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stage1: object, stage2: object
) -> tuple[int, str]:
    """Render a small photo in ``tmp_path`` to ``tmp_path / "out.png"`` with these checkpoints."""
    return render(
        capsys, photo(tmp_path / "in.png"), "-o", tmp_path / "out.png", "--stage1", stage1, "--stage2", stage2
    )


def test_checkpoint_that_is_not_a_checkpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, official: tuple[Path, Path]
) -> None:
    fake = _write(tmp_path / "stage1.pth", b"definitely not a checkpoint")
    code, stderr = render_checkpoints(capsys, tmp_path, fake, official[1])
    assert code == 2
    assert_clean_failure(stderr, fake)
    assert not (tmp_path / "out.png").exists()


def test_checkpoint_that_is_a_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, official: tuple[Path, Path]
) -> None:
    code, stderr = render_checkpoints(capsys, tmp_path, official[0], tmp_path)
    assert code == 2
    assert_clean_failure(stderr, tmp_path)
    assert "directory" in stderr


def test_checkpoint_with_wrong_keys(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, official: tuple[Path, Path]
) -> None:
    wrong = tmp_path / "stage2.pth"
    torch.save({"blend.something.weight": torch.zeros(3)}, wrong)
    code, stderr = render_checkpoints(capsys, tmp_path, official[0], wrong)
    assert code == 2
    assert_clean_failure(stderr, wrong)
    assert "missing keys" in stderr and "unexpected keys" in stderr


def test_weights_that_are_not_safetensors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((weights / "config.json").read_text())
    _write(broken / "model.safetensors", b"garbage" * 10)
    code, stderr = render(capsys, photo(tmp_path / "in.png"), "-o", tmp_path / "out.png", "--weights", broken)
    assert code == 2
    assert_clean_failure(stderr, broken / "model.safetensors")


class _WritesAFile:
    """A pickle payload: unpickling it calls ``open(marker, "w")``, creating the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_malicious_pickle_runs_no_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, official: tuple[Path, Path]
) -> None:
    # The payload works: an unsafe load of the same kind of file creates its marker.
    proof_marker, proof = tmp_path / "proof-marker", tmp_path / "proof.pth"
    torch.save({"net": _WritesAFile(proof_marker)}, proof)
    with open(proof, "rb") as file:
        torch.load(file, weights_only=False)
    assert proof_marker.exists()

    marker, evil = tmp_path / "marker", tmp_path / "evil.pth"
    torch.save({"net": _WritesAFile(marker)}, evil)
    code, stderr = render_checkpoints(capsys, tmp_path, evil, official[1])
    assert code == 2
    assert_clean_failure(stderr, evil)
    assert not marker.exists()
    assert not (tmp_path / "out.png").exists()


# -------------------------------------------------------------------------------------- runtime errors


def test_runtime_failure_is_exit_1_and_others_still_render(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_predict = d2f.pipeline.predict

    def fail_on_tall_images(model: D2F, images: torch.Tensor, *args: object, **kwargs: object):
        if images.shape[-2] > 50:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nmore details on a second line")
        return real_predict(model, images, *args, **kwargs)

    monkeypatch.setattr(d2f.pipeline, "predict", fail_on_tall_images)
    tall, small = photo(tmp_path / "tall.png", 60, 20), photo(tmp_path / "small.png")
    code, stderr = render(capsys, tall, small, "-o", tmp_path / "out", "--weights", weights)
    assert code == 1
    assert_clean_failure(stderr, tall)
    assert "rendering failed: CUDA out of memory" in stderr and "second line" not in stderr
    assert files_in(tmp_path / "out") == ["small.png"]


def test_write_failure_leaves_no_partial_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = photo(tmp_path / "in.png")
    (tmp_path / "out").mkdir()

    def disk_full(self: Image.Image, file: object, *args: object, **kwargs: object) -> None:
        file.write(b"\x89PNG half")  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    code, stderr = render(capsys, source, "-o", tmp_path / "out" / "x.png", "--weights", weights)
    assert code == 1
    assert_clean_failure(stderr, tmp_path / "out" / "x.png")
    assert "cannot write: no space left on device" in stderr
    assert files_in(tmp_path / "out") == []


# ------------------------------------------------------------------------------------------- helpers


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def _truncated_jpeg(path: Path) -> Path:
    photo(path, 64, 64, quality=90)
    return _write(path, path.read_bytes()[: path.stat().st_size // 2])


def test_only_an_option_takes_a_value_that_starts_with_a_minus() -> None:
    from d2f.cli import _attach_negative_values

    assert _attach_negative_values(["render", "a.jpg", "--focus", "-5,10", "--strength", "-1"]) == [
        "render", "a.jpg", "--focus=-5,10", "--strength=-1"
    ]
    # After "--" everything is an input, and an option already given its value keeps it.
    assert _attach_negative_values(["render", "--", "-5.jpg"]) == ["render", "--", "-5.jpg"]
    assert _attach_negative_values(["--focus=1,2", "-5.jpg"]) == ["--focus=1,2", "-5.jpg"]
