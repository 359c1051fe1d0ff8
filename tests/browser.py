"""Headless Chromium for the report's browser test (and the README's screenshot): Debian's
/usr/bin/chromium and /usr/bin/chromedriver through Selenium, never a download.

    python tests/browser.py mvit_b docs/img/report_mvit_b.png    # the README's screenshot
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
)


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless Chromium driven by Selenium, its profile in `profile` (a fresh folder)."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for a driver online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def colours(png: bytes) -> int:
    """How many distinct colours a PNG has (matplotlib's reader decodes it)."""
    import numpy as np
    from matplotlib import image

    pixels = (image.imread(io.BytesIO(png), format="png") * 255).astype(np.uint32)
    packed = pixels[..., 0] << 16 | pixels[..., 1] << 8 | pixels[..., 2]  # RGB as one number
    return len(np.unique(packed))


def screenshot(page: Path, out: Path, profile: Path) -> bytes:
    """The whole page as a PNG (the window grown to the page's height, at most 6000 px)."""
    with chromium(profile) as driver:
        driver.get(page.resolve().as_uri())
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height), 6000))
        png: bytes = driver.get_screenshot_as_png()
    out.write_bytes(png)
    return png


def main(spec: str, out: str) -> int:
    from mvitdsl.cli import main as mvitdsl

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        code = mvitdsl(["report", spec, "-o", str(page)])
        if code:
            return code
        screenshot(page, Path(out), Path(tmp) / "profile")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
