"""specnb: specialist vs generalist models, side by side, inside Jupyter.

The public API lives here; ``import specnb`` imports neither torch, pandas, IPython nor any
widget library.
"""

from __future__ import annotations

from . import errors as _errors
from .backends.registry import Model, registry
from .catalog import catalog
from .compare import Comparison, compare, delete_run, get_run, runs
from .compose import Pipeline, stage
from .errors import *  # noqa: F403  (the SpecnbError tree, listed in errors.__all__)
from .settings import config
from .tasks import TASKS, Embedding, Entities, Generation, Invalid, Label, Prompt, Span

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "catalog",
    "config",
    "compare",
    "Comparison",
    "runs",
    "get_run",
    "delete_run",
    "Pipeline",
    "stage",
    "load",
    "unload",
    "models",
    "get",
    "Model",
    "TASKS",
    "Label",
    "Span",
    "Entities",
    "Embedding",
    "Generation",
    "Invalid",
    "Prompt",
    *_errors.__all__,
]


def load(
    source,
    *,
    alias: str | None = None,
    task: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    pin: bool = False,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
) -> Model:
    """Load a model into the kernel's registry and return its handle.

    Parameters
    ----------
    source : str, path or callable
        A catalog name (``specnb.catalog()``), a local folder (transformers ``save_pretrained``
        output or a spaCy pipeline), a ``.gguf`` or fastText ``.ftz`` file, a hub id
        (``org/name``), or a callable ``fn(list_of_texts) -> list`` (needs ``task``).
    alias : str, optional
        Name in the registry; defaults to the catalog name or the folder / repo name.
    task : str, optional
        One of ``specnb.TASKS``; inferred from the catalog or the model's config when omitted.
    device : str
        ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    dtype : str
        ``auto`` (bfloat16 on CUDA where supported, else float16; float32 on CPU), ``float32``,
        ``float16`` or ``bfloat16``.
    pin : bool
        Never evict this model to make room under a memory budget.
    trust_remote_code : bool
        Allow models whose architecture is Python code shipped with them. Off by default.
    allow_pickle : bool
        Allow pickled weights (``pytorch_model.bin``). Off by default; safetensors are preferred.

    Returns
    -------
    Model
        The same handle when this source is already loaded with the same task, device and dtype.
    """
    return registry.load(
        source, alias=alias, task=task, device=device, dtype=dtype, pin=pin,
        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
    )


def unload(alias) -> None:
    """Unload a model (alias or handle) and free its memory."""
    registry.unload(alias)


def get(alias: str) -> Model:
    """The loaded model called ``alias``."""
    return registry.get(alias)


def models():
    """Loaded models as a pandas DataFrame.

    Columns: alias, task, role, backend, device, dtype, parameters, weight_bytes, memory_bytes
    (measured at load: CUDA allocated delta on GPU, RSS delta on CPU), load_seconds, last_used,
    pinned, source.
    """
    return registry.models()


def load_ipython_extension(ipython) -> None:
    """``%load_ext specnb``: register the ``%specnb`` / ``%%specnb`` magics."""
    from .magics import load_ipython_extension as _load

    _load(ipython)
