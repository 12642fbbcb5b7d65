#!/usr/bin/env bash
# Collect real photos and photographic RGBA cut-outs for `d2f synth --textures DIR` (training set-ups).
#
#   scripts/get_textures.sh [DIR]        # default DIR: ./textures
#
# Installs Debian's wallpaper and stamp packages (about 320 MB: lomiri-wallpapers-16.04, mate-backgrounds,
# plasma-workspace-wallpapers, tuxpaint-stamps-default), then copies the usable images into DIR/photos
# (sharp, detailed photos; wallpapers with their own bokeh or smooth abstract art are left out) and
# DIR/cutouts (photographic stamps with an alpha channel; cartoons are left out); see
# d2f.data.textures.texture_kind. It adds the photos that scikit-image ships (the built-in bank's, and
# three more), which a texture folder would otherwise lose. Set SKIP_INSTALL=1 when the packages are
# installed already. On Debian 12 this gives 35 photos and 155 cut-outs.
# Looked at and left out (no sharp real photos in them, December 2026): lomiri-wallpapers,
# lomiri-wallpapers-20.04 and ukui-wallpapers (3-D renders, one bird before a blurred background),
# gnome-backgrounds, sway-backgrounds and xfdesktop4-data (drawn patterns), debian-edu-artwork-*,
# mypaint-data-extras (paper grain), jigzo-data (a font sheet), gcompris-qt-data (images packed in Qt
# resource files).
# Tests and CI never need this: they use procedural textures and scikit-image's bundled photos.
# The images keep their packages' licences (see /usr/share/doc/<package>/copyright); do not commit them.
set -euo pipefail

out=${1:-textures}
packages=(lomiri-wallpapers-16.04 mate-backgrounds plasma-workspace-wallpapers tuxpaint-stamps-default)

if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
fi

sources=()
for folder in /usr/share/backgrounds /usr/share/wallpapers /usr/share/tuxpaint/stamps; do
    if [[ -d $folder ]]; then sources+=("$folder"); fi
done
if [[ ${#sources[@]} -eq 0 ]]; then
    echo "get_textures.sh: error: none of the packages' image folders exists" >&2
    exit 1
fi

python3 - "$out" "${sources[@]}" <<'PYTHON'
import sys

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from d2f.data.textures import BUILTIN_PHOTOS, collect_textures

out, *sources = sys.argv[1:]
counts = collect_textures(sources, out)
# scikit-image's photos (512 px or so: below collect_textures' 800 px, but real and sharp).
photos = {name: getattr(skimage.data, name)() for name in (*BUILTIN_PHOTOS, "camera", "coins")}
photos["motorcycle"] = skimage.data.stereo_motorcycle()[0]
for name, array in photos.items():
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(Path(out) / "photos" / f"skimage_{name}.png")
print(f"{out}: {counts['photo'] + len(photos)} photos ({len(photos)} of them scikit-image's), "
      f"{counts['cutout']} cut-outs ({counts['skipped']} images not usable)")
PYTHON
