"""The README's shell and TOML examples, run as they are written: the examples are the tests.

Conventions (so that the README stays plain to read):

* Every fenced block names its language. ``sh`` and ``toml`` blocks are run; a block that
  cannot run in CI carries an HTML comment on the line before its fence,
  ``<!-- not run by tests/test_readme.py: WHY -->`` (its TOML is still parsed).
* A block runs on the base install (``pip install -e .``): the modules that only the
  extras bring are made unimportable in the servers and commands it starts
  (:mod:`base_install`). The prose between the previous block and this one may say
  ``pip install -e '.[a,b]'``; the block then runs with those extras.
* Address: the README talks to ``localhost:8000`` / ``127.0.0.1:8000``, the default of
  ``dvidpy serve``. The test's servers listen on free ports (port 8000 may be taken on a
  shared machine), so these two spellings, and only they, are replaced by
  ``127.0.0.1:PORT`` in a block's text before it runs; nothing else is changed.
* Shell blocks run with bash in a temporary folder against one ``dvidpy serve`` started
  there as the README's first command starts it (LMDB under ``./dvid-data``, auth
  off). ``PATH`` holds the system's tools except any ``python*`` and a ``dvidpy`` that
  runs this checkout with the venv's interpreter, so an example that needs ``python`` on
  ``PATH`` fails. Each command must exit 0; a comment ``# -> X`` (or ``... -> X``) says
  the command prints exactly ``X``.
* TOML blocks are loaded with :meth:`Settings.from_toml` and served by ``dvidpy serve
  --config``; a block without a ``[store.NAME]`` table is a fragment of a config and gets
  ``dvidpy serve``'s default store (``[store.default]``, LMDB under ``dvid-data``)
  appended. ``"env:NAME"`` values get NAME set to a random secret; GCS stores use the
  session's emulator through ``$STORAGE_EMULATOR_HOST`` (which the GCS engine reads
  when a store gives no ``endpoint``).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from base_install import REPO, base_install_env
from servers import ServerProcess, free_port

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.e2e

README = REPO / "README.md"
NOT_RUN = re.compile(r"^<!-- not run by tests/test_readme\.py: (?P<why>\S.*\S) -->$")
EXTRAS = re.compile(r"pip install -e '\.\[([\w,-]+)\]'")
ADDRESS = re.compile(r"\b(?:localhost|127\.0\.0\.1):8000\b")
EXPECT = re.compile(r"->\s*(\S+)")
LANGUAGES = {"sh", "toml", "python", "text"}


@dataclass
class Block:
    """One fenced block of the README."""

    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    not_run: str  # the reason given by the comment before it, or ""
    extras: frozenset[str]  # extras the prose above it asks for

    @property
    def id(self) -> str:
        first = next((x for x in self.text.splitlines() if x.strip()), "")
        return f"L{self.line}-{re.sub(r'[^A-Za-z0-9]+', '_', first)[:40].strip('_')}"


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block, with its marker and the extras named in the prose above it."""
    lines = text.splitlines()
    out: list[Block] = []
    i, prose_start = 0, 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        assert j < len(lines), f"README.md:{i + 1}: unclosed code block"
        prev = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = NOT_RUN.match(prev.strip())
        prose = "\n".join(lines[prose_start:i])
        extras = frozenset(e for found in EXTRAS.findall(prose) for e in found.split(","))
        out.append(Block(i + 1, m.group(1), "\n".join(lines[i + 1:j]) + "\n",
                         marker.group("why") if marker else "", extras))
        i = prose_start = j + 1
    return out


BLOCKS = readme_blocks(README.read_text())
SHELL = [b for b in BLOCKS if b.lang == "sh" and not b.not_run]
TOML = [b for b in BLOCKS if b.lang == "toml" and not b.not_run]


def test_every_block_is_run_or_marked() -> None:
    """Each block names a known language; sh/toml blocks are run unless a marker says
    why not; a marker stands only before a block (a stray one would mark nothing)."""
    assert BLOCKS, "no code blocks found in README.md"
    for b in BLOCKS:
        assert b.lang in LANGUAGES, f"README.md:{b.line}: block language {b.lang!r} (use one " \
            f"of {sorted(LANGUAGES)})"
        assert b.lang in ("sh", "toml") or not b.not_run, \
            f"README.md:{b.line}: only sh and toml blocks are run, so need no marker"
    lines = README.read_text().splitlines()
    fences = {b.line for b in BLOCKS}
    for n, line in enumerate(lines, 1):
        if line.startswith("<!-- not run by"):
            assert NOT_RUN.match(line), f"README.md:{n}: malformed marker {line!r}"
            assert n + 1 in fences, f"README.md:{n}: the marker must be right before a fence"
    for b in BLOCKS:
        if b.lang == "toml":
            tomllib.loads(b.text)  # even the blocks that are not run are valid TOML
    assert SHELL and TOML  # the run blocks below are not an empty parametrization


