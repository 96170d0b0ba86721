"""A wheel install works on its own, away from the checkout: the JSON Schemas (package data) and the
mappings (data files) travel with it, so `sync` can check its config and a Mattermost package can be
written (issue 12, "Also": `schemas/` outside the package made `sync` exit 2 after a wheel install)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "slack"
# What a wheel is built from; copied, so the build's own files (build/, *.egg-info) stay out of the checkout.
SOURCES = ("pyproject.toml", "README.md", "chatmigrate", "mappings", "schemas")


def _run(command: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    # The venv must not see the checkout: no PYTHONPATH, and a working directory outside it.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    tree = root / "src"
    tree.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, tree / name)
    # No build isolation: the installed setuptools builds it, with no download.
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"),
                  str(tree)], cwd=root)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (root / "dist").glob("chatmigrate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "chatmigrate/schemas/sync-config.schema.json" in names
    env = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", str(env)], cwd=root)
    assert made.returncode == 0, made.stderr
    installed = _run([str(env / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                     cwd=root)
    assert installed.returncode == 0, installed.stderr[-2000:]
    where = _run([str(env / "bin" / "python"), "-c", "import chatmigrate; print(chatmigrate.__file__)"], cwd=root)
    assert where.stdout.strip().startswith(str(env)), f"the venv imports chatmigrate from {where.stdout}"
    return env


def test_sync_dry_run_from_a_wheel_install(venv: Path, tmp_path: Path) -> None:
    config = tmp_path / "sync.toml"
    config.write_text(f'target = "sqlite:///chat.db"\n[[source]]\nfrom = "slack-export"\nlocation = "{SAMPLE}"\n')
    done = _run([str(venv / "bin" / "chatmigrate"), "sync", str(config), "--dry-run"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sync plan for" in done.stdout


def test_migrate_from_a_wheel_install(venv: Path, tmp_path: Path) -> None:
    exe = str(venv / "bin" / "chatmigrate")
    done = _run([exe, "migrate", str(SAMPLE)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "chatmigrate.db").is_file()
    # The Mattermost target reads mappings/ (Mattermost's system emoji), installed as data files.
    out = tmp_path / "x" / "out.zip"
    out.parent.mkdir()
    package = _run([exe, "migrate", str(SAMPLE), "--to", f"mattermost-import://{out}", "--default-email-domain",
                    "example.com"], cwd=tmp_path)
    assert package.returncode == 0, package.stderr
    assert zipfile.ZipFile(out).namelist()
