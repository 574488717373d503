"""Deployment steps of our own, referenced from prefect.yaml.

`enter_project` is the pull step: a worker starts each flow run in a temporary folder, and
Kestrel's entrypoints, kestrel.toml and relative data_dir are all relative to the project
root, so the run moves there first. The root is $KESTREL_HOME if set, else the folder this
package is installed from (an editable install: the checkout; a wheel: site-packages, which
holds the same flows/ and deployments/ packages).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "KESTREL_HOME"


def project_root() -> Path:
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    return Path(__file__).resolve().parents[1]


def enter_project(directory: str | None = None) -> dict[str, str]:
    """chdir to `directory`, $KESTREL_HOME or the project root; returns it as `directory`."""
    target = Path(directory).expanduser().resolve() if directory else project_root()
    if not (target / "deployments").is_dir():
        raise FileNotFoundError(
            f"{target} does not hold Kestrel's deployments/ package: set {HOME_ENV} to the "
            "folder that contains prefect.yaml"
        )
    os.chdir(target)
    return {"directory": str(target)}
