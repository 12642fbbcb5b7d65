"""``d2f app`` end to end, in headless Chromium driven by Selenium: what a person clicks, what they see.

Needs Debian's ``chromium`` and ``chromium-driver`` (``bash scripts/dev_install.sh`` installs them) and
Selenium (the ``dev`` extra); skips, saying so, only where they are missing. Set ``D2F_APP_SCREENSHOTS``
to a folder (``docs``) to keep the screenshots the run takes.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch.nn.functional as F
from PIL import Image, ImageCms

from d2f.app import AppServer, Studio
from d2f.cli.app import APP_MODEL
from d2f.io import colorize_defocus, read_image
from d2f.models import D2F, load
from d2f.pipeline import default_model, predict, render_image

webdriver = pytest.importorskip("selenium.webdriver", reason="Selenium is missing (pip install -e '.[dev]')")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "d2f" / "samples" / "coffee.jpg"
BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
DRIVER = shutil.which("chromedriver")
# The page shows JPEGs (quality 92, downloads 95): what it shows is compared with the same encoding of
# what render_image gives, allowing for rounding (the two processes' floats may differ in the last bit).
ROUNDING = 0.5 / 255
# A visible change: two levels on average (the JPEG encoding alone errs by about 0.65).
CHANGE = 2 / 255
MODEL_TAG, EXPOSURE_TAG = 0x0110, 0x829A

pytestmark = pytest.mark.skipif(
    BROWSER is None or DRIVER is None,
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver; "
    "bash scripts/dev_install.sh does it)",
)


@contextlib.contextmanager
def running_app(folder: Path, *flags: str) -> Iterator[str]:
    """``d2f app`` on a free port, in an empty working folder that must stay empty; yields its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "d2f", "app", "--port", "0", "--device", "cpu", *flags],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, f"d2f app printed no address: {line!r}"
        yield match.group(0)
        assert list(folder.iterdir()) == [], "d2f app wrote files"
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    with running_app(tmp_path_factory.mktemp("app_cwd")) as url:
        yield url


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def model() -> D2F:
    """What ``d2f app`` serves without weights options (the test app's flags give none)."""
    return load(APP_MODEL)


@pytest.fixture
def page(browser, app_url):
    browser.get(app_url)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#controls .option"))
    return browser


# -------------------------------------------------------------------------------------------- helpers


def result_seq(driver) -> int:
    return int(driver.find_element(By.ID, "result").get_attribute("data-seq"))


def wait_for_result(driver, after: int, timeout: float = 60) -> None:
    """Until a result newer than number ``after`` is shown and no request is outstanding."""
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-busy") == "0"
        and result_seq(d) > after
    )


def shown_result(driver) -> np.ndarray:
    """The image the result pane shows, as (H, W, 3) floats in [0, 1]: fetched from its own address."""
    data = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(document.getElementById("result").src).then((r) => r.arrayBuffer()).then((buffer) => {
          const bytes = new Uint8Array(buffer); let text = "";
          for (let i = 0; i < bytes.length; i += 8192) {
            text += String.fromCharCode(...bytes.subarray(i, i + 8192));
          }
          done(btoa(text));
        }).catch((error) => done("ERROR " + error));"""
    )
    assert not data.startswith("ERROR"), data
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=np.float64) / 255


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size in its header but carries no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(buffer)


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255


def as_shown(image: Image.Image, quality: int = 92) -> np.ndarray:
    """``image`` as the page shows it: through the app's JPEG encoding."""
    return as_array(jpeg_round_trip(image, quality))


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a - b).mean())


def message(driver) -> tuple[str, str]:
    element = driver.find_element(By.ID, "message")
    return element.get_attribute("class") or "", element.text


def load_sample(driver) -> None:
    before = result_seq(driver)
    driver.find_element(By.ID, "sample").click()
    wait_for_result(driver, before)


def upload(driver, path: Path) -> None:
    driver.find_element(By.ID, "file").send_keys(str(path))


