"""compose: pipelines of model, route, cascade and python stages.

`spec` (the stage specs: text, fields, stage ids), `syntax` (the ``%%specnb pipe`` cell syntax), `validate`
(checks before a run), `executor` (running stages in this process), `sweep` (a cascade's threshold),
`pipeline` (`Pipeline`), `yaml_io` (YAML) and `ray_engine` (the same stages on Ray Data).
"""

from __future__ import annotations

from .pipeline import Pipeline
from .spec import STAGE_KINDS, stage
from .sweep import Sweep
from .syntax import parse

__all__ = ["Pipeline", "Sweep", "stage", "parse", "STAGE_KINDS"]
