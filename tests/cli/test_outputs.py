"""Where the command line writes and what it says: default outputs, --skip-existing, read-only folders,
unknown extensions, 'wrote PATH' once per file (silenced by --quiet), --save-depth."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from d2f.cli import main
from d2f.cli.demo import DEFAULT_OUTPUT
from d2f.errors import D2FError, InputError
from d2f.io import colorize_defocus, read_image, write_image
from d2f.models import D2F, load
from d2f.pipeline import predict
from tiny_models import TINY_LITE

#: A tiny model that predicts depth, at a working size small enough to be fast.
DEPTH = dataclasses.replace(TINY_LITE, predicts="depth", working_long_side=64)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return D2F(TINY_LITE).eval().save_pretrained(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def depth_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return D2F(DEPTH).eval().save_pretrained(tmp_path_factory.mktemp("depth_weights"))


def photo(path: Path, height: int = 37, width: int = 53, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def wrote(stderr: str) -> list[str]:
    """The paths of the 'wrote PATH' lines, in order."""
    return [line.removeprefix("wrote ") for line in stderr.splitlines() if line.startswith("wrote ")]


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# ------------------------------------------------------------------------------------ default outputs


def test_without_output_the_result_goes_beside_the_photo(tmp_path: Path, weights: Path, capsys) -> None:
    source = photo(tmp_path / "photo.jpg")
    code, stderr = run(capsys, "render", source, "--weights", weights)
    assert code == 0 and wrote(stderr) == [str(tmp_path / "photo_bokeh.jpg")]
    before = (tmp_path / "photo_bokeh.jpg").read_bytes()
    code, stderr = run(capsys, "render", source, "--weights", weights)  # never overwritten silently
    assert code == 2 and "photo_bokeh.jpg: already exists" in stderr and "--overwrite" in stderr
    assert (tmp_path / "photo_bokeh.jpg").read_bytes() == before
    assert run(capsys, "render", source, "--weights", weights, "--overwrite")[0] == 0


def test_a_folder_without_output_does_not_render_its_earlier_results(
    tmp_path: Path, weights: Path, capsys
) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    photo(folder / "a.png"), photo(folder / "b.png", seed=1)
    assert run(capsys, "render", folder, "--weights", weights, "--save-defocus")[0] == 0
    rendered = ["a.png", "a_bokeh.png", "a_bokeh_defocus.png", "a_bokeh_defocus_color.png"]
    assert names(folder) == sorted(rendered + [name.replace("a", "b", 1) for name in rendered])
    code, stderr = run(capsys, "render", folder, "--weights", weights, "--save-defocus", "--skip-existing")
    assert code == 0 and wrote(stderr) == [] and len(names(folder)) == 8
    assert "d2f render: skipped 2 of 2 inputs whose outputs all exist" in stderr


def test_demo_writes_into_the_current_folder_by_default(
    tmp_path: Path, weights: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, stderr = run(capsys, "demo", "--weights", weights)
    assert code == 0 and wrote(stderr) == [str(DEFAULT_OUTPUT)]
    with Image.open(tmp_path / DEFAULT_OUTPUT) as result:
        assert result.size == (600, 400)


# ------------------------------------------------------------------------------------ --skip-existing


def test_skip_existing_renders_only_what_is_missing(tmp_path: Path, weights: Path, capsys) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo(inputs / "a.png"), photo(inputs / "b.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"kept")
    code, stderr = run(capsys, "render", inputs, "-o", out, "--weights", weights)
    assert code == 2 and "a.png: already exists" in stderr and "--skip-existing" in stderr
    (out / "b.png").unlink()
    code, stderr = run(capsys, "render", inputs, "-o", out, "--weights", weights, "--skip-existing")
    assert code == 0 and wrote(stderr) == [str(out / "b.png")] and "error" not in stderr
    assert "skipped 1 of 2 inputs" in stderr
    assert (out / "a.png").read_bytes() == b"kept"
    # With maps, only the files that are missing are written; the existing bokeh stays.
    code, stderr = run(
        capsys, "render", inputs, "-o", out, "--weights", weights, "--skip-existing", "--save-defocus"
    )
    assert code == 0 and (out / "a.png").read_bytes() == b"kept"
    assert sorted(wrote(stderr)) == sorted(
        str(out / name)
        for name in ("a_defocus.png", "a_defocus_color.png", "b_defocus.png", "b_defocus_color.png")
    )


def test_skip_existing_and_overwrite_contradict_each_other(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["render", str(photo(tmp_path / "a.png")), "--skip-existing", "--overwrite"])
    assert exit_info.value.code == 2 and "not allowed with" in capsys.readouterr().err


# -------------------------------------------------------------------------------- read-only folders


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """Make ``folder`` unwritable, even for root (tests run as root, where chmod stops nothing): a
    read-only bind mount where the test may mount, else the immutable attribute. Yields the reason a
    write fails there, as d2f words it."""
    folder.mkdir()

    def ran(*command: str) -> bool:
        return subprocess.run(command, capture_output=True).returncode == 0

    if ran("mount", "--bind", str(folder), str(folder)):
        try:
            if ran("mount", "-o", "remount,bind,ro", str(folder)):
                yield "read-only file system"
                return
        finally:
            ran("umount", str(folder))
    if ran("chattr", "+i", str(folder)):
        try:
            yield "operation not permitted"
        finally:
            ran("chattr", "-i", str(folder))
        return
    if os.access(folder, os.W_OK) and os.geteuid() == 0:
        pytest.skip("cannot make a folder read-only here: no bind mount, no chattr, and root ignores chmod")
    folder.chmod(0o555)
    try:
        yield "permission denied"
    finally:
        folder.chmod(0o755)


def test_read_only_output_folder_is_one_clear_line(tmp_path: Path, weights: Path, capsys) -> None:
    source = photo(tmp_path / "good.jpg")
    folder = tmp_path / "romnt"
    with read_only(folder) as reason:
        code, stderr = run(
            capsys, "render", source, "-o", folder / "out.jpg", "--weights", weights, "--save-defocus"
        )
        assert names(folder) == []  # nothing left behind, no temporary file
    assert code == 1
    assert stderr == f"d2f render: error: {folder / 'out.jpg'}: cannot write: {reason}\n"


def test_read_only_folder_raises_a_d2f_error_in_python(tmp_path: Path) -> None:
    folder = tmp_path / "romnt"
    with read_only(folder) as reason, pytest.raises(D2FError) as error:
        write_image(folder / "out.jpg", Image.new("RGB", (4, 4)))
    assert str(error.value) == f"{folder / 'out.jpg'}: cannot write: {reason}"
    assert error.value.exit_code == 1 and not isinstance(error.value, InputError)


def test_a_failed_map_removes_the_files_of_its_photo(
    tmp_path: Path, weights: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import d2f.io

    def full_disk(path: Path, *args: object, **kwargs: object) -> None:
        raise D2FError(f"{path}: cannot write: no space left on device")

    monkeypatch.setattr(d2f.io, "write_defocus_color", full_disk)
    out = tmp_path / "out"
    code, stderr = run(
        capsys,
        "render",
        photo(tmp_path / "a.png"),
        "-o",
        out / "a.png",
        "--weights",
        weights,
        "--save-defocus",
    )
    assert code == 1 and "a_defocus_color.png: cannot write: no space left on device" in stderr
    assert wrote(stderr) == [] and names(out) == []


# ------------------------------------------------------------------------------- names and messages


def test_an_unknown_output_extension_is_refused(tmp_path: Path, weights: Path, capsys) -> None:
    source = photo(tmp_path / "a.png")
    code, stderr = run(capsys, "render", source, "-o", tmp_path / "out.xyz", "--weights", weights)
    assert code == 2 and "'.xyz' is not an image format" in stderr and "create it first" in stderr
    assert not (tmp_path / "out.xyz").exists()
    (tmp_path / "results.v2").mkdir()  # an existing folder with a dot in its name is a folder
    assert run(capsys, "render", source, "-o", tmp_path / "results.v2", "--weights", weights)[0] == 0
    assert names(tmp_path / "results.v2") == ["a.png"]


def test_each_file_is_reported_once_and_quiet_silences(tmp_path: Path, weights: Path, capsys) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo(inputs / "a.png"), photo(inputs / "b.png", seed=1)
    out = tmp_path / "out"
    code, stderr = run(capsys, "render", inputs, "-o", out, "--weights", weights, "--save-defocus")
    expected = [
        str(out / f"{stem}{suffix}")
        for stem in "ab"
        for suffix in (".png", "_defocus.png", "_defocus_color.png")
    ]
    assert code == 0 and wrote(stderr) == expected
    for argv in (
        ["render", inputs, "-o", tmp_path / "quiet", "--quiet"],
        ["--quiet", "demo", "-o", tmp_path / "d.png"],
    ):
        code, stderr = run(capsys, *argv, "--weights", weights, "--save-defocus")
        assert code == 0 and stderr == ""
    assert names(tmp_path / "quiet") == [Path(path).name for path in expected]
    code, stderr = run(capsys, "demo", "-o", tmp_path / "demo.png", "--weights", weights, "--save-defocus")
    assert wrote(stderr) == [
        str(tmp_path / name) for name in ("demo.png", "demo_defocus.png", "demo_defocus_color.png")
    ]


def test_eval_reports_its_csv_on_stderr(tmp_path: Path, capsys) -> None:
    for folder in ("original", "bokeh"):
        (tmp_path / "pairs" / folder).mkdir(parents=True)
        photo(tmp_path / "pairs" / folder / "1.png")
    report = tmp_path / "report.csv"
    code = main(
        [
            "eval",
            "--data",
            str(tmp_path / "pairs"),
            "--baseline",
            "identity",
            "--no-lpips",
            "--out",
            str(report),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and wrote(err) == [str(report)] and "wrote" not in out and report.is_file()


def test_the_size_limit_error_names_its_option(tmp_path: Path, weights: Path, capsys) -> None:
    source = photo(tmp_path / "big.png", 600, 1000)
    code, stderr = run(
        capsys, "render", source, "-o", tmp_path / "x.png", "--weights", weights, "--max-megapixels", "0.5"
    )
    assert code == 2 and "above the limit of 0.5 megapixels" in stderr and "--max-megapixels" in stderr


# ------------------------------------------------------------------------------------- --save-depth


def test_save_depth_writes_the_disparity_at_the_photo_size(
    tmp_path: Path, depth_weights: Path, capsys
) -> None:
    source = photo(tmp_path / "a.png")
    code, stderr = run(
        capsys, "render", source, "-o", tmp_path / "out.png", "--weights", depth_weights, "--save-depth"
    )
    assert code == 0
    assert wrote(stderr) == [
        str(tmp_path / name) for name in ("out.png", "out_depth.png", "out_depth_color.png")
    ]
    with (
        Image.open(tmp_path / "out_depth.png") as depth,
        Image.open(tmp_path / "out_depth_color.png") as color,
    ):
        assert (
            depth.mode == "I;16" and depth.size == (53, 37) and color.mode == "RGB" and color.size == (53, 37)
        )
        saved = np.asarray(depth).astype(np.float64) / 65535.0
    image = read_image(source)
    disparity = predict(load(depth_weights), image[None], device="cpu").disparity
    expected = torch.nn.functional.interpolate(disparity, size=(37, 53), mode="bilinear", align_corners=False)
    assert np.abs(saved - expected[0, 0].numpy()).max() < 1e-4
    # The colour view is the defocus colour map of the same values: far black, near pale yellow.
    colors = np.asarray(Image.open(tmp_path / "out_depth_color.png")).astype(int)
    assert np.abs(colors - colorize_defocus(torch.from_numpy(saved)).astype(int)).max() <= 1


def test_save_depth_on_a_model_without_depth_is_one_line(tmp_path: Path, weights: Path, capsys) -> None:
    code, stderr = run(
        capsys,
        "render",
        photo(tmp_path / "a.png"),
        "-o",
        tmp_path / "out.png",
        "--weights",
        weights,
        "--save-depth",
    )
    assert code == 2 and stderr.count("\n") == 1
    assert stderr.startswith("d2f render: error: --save-depth: this model predicts defocus, not depth")
    assert names(tmp_path) == ["a.png"]