def screenshot(driver, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("D2F_APP_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    # A JPEG: a tenth of the PNG's size, for the docs.
    Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB").save(path, quality=80)
    assert Image.open(path).size == tuple(driver.execute_script("return [innerWidth, innerHeight]"))


# ---------------------------------------------------------------------------------------------- tests


def clicked_focus(driver, photo, x: int, y: int) -> tuple[float, float]:
    """Click ``photo`` at (x, y) page pixels from its centre; the focus the page says it set, in the photo's
    pixels (checked against where the click landed, to a pixel)."""
    seq = result_seq(driver)
    ActionChains(driver).move_to_element_with_offset(photo, x, y).click().perform()
    wait_for_result(driver, seq)
    assert driver.find_element(By.ID, "focus-marker").is_displayed()
    said = re.search(r"Focus at (\d+), (\d+)\.", message(driver)[1])
    focus = (float(said.group(1)), float(said.group(2)))
    width, height = Image.open(SAMPLE).size
    box = driver.execute_script("return [arguments[0].clientWidth, arguments[0].clientHeight]", photo)
    landed = ((box[0] / 2 + x) / box[0] * width, (box[1] / 2 + y) / box[1] * height)
    assert abs(focus[0] - landed[0]) <= 1.5 and abs(focus[1] - landed[1]) <= 1.5, (focus, landed)
    return focus


def test_click_sets_the_focus_and_sliders_render_what_render_image_renders(page, model, tmp_path) -> None:
    # d2f app without weights options serves d2f-lite-2, which predicts depth: its depth sliders are on.
    assert page.find_element(By.ID, "option-f_number").get_attribute("disabled") is None
    load_sample(page)
    first = shown_result(page)
    assert mean_difference(first, as_shown(render_image(SAMPLE, model))) < ROUNDING

    # Drag the strength slider from 1 to 2 with the keyboard (twenty steps of 0.05), then six blades.
    seq = result_seq(page)
    page.find_element(By.ID, "option-strength").send_keys(*[Keys.ARROW_RIGHT] * 20)
    wait_for_result(page, seq)
    seq = result_seq(page)
    page.find_element(By.ID, "option-aperture_blades").send_keys(*[Keys.ARROW_RIGHT] * 4)  # 0, 3, 4, 5, 6
    wait_for_result(page, seq)
    assert page.find_element(By.CSS_SELECTOR, "output[for=option-aperture_blades]").text == "6"
    dragged = shown_result(page)
    assert mean_difference(dragged, first) > CHANGE

    # A click on the photo (left of the centre, in page pixels) moves the focus there.
    focus = clicked_focus(page, page.find_element(By.ID, "before"), -150, 0)
    shown = shown_result(page)
    expected = as_shown(render_image(SAMPLE, model, focus=focus, strength=2.0, aperture_blades=6))
    assert mean_difference(shown, expected) < ROUNDING
    assert mean_difference(shown, dragged) > CHANGE

    page.find_element(By.CSS_SELECTOR, "input[name=view][value=compare]").click()
    screenshot(page, tmp_path, "app.jpg")


def test_defocus_map_is_the_one_render_saves(page, model) -> None:
    load_sample(page)
    seq = result_seq(page)
    page.find_element(By.CSS_SELECTOR, "input[name=view][value=defocus]").click()
    wait_for_result(page, seq)
    image = read_image(SAMPLE)
    defocus = predict(model, image[None]).defocus.float()
    expected = colorize_defocus(F.interpolate(defocus, size=image.shape[-2:], mode="bilinear")[0])
    assert mean_difference(shown_result(page), as_shown(Image.fromarray(expected))) < ROUNDING


def test_full_resolution_download_keeps_the_metadata(page, model, downloads, tmp_path) -> None:
    photo = tmp_path / "camera.jpg"
    exif = Image.Exif()
    exif[MODEL_TAG] = "Test Camera"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.open(SAMPLE).save(photo, quality=95, exif=exif.tobytes(), icc_profile=profile)
    seq = result_seq(page)
    upload(page, photo)
    wait_for_result(page, seq)
    seq = result_seq(page)
    page.find_element(By.ID, "option-strength").send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)  # 0.9
    wait_for_result(page, seq)

    seq = result_seq(page)
    page.find_element(By.ID, "render-full").click()
    link = WebDriverWait(page, 120).until(lambda d: d.find_element(By.ID, "download").is_displayed()
                                          and d.find_element(By.ID, "download"))
    assert float(page.find_element(By.ID, "progress").get_attribute("value")) == 1.0
    wait_for_result(page, seq)
    link.click()
    target = downloads / "camera_bokeh.jpg"
    deadline = time.monotonic() + 30
    while not target.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    downloaded = Image.open(target)
    assert downloaded.size == Image.open(photo).size
    assert downloaded.getexif()[MODEL_TAG] == "Test Camera"
    assert downloaded.info.get("icc_profile") == profile
    expected = render_image(photo, model, strength=0.9)
    assert mean_difference(as_array(downloaded), as_shown(expected, quality=95)) < ROUNDING
    assert mean_difference(shown_result(page), as_shown(expected, quality=95)) < ROUNDING


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("corrupt.jpg", SAMPLE.read_bytes()[:5000], "corrupt.jpg: truncated or corrupt image"),
        ("notes.txt", b"not a photo at all", "notes.txt: not an image file"),
        # A PNG header that claims 10000x10000 pixels: refused before any pixel is decoded.
        ("huge.png", png_header_only(10_000, 10_000), "above the limit of 50 megapixels"),
    ],
    ids=["corrupt", "not-an-image", "too-large"],
)
def test_a_bad_upload_shows_an_error_and_the_app_goes_on(page, tmp_path, name, content, problem) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    upload(page, path)
    WebDriverWait(page, 30).until(lambda d: message(d)[0] == "error")
    assert problem in message(page)[1]
    if name == "corrupt.jpg":
        screenshot(page, tmp_path, "app_error.jpg")
    load_sample(page)  # still running
    assert message(page)[0] == "note"


def test_with_d2f_lite_a_click_keeps_its_own_focus(browser) -> None:
    server = AppServer(Studio(default_model()), 0)  # in this process: cheaper than a second d2f app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser.get(server.url)
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#controls .option"))
        load_sample(browser)
        # d2f-lite predicts defocus, not depth: a click says that it keeps its own focus, and changes nothing.
        seq = result_seq(browser)
        browser.find_element(By.ID, "before").click()
        kind, text = message(browser)
        assert kind == "note" and "keeps its own focus" in text
        assert result_seq(browser) == seq
        assert not browser.find_element(By.ID, "focus-marker").is_displayed()
        assert browser.find_element(By.ID, "option-focus_range").get_attribute("disabled") == "true"
    finally:
        server.shutdown()
        server.server_close()
