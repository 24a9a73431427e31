"""Packaging: every package folder is listed in pyproject.toml, and the import names map."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"spikelab": REPO / "spikelab", "spikelab.hardware": REPO / "hardware", "spikelab.tasks": REPO / "tasks"}


def test_every_package_folder_is_listed():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for name, root in ROOTS.items():
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root).parts
            found.add(".".join((name, *rel)))
    assert found == listed


def test_import_names_map_to_the_specified_folders():
    import spikelab.hardware
    import spikelab.tasks

    assert Path(spikelab.hardware.__file__).parent == REPO / "hardware"
    assert Path(spikelab.tasks.__file__).parent == REPO / "tasks"
