"""The domain package stays free of Prefect: importing every kestrel module loads neither
prefect nor the Prefect-side packages (flows, tasks, blocks, deployments, cli)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import importlib, pkgutil, sys
import kestrel
for info in pkgutil.walk_packages(kestrel.__path__, "kestrel."):
    if info.name.endswith("__main__"):
        continue
    importlib.import_module(info.name)
layers = ("prefect", "prefect_dask", "flows", "tasks", "blocks", "deployments", "cli")
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(layers))
print("LOADED", loaded)
"""


def test_kestrel_never_imports_prefect_or_its_layers() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300
    )
    assert "LOADED []" in out.stdout, out.stdout[-2000:]


def test_no_lazy_imports_of_prefect_layers_either() -> None:
    """Imports inside functions count too: the module-import probe above cannot see them."""
    import ast
    from pathlib import Path

    import kestrel

    root = Path(kestrel.__file__).parent
    layers = {"prefect", "prefect_dask", "flows", "tasks", "blocks", "deployments", "cli"}
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(root)}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] in layers
            ]
    assert offenders == []
