"""The specnb error tree.

Every error specnb raises is a `SpecnbError`; each also derives from the built-in exception that
callers would catch for the same problem (`InputError` and `ConfigError` are a ``ValueError``,
`AliasError` a ``KeyError``, ...), so ``except ValueError`` keeps working. Every message says what
was wrong and what to do instead, or lists the valid choices. Warnings derive from `SpecnbWarning`.

The tree (the built-in base in brackets)::

    SpecnbError
        UnknownModelError [KeyError]       InputError [ValueError]
        NotAModelError [ValueError]        ConfigError [ValueError]
        TaskError [ValueError]             ModelOutputError [RuntimeError]
        HubUnavailableError [ConnectionError]  DatasetError [ValueError]
        UnsafeWeightsError                 PipelineError [ValueError]
        MemoryBudgetError [MemoryError]    StoreError
        DeviceError [ValueError]               RunNotFoundError [KeyError]
        AliasError [KeyError]
        ModelUnloadedError [RuntimeError]
        MissingDependencyError [ImportError]
        EndpointError [ConnectionError]
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
    "ConfigError",
    "ModelOutputError",
    "DatasetError",
    "StoreError",
    "RunNotFoundError",
    "PipelineError",
    "EndpointError",
    "SpecnbWarning",
    "EvictionWarning",
    "InputWarning",
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


class InputError(SpecnbError, ValueError):
    """An argument is not a value the function takes: inputs of the wrong shape or type, labels outside the
    label space, an option out of range."""


class ConfigError(SpecnbError, ValueError):
    """A setting of ``specnb.config`` holds a value it cannot take (a memory size, a token budget, a price)."""


class ModelOutputError(SpecnbError, RuntimeError):
    """A model answered with something that is not one prediction per input for the task: a callable that
    returned the wrong type or count, a backend step that lost or added items."""


class DatasetError(SpecnbError, ValueError):
    """A dataset file that specnb ships or reads is damaged or not in the expected format."""


class StoreError(SpecnbError):
    """The run store cannot be opened or written."""


class RunNotFoundError(StoreError, KeyError):
    """No stored run has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PipelineError(SpecnbError, ValueError):
    """A pipeline cannot be built or run: bad syntax, an unknown model or field, a cycle, a wrong task.
    The message names the line (cell or YAML) when there is one."""


class EndpointError(SpecnbError, ConnectionError):
    """An endpoint model's server cannot be reached, refuses the key or the model, or stopped answering."""


class SpecnbWarning(UserWarning):
    """Base class of specnb's warnings."""


class EvictionWarning(SpecnbWarning):
    """Models were unloaded to make room under a memory budget."""


class InputWarning(SpecnbWarning):
    """Input was read, but maybe not as meant (a CSV whose quoted fields span lines)."""