# ----- shell blocks ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """``(work folder, bin folder)``: the bin folder links every system tool except
    ``python*`` and holds a ``dvidpy`` that runs this checkout."""
    root = tmp_path_factory.mktemp("readme")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for d in ("/usr/local/bin", "/usr/bin", "/bin"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            target = bin_dir / name
            if name.startswith("python") or name in ("dvidpy", "pip", "pip3") or \
                    target.exists():
                continue
            if os.access(os.path.join(d, name), os.X_OK):
                target.symlink_to(os.path.join(d, name))
    wrapper = bin_dir / "dvidpy"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m dvidpy.cli "$@"\n')
    wrapper.chmod(0o755)
    work = root / "work"
    work.mkdir()
    yield work, bin_dir


@pytest.fixture(scope="module")
def readme_server(sandbox: tuple[Path, Path]) -> Iterator[ServerProcess]:
    """``dvidpy serve`` as the README's first command runs it (its default LMDB folder
    ``./dvid-data`` of the work folder, one process per core), on the base install."""
    work, _ = sandbox
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", base_install_env(work.parent)["PYTHONPATH"])
        srv = ServerProcess(["--data", str(work / "dvid-data")], work.parent / "server.log",
                            workers=None)
    yield srv
    srv.stop()


def commands(text: str) -> list[str]:
    """The block's commands: lines joined across trailing backslashes, without blank and
    comment-only lines."""
    out, cur = [], ""
    for line in text.splitlines():
        cur += line
        if cur.endswith("\\"):
            cur = cur[:-1] + "\n"
            continue
        if cur.strip() and not cur.lstrip().startswith("#"):
            out.append(cur)
        cur = ""
    return out


def expected_output(cmd: str) -> str | None:
    """``X`` of a trailing comment ``# ... -> X`` (the last `` # `` with no quote after it,
    so a ``#`` inside a quoted argument is not taken for a comment)."""
    m = re.search(r"\s#\s([^'\"]*)$", cmd)
    e = EXPECT.search(m.group(1)) if m else None
    return e.group(1) if e else None


def run_shell_block(block: Block, work: Path, bin_dir: Path, port: int) -> int:
    """Run the block's commands in order in one bash process; check each exit status and
    each ``-> X`` expectation; the number of expectations checked."""
    text = ADDRESS.sub(f"127.0.0.1:{port}", block.text)
    cmds = commands(text)
    assert cmds, f"README.md:{block.line}: no commands"
    script = []
    for n, c in enumerate(cmds):
        script += [c, f"printf '\\n@@readme {n} %d@@\\n' $?"]
    env = base_install_env(work.parent, block.extras,
                           env={"HOME": str(work), "LANG": "C.UTF-8"})
    env["PATH"] = str(bin_dir)
    r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)
    parts = re.split(r"\n@@readme (\d+) (\d+)@@\n", r.stdout)
    outputs = parts[0::3]
    statuses = [(int(a), int(b)) for a, b in zip(parts[1::3], parts[2::3], strict=True)]
    assert [n for n, _ in statuses] == list(range(len(cmds))), \
        f"README.md:{block.line}: the block stopped early\n{r.stdout}\n{r.stderr}"
    checked = 0
    for (n, status), out in zip(statuses, outputs, strict=False):  # + the tail after
        assert status == 0, (f"README.md:{block.line}: `{cmds[n]}` exited {status}:\n{out}\n"
                             f"{r.stderr}")
        want = expected_output(cmds[n])
        if want is not None:
            assert out.strip() == want, f"README.md:{block.line}: `{cmds[n]}` printed {out!r}"
            checked += 1
    return checked


@pytest.mark.parametrize("block", SHELL, ids=[b.id for b in SHELL])
def test_shell_block(block: Block, sandbox: tuple[Path, Path],
                     readme_server: ServerProcess) -> None:
    work, bin_dir = sandbox
    assert not any(bin_dir.glob("python*"))
    run_shell_block(block, work, bin_dir, readme_server.port)


def test_shell_blocks_check_outputs(sandbox: tuple[Path, Path],
                                    readme_server: ServerProcess) -> None:
    """The ``-> X`` comments are really compared (a parser that found none would let
    every block pass on exit status alone)."""
    assert sum(expected_output(c) is not None for b in SHELL for c in commands(b.text)) >= 5
    work, bin_dir = sandbox
    bad = Block(0, "sh", "curl -s localhost:8000/api/heartbeat -o /dev/null; echo hi  # -> "
                "bye\n", "", frozenset())
    with pytest.raises(AssertionError, match="printed 'hi"):
        run_shell_block(bad, work, bin_dir, readme_server.port)
    no_python = Block(0, "sh", "python -c 'print(1)'\n", "", frozenset())
    with pytest.raises(AssertionError, match="exited 127"):
        run_shell_block(no_python, work, bin_dir, readme_server.port)


# ----- TOML blocks ----------------------------------------------------------------------


@pytest.mark.parametrize("block", TOML, ids=[b.id for b in TOML])
def test_toml_block(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from dvidpy.config import Settings

    port = free_port()
    text = ADDRESS.sub(f"127.0.0.1:{port}", block.text)
    data = tomllib.loads(text)
    if "store" not in data:
        text += '\n[store.default]\nengine = "lmdb"\npath = "dvid-data"\n'
    env_names = set(re.findall(r'"env:(\w+)"', text))
    if re.search(r'engine\s*=\s*"(gcs|gbucket)"', text):
        request.getfixturevalue("gcs_emulator")  # sets STORAGE_EMULATOR_HOST
    cfg = tmp_path / "dvid.toml"
    cfg.write_text(text)
    with pytest.MonkeyPatch.context() as mp:
        for name in env_names:
            mp.setenv(name, secrets.token_hex(16))
        settings = Settings.from_toml(cfg)
        mp.setenv("PYTHONPATH", base_install_env(tmp_path, block.extras)["PYTHONPATH"])
        srv = ServerProcess(["--config", str(cfg)], tmp_path / "server.log", port=port)
    try:
        log = (tmp_path / "server.log").read_text()
        assert f"serving http://127.0.0.1:{port}" in log, log
        for alias, spec in settings.stores.items():
            assert re.search(rf"store\s+{re.escape(alias)}\s+{spec.engine}\b", log), log
    finally:
        srv.stop()
