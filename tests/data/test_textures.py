import numpy as np
import pytest
import torch
from PIL import Image

from d2f.data.shapes import SHAPE_KINDS, random_shape
from d2f.data.textures import (
    PROCEDURAL_KINDS,
    TextureBank,
    collect_textures,
    procedural_texture,
    resolve_textures,
    texture_kind,
)
from d2f.errors import DataError


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("kind", PROCEDURAL_KINDS)
def test_procedural_textures(kind):
    texture = procedural_texture(rng(), (48, 70), kind)
    assert texture.shape == (3, 48, 70) and texture.dtype == torch.float32
    assert float(texture.min()) >= 0 and float(texture.max()) <= 1
    assert float(texture.std()) > 0.02  # a pattern, not a flat colour
    torch.testing.assert_close(procedural_texture(rng(), (48, 70), kind), texture)  # deterministic
    assert not torch.equal(procedural_texture(rng(1), (48, 70), kind), texture)


def test_unknown_procedural_kind():
    with pytest.raises(DataError, match="kind"):
        procedural_texture(rng(), (8, 8), "plaid")


@pytest.mark.parametrize("kind", SHAPE_KINDS)
def test_shapes_are_antialiased_masks_filling_their_box(kind, monkeypatch):
    import d2f.data.shapes as shapes

    monkeypatch.setattr(shapes, "SHAPE_KINDS", {kind: 1.0})
    drawn, alpha = random_shape(rng(3), (60, 80))
    assert drawn == kind
    assert alpha.shape == (1, 60, 80)
    assert float(alpha.min()) >= 0 and float(alpha.max()) == pytest.approx(1)
    assert 0.1 < float(alpha.mean()) < 0.95
    assert bool(((alpha > 0) & (alpha < 1)).any())  # soft edges


def test_builtin_photos():
    bank = TextureBank.builtin()
    assert bank.photos and not bank.cutouts
    texture = bank.photo_texture(rng(), (40, 90))
    assert texture.shape == (3, 40, 90)
    assert float(texture.min()) >= 0 and float(texture.max()) <= 1
    torch.testing.assert_close(TextureBank.builtin().photo_texture(rng(), (40, 90)), texture)
    assert TextureBank.procedural_only().photo_texture(rng(), (4, 4)) is None
    assert isinstance(resolve_textures(None), TextureBank)


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


