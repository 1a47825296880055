"""Hatch build hook: the wheel installs specnb's JupyterLab / Notebook 7 extension (js/lab, built by
`make js` into specnb/labextension/) as share/jupyter/labextensions/specnb, where Jupyter finds it.
Without a build (a plain `pip install -e .` on a fresh clone) the package installs without it."""

from __future__ import annotations

from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class LabExtensionHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        built = Path(self.root) / "specnb" / "labextension"
        if not (built / "package.json").is_file():
            return
        for path in sorted(built.rglob("*")):
            if path.is_file():
                target = f"share/jupyter/labextensions/specnb/{path.relative_to(built).as_posix()}"
                build_data["shared_data"][str(path)] = target
