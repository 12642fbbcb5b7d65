#!/usr/bin/env bash
# The development set-up (README, .ci/run): d2f editable with its dev extra (pytest, ruff, Selenium), and
# Debian's Chromium and its driver for the app's browser tests (tests/app/test_browser.py), installed
# with apt-get where it is available and this runs as root. Elsewhere those tests skip, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -e '.[dev]'
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
else
    echo "dev_install.sh: Chromium is not installed and apt-get cannot run as root here;" \
        "install chromium and chromium-driver to run the browser tests (they skip without them)" >&2
fi