class TestFolder:
    def test_photos_and_cutouts(self, tmp_path):
        noise = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
        save(tmp_path / "a" / "photo.jpg", noise)
        cutout = np.zeros((80, 80, 4), dtype=np.uint8)
        cutout[20:60, 10:70] = (200, 30, 40, 255)
        save(tmp_path / "b" / "stamp.png", cutout)
        (tmp_path / "notes.txt").write_text("not an image")
        bank = TextureBank.from_folder(tmp_path)
        assert [p.rsplit("/", 1)[-1] for p in bank.photos] == ["photo.jpg"]
        assert [p.rsplit("/", 1)[-1] for p in bank.cutouts] == ["stamp.png"]
        assert bank.photo_texture(rng(), (30, 40)).shape == (3, 30, 40)
        color, alpha = bank.cutout(rng(), (32, 48))
        assert color.shape == (3, 32, 48) and alpha.shape == (1, 32, 48)
        # Fitted into the box with its aspect ratio kept: 40x60 becomes 32x48, filling it.
        assert float(alpha.mean()) > 0.9
        torch.testing.assert_close(color[:, 16, 24], torch.tensor([200, 30, 40]) / 255)
        # Picklable for DataLoader workers, without the decoded images.
        import pickle

        assert pickle.loads(pickle.dumps(bank))._cache == {}

    def test_cache_keeps_the_newest_images_within_its_bytes(self, tmp_path):
        for index in range(3):
            save(tmp_path / f"photo{index}.png", np.full((70, 100, 3), 40 * index, dtype=np.uint8))
        one_image = 70 * 100 * 3
        bank = TextureBank(sorted(map(str, tmp_path.glob("*.png"))), cache_bytes=2 * one_image)
        for source in bank.photos:
            assert bank._load(source).nbytes == one_image
        assert list(bank._cache) == bank.photos[1:]
        bank._load(bank.photos[1])  # a hit makes it the newest
        bank._load(bank.photos[0])
        assert list(bank._cache) == [bank.photos[1], bank.photos[0]]
        tiny = TextureBank(bank.photos, cache_bytes=1)  # the image just decoded always stays
        tiny._load(bank.photos[2])
        assert list(tiny._cache) == [bank.photos[2]]

    def test_missing_folder(self, tmp_path):
        with pytest.raises(DataError, match="does not exist"):
            TextureBank.from_folder(tmp_path / "nowhere")

    def test_file_instead_of_folder(self, tmp_path):
        (tmp_path / "file.png").write_bytes(b"x")
        with pytest.raises(DataError, match="got a file"):
            TextureBank.from_folder(tmp_path / "file.png")

    def test_empty_folder(self, tmp_path):
        with pytest.raises(DataError, match="is empty"):
            TextureBank.from_folder(tmp_path)

    def test_no_images(self, tmp_path):
        (tmp_path / "readme.md").write_text("hello")
        with pytest.raises(DataError, match="holds no images"):
            TextureBank.from_folder(tmp_path)

    def test_only_broken_images(self, tmp_path):
        (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        save(tmp_path / "tiny.png", np.zeros((8, 8, 3), dtype=np.uint8))
        with pytest.raises(DataError, match="no readable images"):
            TextureBank.from_folder(tmp_path)

    def test_broken_images_among_good_ones_are_skipped_with_a_warning(self, tmp_path):
        (tmp_path / "broken.png").write_bytes(b"garbage")
        save(tmp_path / "good.png", np.full((70, 70, 3), 90, dtype=np.uint8))
        with pytest.warns(UserWarning, match="skipped 1 unusable"):
            bank = TextureBank.from_folder(tmp_path)
        assert len(bank.photos) == 1

    def test_unreadable_file_at_load_time(self, tmp_path):
        save(tmp_path / "good.png", np.full((70, 70, 3), 90, dtype=np.uint8))
        bank = TextureBank.from_folder(tmp_path)
        (tmp_path / "good.png").write_bytes(b"truncated")
        with pytest.raises(DataError, match=r"good\.png: cannot read texture image"):
            bank.photo_texture(rng(), (10, 10))


class TestCollect:
    def make_sources(self, root):
        generator = np.random.default_rng(0)
        detailed = generator.integers(0, 255, (900, 1200, 3), dtype=np.uint8)
        save(root / "walls" / "sharp.jpg", detailed)
        smaller = np.asarray(Image.fromarray(detailed).resize((1000, 800)))
        save(root / "walls" / "sharp_small_copy.jpg", smaller)
        smooth = np.linspace(0, 255, 1200)[None, :, None].repeat(900, 0).repeat(3, 2).astype(np.uint8)
        save(root / "walls" / "gradient.png", smooth)  # smooth abstract art (or a photo's bokeh)
        save(root / "walls" / "small.jpg", detailed[:300, :300])
        stamp = np.zeros((200, 200, 4), dtype=np.uint8)
        stamp[40:160, 40:160, :3] = generator.integers(0, 255, (120, 120, 3), dtype=np.uint8)
        stamp[40:160, 40:160, 3] = 255
        save(root / "stamps" / "photo_stamp.png", stamp)
        cartoon = stamp.copy()
        cartoon[40:160, 40:160, :3] = (250, 200, 0)
        save(root / "stamps" / "cartoon_stamp.png", cartoon)
        return root

    def test_texture_kind(self, tmp_path):
        root = self.make_sources(tmp_path)
        assert texture_kind(root / "walls" / "sharp.jpg") == "photo"
        assert texture_kind(root / "walls" / "gradient.png") is None
        assert texture_kind(root / "walls" / "small.jpg") is None
        assert texture_kind(root / "stamps" / "photo_stamp.png") == "cutout"
        assert texture_kind(root / "stamps" / "cartoon_stamp.png") is None

    def test_collect_keeps_one_copy_of_each_picture(self, tmp_path):
        root = self.make_sources(tmp_path / "sources")
        counts = collect_textures([root / "walls", root / "stamps"], tmp_path / "out")
        assert counts == {"photo": 1, "cutout": 1, "skipped": 3}
        photos = sorted(path.name for path in (tmp_path / "out" / "photos").iterdir())
        assert len(photos) == 1 and photos[0].endswith("sharp.jpg")  # the largest copy
        bank = TextureBank.from_folder(tmp_path / "out")
        assert len(bank.photos) == 1 and len(bank.cutouts) == 1
        with pytest.raises(DataError, match="does not exist"):
            collect_textures([tmp_path / "missing"], tmp_path / "out")
