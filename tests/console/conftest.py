"""Browser tests of the web console: one real ``dvidpy serve`` (LevelDB) holding the data
of :mod:`console_data`, driven by Debian's headless Chromium through chromedriver
(selenium; nothing downloads a browser). Screenshots go to ``<pytest tmp>/console-artifacts``
(printed at the end of the session).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_data import World, build_world
from servers import ServerProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Folder for screenshots (its path is printed when the session ends)."""
    d = tmp_path_factory.mktemp("console-artifacts")
    yield d
    print(f"\nconsole screenshots: {d}")


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("console-server")
    srv = ServerProcess(["--data", str(d / "db")], d / "server.log")
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            w = build_world(c, srv)
        w.log_offset = w.log_size()
        yield w
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory, world: World) -> Iterator[Any]:
    """Headless Chromium (Debian's) through chromedriver, 1280 x 900 at device scale 1
    (made after, and closed before, the ``world`` server, so no page holds it open)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are required (apt-get install -y chromium "
                    "chromium-driver; .ci/run installs them)")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
              "--window-size=1280,900", "--force-device-scale-factor=1",
              # nothing but this machine: a page that reached for an outside site would fail
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
              # neuroglancer needs WebGL: software rendering (our own, trusted page)
              "--enable-unsafe-swiftshader"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()
