"""Neuroglancer from this server: the console's link opens the client shipped by the
``neuroglancer`` package (served at /console/neuroglancer/), whose ``dvid://`` source reads
the segmentation from this server; the browser resolves no other host."""

from __future__ import annotations

import re
import time
import urllib.parse

import pytest
from selenium.webdriver.common.by import By
from test_console_browser import open_page, severe, wait_for

from dvidpy.console.routes import NG_PAGE, neuroglancer_client

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(neuroglancer_client() is None,
                                 reason="the neuroglancer package is not installed")]


def test_neuroglancer_link_views_this_servers_data(browser, world, artifacts) -> None:
    root = world.root
    open_page(browser, world, f"/console/node/{root}/segmentation")
    href = browser.find_element(By.ID, "instance-ng").get_attribute("href")
    assert href.startswith(world.url + NG_PAGE + "#!")
    state = urllib.parse.unquote(href.split("#!", 1)[1])
    assert f'"source":"dvid://{world.url}/{root}/segmentation"' in state
    start = world.log_size()
    browser.get(href)
    chunk = re.compile(rf"GET /api/node/{root}/segmentation/raw/0_1_2/\S+ 200 ")

    def fetched() -> bool:
        return bool(chunk.search(world.server.log.read_bytes()[start:].decode(errors="replace")))

    wait_for(fetched, timeout=45, what="neuroglancer's chunk requests")
    time.sleep(1.0)
    log = world.server.log.read_bytes()[start:].decode(errors="replace")
    assert f"GET {NG_PAGE}" in log and "POST /console/neuroglancer/credentials/" in log
    assert " 404 " not in log and " 500 " not in log
    assert severe(browser) == []
    browser.save_screenshot(str(artifacts / "neuroglancer.png"))
    browser.get("about:blank")  # closes the page's event stream
