"""compare: specialists and generalists on the same inputs, scored the same way, kept in the run store.

`compare` runs the models; `Comparison` holds the result (summary, per-item table, confusion
matrices, plotly figures, an offline HTML report, exports). Only `charts` imports plotly.
"""

from .comparison import Comparison
from .run import COMPARED_TASKS, compare, delete_run, get_run, runs

__all__ = ["compare", "Comparison", "runs", "get_run", "delete_run", "COMPARED_TASKS"]
