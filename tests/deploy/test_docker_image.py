"""The Docker image's file set starts `kestrel` and imports every deployment entry point.

No Docker engine runs on our machines, so this reproduces the image instead: it copies
exactly what deployments/Dockerfile COPYs into a fresh directory (the image's WORKDIR),
builds the venv the way the Dockerfile does (`uv sync --locked --no-dev`), and runs the
image's commands there with the repository root NOT importable - so a missing COPY fails
here as it would in the container (it once did: `No module named 'cli'`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deployments" / "Dockerfile"
WORKDIR = "/app"


def copy_pairs(dockerfile: str) -> list[tuple[str, str]]:
    """(source, destination) for every `COPY src... dst` line, destination relative to WORKDIR."""
    pairs: list[tuple[str, str]] = []
    for line in dockerfile.splitlines():
        words = line.split()
        if not words or words[0] != "COPY":
            continue
        assert not any(w.startswith("--") for w in words), f"unsupported COPY flag: {line}"
        *sources, dest = words[1:]
        dest = dest.removeprefix(WORKDIR).lstrip("/") or "."
        pairs.extend((src, dest) for src in sources)
    return pairs


def reproduce_file_set(app: Path) -> None:
    """Copy what the Dockerfile COPYs from the repo into `app`, as `docker build` would."""
    for src, dest in copy_pairs(DOCKERFILE.read_text()):
        source = ROOT / src
        into_dir = dest.endswith("/") or dest == "."
        target = app / dest / source.name if into_dir and source.is_file() else app / dest
        if source.is_dir():
            shutil.copytree(
                source, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
            )
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def entrypoint_modules() -> list[tuple[str, str]]:
    """(module, flow) for every deployment in prefect.yaml (`path/file.py:flow`)."""
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    found = set()
    for deployment in config["deployments"]:
        path, flow = deployment["entrypoint"].split(":")
        found.add((path.removesuffix(".py").replace("/", "."), flow))
    return sorted(found)


def clean_env(app: Path, venv: Path) -> dict[str, str]:
    """A minimal environment: no PYTHONPATH, nothing pointing at the repository."""
    return {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin",
        "HOME": str(app),
        "KESTREL_HOME": str(app),
        "KESTREL_DATA_DIR": str(app / "data"),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run(cmd: list[str], app: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=app, env=env, capture_output=True, text=True, check=False)


def test_copy_parser_reads_sources_and_workdir_destinations() -> None:
    text = "FROM x\nWORKDIR /app\nCOPY a b c ./\nCOPY kestrel ./kestrel\nRUN echo COPY\n"
    assert copy_pairs(text) == [("a", "./"), ("b", "./"), ("c", "./"), ("kestrel", "./kestrel")]


def test_image_excludes_test_tools() -> None:
    sources = {src for src, _ in copy_pairs(DOCKERFILE.read_text())}
    assert not sources & {"emulator", "fakes", "tests", "."}


def test_image_file_set_starts_kestrel_and_imports_every_entrypoint(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    reproduce_file_set(app)
    venv = app / ".venv"
    env = clean_env(app, venv)
    sync = [sys.executable, "-m", "uv", "sync", "--locked", "--no-dev", "--offline"]
    synced = run(sync, app, env)
    assert synced.returncode == 0, synced.stderr

    helped = run([str(venv / "bin" / "kestrel"), "--help"], app, env)
    assert helped.returncode == 0, helped.stderr
    assert "deploy" in helped.stdout

    python = str(venv / "bin" / "python")
    repo_visible = run([python, "-c", "import sys; print(sys.path)"], app, env)
    assert str(ROOT) not in repo_visible.stdout

    for module, flow in entrypoint_modules():
        code = f"import importlib; getattr(importlib.import_module({module!r}), {flow!r})"
        imported = run([python, "-c", code], app, env)
        assert imported.returncode == 0, f"{module}:{flow}: {imported.stderr}"
