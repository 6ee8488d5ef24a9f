"""Install hints name the command that works for how dvidpy was installed: a checkout
(``pip install -e '.[x]'``, from the checkout) or a wheel (``pip install 'dvidpy[x]'``).

The optional package really is missing in the child processes (:mod:`base_install`),
and the wheel case runs the packages from a site-packages-like folder without the
checkout's ``pyproject.toml``, as an installed wheel lays them out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from base_install import REPO, base_install_env

PROBE = ("import storage\n"
         "try:\n"
         "    storage.engine_class('rocksdb')\n"
         "except storage.EngineUnavailable as e:\n"
         "    print(e)\n")


def probe(cwd: Path, env: dict[str, str]) -> str:
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_checkout_hint_in_the_checkout(tmp_path: Path) -> None:
    out = probe(REPO, base_install_env(tmp_path))
    assert "No module named 'rocksdict'" in out
    assert out.rstrip().endswith("pip install -e '.[rocksdb]'"), out
    assert "cd " not in out


def test_checkout_hint_elsewhere_says_where(tmp_path: Path) -> None:
    out = probe(tmp_path, base_install_env(tmp_path))
    assert f"cd {REPO} && pip install -e '.[rocksdb]'" in out, out


def test_wheel_hint(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "storage", site / "storage",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = base_install_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(site)] + [p for p in env["PYTHONPATH"].split(os.pathsep) if p != str(REPO)])
    out = probe(tmp_path, env)
    assert out.rstrip().endswith("pip install 'dvidpy[rocksdb]'"), out
    assert "-e" not in out


def test_serve_names_the_extra(tmp_path: Path) -> None:
    """``dvidpy serve`` on a config with a RocksDB store, on the base install."""
    cfg = tmp_path / "dvid.toml"
    cfg.write_text('[store.main]\nengine = "rocksdb"\npath = "db"\n')
    r = subprocess.run([sys.executable, "-m", "dvidpy.cli", "serve", "--config", str(cfg),
                        "--port", "1"], cwd=REPO, env=base_install_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "pip install -e '.[rocksdb]'" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_other_requirements_are_plain() -> None:
    from storage.registry import install_command

    assert install_command("plyvel") == "pip install plyvel"
    assert install_command("dvidpy[a,b]").endswith("'.[a,b]'")
