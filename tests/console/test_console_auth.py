"""The console on a server with auth on (token mode): anonymous visitors are offered the
sign-in page; a pasted token is refused with the server's message when bad and kept in the
login cookie when good; a reader sees the repos it may read and not the others (their pages
are refused by the server); signing out forgets the cookie."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import jwt
import pytest
from selenium.webdriver.common.by import By
from servers import ServerProcess
from test_console_browser import attr, severe, text, wait_for

pytestmark = pytest.mark.e2e
SECRET = "console-test-secret-key-of-32-bytes!"
ADMIN, READER = "root@lab.org", "reader@lab.org"


def token(user: str) -> str:
    return jwt.encode({"user": user}, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    d = tmp_path_factory.mktemp("console-auth")
    (d / "dvid.toml").write_text(
        f'[store.main]\nengine = "leveldb"\npath = "{d / "db"}"\n'
        '[backend.default]\nstore = "main"\n'
        f'[auth]\nenforce = "token"\nsecretkey = "{SECRET}"\nadmins = ["{ADMIN}"]\n')
    srv = ServerProcess(["--config", str(d / "dvid.toml")], d / "server.log")
    admin = {"Authorization": f"Bearer {token(ADMIN)}"}
    with httpx.Client(base_url=srv.url, headers=admin, timeout=30) as c:
        repos = {}
        for alias in ("shared", "private"):
            repos[alias] = c.post("/api/repos", json={"alias": alias}).json()["root"]
        r = c.post(f"/api/repo/{repos['shared']}/permissions",
                   json={"grants": {f"user:{READER}": "read"}})
        assert r.status_code == 200, r.text
    try:
        yield srv, repos
    finally:
        srv.stop()


def load(browser, url: str) -> None:
    browser.get("about:blank")
    browser.get_log("browser")
    browser.get(url)
    wait_for(lambda: browser.execute_script("return document.body.dataset.ready") == "1",
             what=url)


def test_sign_in_shows_what_the_reader_may_read(browser, secured) -> None:
    srv, repos = secured
    browser.delete_all_cookies()
    try:
        load(browser, srv.url + "/console/")
        wait_for(lambda: attr(browser, "#who-login", "href"), what="sign-in link")
        assert "No repos you may read" in text(browser, "#repos")
        # a bad token is refused with the server's message
        browser.find_element(By.ID, "who-login").click()
        wait_for(lambda: browser.find_elements(By.ID, "login-token"), what="login page")
        browser.find_element(By.ID, "login-token").send_keys("not-a-token")
        browser.find_element(By.ID, "login-submit").click()
        msg = wait_for(lambda: text(browser, "#login-status .msg.error"), what="refusal")
        want = httpx.post(f"{srv.url}/api/server/login", json={"token": "not-a-token"}).text
        assert msg == f"sign-in refused: {want}"
        # a good one: back on the server page, signed in, only the readable repo listed
        field = browser.find_element(By.ID, "login-token")
        field.clear()
        field.send_keys(token(READER))
        browser.find_element(By.ID, "login-submit").click()
        wait_for(lambda: text(browser, "#who-user") == READER, what="signed in")
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#repos a.repo-link"),
                 what="repo list")
        links = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#repos a.repo-link")]
        assert links == ["shared"]
        assert "administrators" in text(browser, "main")  # store locations are not shown
        load(browser, f"{srv.url}/console/repo/{repos['shared']}")
        assert browser.find_elements(By.CSS_SELECTOR, "g.dag-node")
        assert severe(browser) == []
        browser.get(f"{srv.url}/console/repo/{repos['private']}")
        assert "no read access" in browser.find_element(By.TAG_NAME, "body").text
        # signing out forgets the cookie
        load(browser, srv.url + "/console/")
        browser.find_element(By.ID, "who-logout").click()
        wait_for(lambda: attr(browser, "#who-login", "href"), what="signed out")
        assert all(c["name"] != "dvidpy_token" for c in browser.get_cookies())
    finally:
        browser.delete_all_cookies()


def test_anonymous_pages_of_a_secured_server(secured) -> None:
    srv, repos = secured
    with httpx.Client(base_url=srv.url) as c:
        for path in ("/", "/console/", "/console/login", "/console/jobs",
                     "/console/static/app.js", "/console/config.json"):
            assert c.get(path).status_code in (200, 307), path
        assert "stores" not in c.get("/console/config.json").json()
        assert c.get("/console/config.json").json()["auth"] == "token"
        assert c.get(f"/console/repo/{repos['shared']}").status_code == 401
        assert c.get(f"/console/node/{repos['shared']}/x").status_code == 401
        admin = {"Authorization": f"Bearer {token(ADMIN)}"}
        assert "stores" in c.get("/console/config.json", headers=admin).json()


def test_login_page_when_auth_is_off(browser, world) -> None:
    load(browser, world.url + "/console/login?next=/console/jobs")
    assert "no sign-in is needed" in text(browser, "main")
    assert attr(browser, "main a", "href").endswith("/console/jobs")
