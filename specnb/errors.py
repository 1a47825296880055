"""The specnb error tree.

Every message says what was wrong and what to do instead, or lists the valid choices.
"""

from __future__ import annotations

__all__ = [
    "SpecnbError",
    "UnknownModelError",
    "NotAModelError",
    "TaskError",
    "HubUnavailableError",
    "UnsafeWeightsError",
    "MemoryBudgetError",
    "DeviceError",
    "AliasError",
    "ModelUnloadedError",
    "MissingDependencyError",
    "InputError",
    "StoreError",
    "RunNotFoundError",
    "PipelineError",
    "SpecnbWarning",
    "EvictionWarning",
]


class SpecnbError(Exception):
    """Base class of every error specnb raises."""


class UnknownModelError(SpecnbError, KeyError):
    """A name is neither a catalog entry, a loaded alias, a local path nor a hub id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class NotAModelError(SpecnbError, ValueError):
    """A path exists but does not hold a model specnb can load."""


class TaskError(SpecnbError, ValueError):
    """A task name is unknown, or the model cannot serve it."""


class HubUnavailableError(SpecnbError, ConnectionError):
    """The model must come from the Hugging Face hub, which cannot be reached."""


class UnsafeWeightsError(SpecnbError):
    """Loading would run pickled or remote code that the user did not allow."""


class MemoryBudgetError(SpecnbError, MemoryError):
    """A model cannot fit in the device's memory budget."""


class DeviceError(SpecnbError, ValueError):
    """A device or dtype is unknown or unavailable."""


class AliasError(SpecnbError, KeyError):
    """An alias is unknown or already taken."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ModelUnloadedError(SpecnbError, RuntimeError):
    """A handle was used after its model was unloaded."""


class MissingDependencyError(SpecnbError, ImportError):
    """An optional package that a backend needs is not installed."""


class InputError(SpecnbError, TypeError):
    """Inputs are not the shape or type a function takes."""


class StoreError(SpecnbError):
    """The run store cannot be opened or written."""


class RunNotFoundError(StoreError, KeyError):
    """No stored run has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PipelineError(SpecnbError, ValueError):
    """A pipeline cannot be built or run: bad syntax, an unknown model or field, a cycle, a wrong task.
    The message names the line (cell or YAML) when there is one."""


class SpecnbWarning(UserWarning):
    """Base class of specnb's warnings."""


class EvictionWarning(SpecnbWarning):
    """Models were unloaded to make room under a memory budget."""
