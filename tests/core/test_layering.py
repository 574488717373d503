"""The domain package stays free of Prefect and of the test doubles: importing every kestrel
module loads neither prefect, nor the Prefect-side packages (flows, tasks, blocks, deployments,
cli), nor the Binance emulator and the fake servers (emulator, fakes), which do not ship."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PROBE = """
import importlib, pkgutil, sys
import kestrel
for info in pkgutil.walk_packages(kestrel.__path__, "kestrel."):
    if info.name.endswith("__main__"):
        continue
    importlib.import_module(info.name)
layers = ("prefect", "prefect_dask", "flows", "tasks", "blocks", "deployments", "cli",
          "emulator", "fakes")
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
    import kestrel

    layers = {"prefect", "prefect_dask", "flows", "tasks", "blocks", "deployments", "cli"}
    layers |= {"emulator", "fakes"}  # test doubles: never a dependency of the product
    assert _imports_of(Path(kestrel.__file__).parent, layers) == []


def test_emulator_never_imports_the_fakes_or_the_product() -> None:
    """The emulator is a user-facing rehearsal tool: it stands alone, without the test fakes
    (which import its LocalHTTPServer, not the other way round) and without kestrel."""
    import emulator

    root = Path(emulator.__file__).parent
    assert _imports_of(root, {"fakes", "kestrel"}) == []


def _imports_of(root: Path, packages: set[str]) -> list[str]:
    """Every import (module level or inside a function) under `root` of one of `packages`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [
                f"{path.relative_to(root)}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] in packages
            ]
    return found


def test_blocks_import_no_circle() -> None:
    """blocks.settings loads the block types; they must not import it back (issue 13)."""
    import grimp

    graph = grimp.build_graph("blocks", cache_dir=None)
    modules = sorted(graph.modules)
    circles = [
        (a, b)
        for a in modules
        for b in modules
        if a < b
        and graph.chain_exists(importer=a, imported=b)
        and graph.chain_exists(importer=b, imported=a)
    ]
    assert circles == []
