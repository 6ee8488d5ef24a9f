"""The router's memo of resolved paths (:meth:`dvidpy.http.router.Router.resolve`): the
same answer as splitting and walking every time, bounded, forgotten when routes change."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dvidpy.http.router import Router, split_path
from dvidpy.http.spec import make_spec


def _handler(call):  # pragma: no cover - never called
    return b""


def _router() -> Router:
    return Router([make_spec("GET", "/api/node/{uuid}/{data}/{rest*:key}", _handler),
                   make_spec("GET", "/api/repos/info", _handler),
                   make_spec("POST", "/api/repo/{uuid}/instance", _handler)])


def _scope(raw: bytes) -> dict:
    return {"raw_path": raw, "path": raw.decode("latin-1")}


segment = st.sampled_from(["api", "node", "repos", "info", "repo", "instance", "a%2Fb",
                           "x", "%41", "", "k%00"])


@given(st.lists(st.lists(segment, max_size=7), min_size=1, max_size=30))
def test_memo_answers_like_the_walk(paths: list[list[str]]) -> None:
    r = _router()
    for segs in paths * 2:  # each path twice: the second answer comes from the memo
        raw = ("/" + "/".join(segs)).encode()
        parts, table = r.resolve(_scope(raw))
        want = split_path(_scope(raw))
        assert list(parts) == want
        assert table is r.lookup(want)


def test_memo_is_bounded_keeps_only_matches_and_forgets_on_add() -> None:
    r = _router()
    p1 = r.resolve(_scope(b"/api/repos/info"))
    assert r.resolve(_scope(b"/api/repos/info")) is p1  # remembered
    r.resolve(_scope(b"/nothing/here"))
    assert b"/nothing/here" not in r._memo  # no route: not kept
    long = b"/api/node/u/d/" + b"k" * Router.MEMO_PATH_BYTES
    assert r.resolve(_scope(long))[1] is not None and long not in r._memo
    for i in range(Router.MEMO_PATHS + 10):
        r.resolve(_scope(b"/api/node/u/d/key/%d" % i))
        assert len(r._memo) <= Router.MEMO_PATHS
    r.resolve(_scope(b"/api/repos/info"))
    r.add(make_spec("GET", "/api/repos/other", _handler))
    assert not r._memo  # a new route: everything forgotten
    assert r.resolve(_scope(b"/api/repos/other"))[1] is not None
