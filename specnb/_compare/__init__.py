"""compare: specialists and generalists on the same inputs, scored the same way, kept in the run store.

`compare` runs the models (`run`); `Comparison` holds the result (summary, per-item table, confusion
matrices); `TrainingRun` is a stored training run as `get_run` rebuilds it; `metrics` scores, `charts`
draws the plotly figures (the only plotly importer) and `report` writes the HTML. The package is private (``_compare``) because the public function ``specnb.compare``
takes its name; everything public is re-exported by ``specnb``.
"""

from .comparison import Comparison
from .run import COMPARED_TASKS, compare, delete_run, get_run, runs
from .training_run import TrainingRun

__all__ = ["compare", "Comparison", "TrainingRun", "runs", "get_run", "delete_run", "COMPARED_TASKS"]
