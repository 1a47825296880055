"""The backend contract every model kind implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..engine import RunStats

__all__ = ["Backend", "FileBackend", "Request", "folder_bytes"]


@dataclass
class Request:
    """What one ``predict`` call asks of a backend.

    Attributes
    ----------
    task : str
        The task to serve (one of the model's tasks).
    batch_size : int
        Items per batch at most.
    token_budget : int or None
        Padded tokens per batch at most.
    labels : tuple of str or None
        The run's label space (label tasks) or entity types (ner); None: the model's own.
    prompt : Prompt or None
        The generalist's prompt; None: the task's default.
    progress : bool or None
        Show a progress bar on long runs (None: ``config.progress``).
    desc : str or None
        The progress bar's label.
    """

    task: str
    batch_size: int
    token_budget: int | None = None
    labels: tuple[str, ...] | None = None
    prompt: object = None
    progress: bool | None = None
    desc: str | None = None

    def batches(self, lengths, step, *, torch_inference: bool = True):
        """`specnb.engine.run_batches` with this request's batch size, budget and progress bar."""
        from ..engine import run_batches

        return run_batches(lengths, step, batch_size=self.batch_size, token_budget=self.token_budget,
                           torch_inference=torch_inference, progress=self.progress, desc=self.desc)


class Backend:
    """A loaded model of one kind.

    Subclasses set ``name``, ``cpu_only`` and implement `load`, `predict` and `close`.
    ``predict(texts, request)`` returns one typed prediction per text, in input order, plus the
    run's stats; it serves ``request.task``, and for label tasks answers within ``request.labels``
    where the model can.
    """

    name = "backend"
    cpu_only = True

    def __init__(self, task: str, device: str, dtype: str | None):
        self.task = task
        self.device = device
        self.dtype = dtype

    def load(self) -> None:
        raise NotImplementedError

    def predict(self, texts: Sequence[str], request: Request) -> tuple[list, RunStats]:
        raise NotImplementedError

    def labels(self) -> tuple[str, ...] | None:
        """The labels (or entity types) the model can output, when it has a fixed set."""
        return None

    def parameters(self) -> int | None:
        """Number of learned parameters, where the notion applies."""
        return None

    def weight_bytes(self) -> int:
        """Bytes the weights take where they live (device memory for torch models)."""
        return 0

    def version(self) -> str | None:
        """Version of the package or files the model came from, when known."""
        return None

    def close(self) -> None:
        """Drop every reference to the model so it can be collected."""


class FileBackend(Backend):
    """A CPU model that lives in a file or folder (lexicon, fastText, spaCy).

    Subclasses implement `load`, which sets ``self.model``, and `predict`; ``package`` names the
    pip distribution whose version `version` reports.
    """

    cpu_only = True
    package: str | None = None

    def __init__(self, task: str, device: str, dtype: str | None, path: Path):
        super().__init__(task, device, dtype)
        self.path = Path(path)
        self.model = None

    def weight_bytes(self) -> int:
        return folder_bytes(self.path)

    def version(self) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        if self.package is None:
            return None
        try:
            return f"{self.package} {version(self.package)}"
        except PackageNotFoundError:
            return None

    def close(self) -> None:
        self.model = None


def folder_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (or of the file itself)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
