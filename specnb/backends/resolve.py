"""Turn what the user passed to ``load`` into a plan: which backend, which tasks, what it costs.

Nothing here imports torch; folders are read from their JSON and safetensors headers.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

from .._catalog import ENTRIES, CatalogEntry, close_matches, get_entry, hub_cache_dir, hub_snapshot
from ..errors import HubUnavailableError, MissingDependencyError, NotAModelError, UnknownModelError, UnsafeWeightsError
from ..tasks import TASKS
from .base import folder_bytes
from .plan import Plan
from .plan import slug as _slug

__all__ = ["Plan", "resolve", "hub_reachable"]

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 4, None: 4}  # int8 loads as float32 first


# -- reachability ----------------------------------------------------------------------------
_reach_cache: dict[str, tuple[float, bool]] = {}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens (cached for a minute).

    Behind a proxy a direct connection proves nothing, so then the answer is yes and the download
    itself decides.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    now = time.monotonic()
    cached = _reach_cache.get(endpoint)
    if cached and now - cached[0] < 60:
        return cached[1]
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    _reach_cache[endpoint] = (now, ok)
    return ok


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


# -- plans per kind ----------------------------------------------------------------------------
def _tasks_and_role(config: dict, entry: CatalogEntry | None) -> tuple[str, tuple[str, ...], str]:
    """(default task, supported tasks, role) of a transformers model; a catalog entry has the last word."""
    from .folder import infer_tasks

    default, tasks = infer_tasks(config)
    if entry is not None:
        return entry.task, tasks, entry.role
    return default, tasks, "generalist" if default == "generate" else "specialist"


def _transformers_plan(path: Path, *, key: str, source: str, alias: str, entry, trust_remote_code, allow_pickle) -> Plan:
    from .folder import check_remote_code, inspect_folder, is_causal, safetensors_parameters
    from .hf import TransformersBackend

    info = inspect_folder(path)
    if not info.safetensors and not allow_pickle:
        names = ", ".join(p.name for p in info.pickled)
        raise UnsafeWeightsError(
            f"{source!r} holds only pickled weights ({names}); unpickling can run arbitrary code. "
            "Convert them to safetensors (model.save_pretrained(folder) writes model.safetensors), "
            "or pass allow_pickle=True if you trust the source."
        )
    check_remote_code(info.config, repr(source), trust_remote_code)
    default, tasks, role = _tasks_and_role(info.config, entry)

    def estimate(dtype):
        if info.safetensors:
            count, _ = safetensors_parameters(info.safetensors)
            return count * _DTYPE_BYTES[dtype]
        return sum(p.stat().st_size for p in info.pickled) * _DTYPE_BYTES[dtype] // 4

    def make(task, device, dtype):
        return TransformersBackend(
            task, device, dtype, str(path), info=info, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
            causal=is_causal(info.config),
        )

    return Plan(key, source, "transformers", alias, tasks, default, role, False, make, estimate, entry)


def _gguf_plan(path: Path, *, key: str, source: str, alias: str, entry) -> Plan:
    from .folder import GENERALIST_TASKS, safetensors_parameters
    from .gguf import MARKER, GGUFBackend, cache_key, gguf_cache_dir, gguf_parameters

    key = f"{key}@{cache_key(path)}"  # a rewritten file is a new model, not the loaded one

    def estimate(dtype):
        cached = gguf_cache_dir(path)
        if (cached / MARKER).is_file():
            count, _ = safetensors_parameters(sorted(cached.glob("*.safetensors")))
        else:
            count = entry.parameters if entry is not None and entry.parameters else gguf_parameters(path)
        return None if count is None else count * _DTYPE_BYTES[dtype]

    def make(task, device, dtype):
        return GGUFBackend(task, device, dtype, path)

    role = entry.role if entry is not None else "generalist"
    return Plan(key, source, "gguf", alias, GENERALIST_TASKS, "generate", role, False, make, estimate, entry)


def _fasttext_plan(path: Path, *, key: str, source: str, alias: str, entry) -> Plan:
    from .fasttext_backend import FastTextBackend

    return Plan(
        key, source, "fasttext", alias, ("langid", "classify"), "langid", "specialist", True,
        lambda task, device, dtype: FastTextBackend(task, device, dtype, path),
        lambda dtype: path.stat().st_size, entry,
    )


def _spacy_plan(path: Path, *, key: str, source: str, alias: str, entry) -> Plan:
    from .spacy_backend import SpacyBackend

    return Plan(
        key, source, "spacy", alias, ("ner",), "ner", "specialist", True,
        lambda task, device, dtype: SpacyBackend(task, device, dtype, path),
        lambda dtype: folder_bytes(path), entry,
    )


def _catalog_plan(entry: CatalogEntry, trust_remote_code: bool, allow_pickle: bool) -> Plan:
    if not entry.embedded:
        return _hub_plan(entry.source, entry=entry, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    where = entry.local_path()
    if where is None:
        raise MissingDependencyError(
            f"the embedded model {entry.name!r} ships in the package {entry.package!r}, which is not installed "
            f"here: {entry.install_hint}"
        )
    common = {"key": f"catalog:{entry.name}", "source": entry.name, "alias": entry.name, "entry": entry}
    if entry.backend == "transformers":
        return _transformers_plan(where, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, **common)
    if entry.backend == "gguf":
        return _gguf_plan(where, **common)
    if entry.backend == "fasttext":
        return _fasttext_plan(where, **common)
    if entry.backend == "spacy":
        from .spacy_backend import find_spacy_data_dir

        data = find_spacy_data_dir(where)
        if data is None:
            raise NotAModelError(f"package {entry.package!r} holds no spaCy pipeline (meta.json + config.cfg) under {where}")
        return _spacy_plan(data, **common)
    if entry.backend == "lexicon":
        from .lexicon import VaderBackend

        return Plan(
            common["key"], entry.name, "lexicon", entry.name, ("sentiment",), "sentiment", entry.role, True,
            lambda task, device, dtype: VaderBackend(task, device, dtype, where),
            lambda dtype: where.stat().st_size, entry,
        )
    raise NotAModelError(f"catalog entry {entry.name!r} names backend {entry.backend!r}, which specnb does not have; "
                         "backends: transformers, gguf, fasttext, spacy, lexicon")


def _hub_plan(repo_id: str, *, entry=None, trust_remote_code: bool, allow_pickle: bool) -> Plan:
    alias = entry.name if entry is not None else _slug(repo_id.rsplit("/", 1)[-1])
    snapshot = hub_snapshot(repo_id)
    if snapshot is not None:
        return _transformers_plan(
            snapshot, key=f"hub:{repo_id}", source=repo_id, alias=alias, entry=entry,
            trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
        )
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if _hub_offline() or not hub_reachable():
        why = "HF_HUB_OFFLINE is set" if _hub_offline() else f"{endpoint} cannot be reached from this machine"
        raise HubUnavailableError(
            f"{repo_id!r} needs the Hugging Face hub, but {why} and the model is not in the local cache "
            f"({hub_cache_dir()}). Download it where the hub is reachable "
            f"(huggingface-cli download {repo_id}) and copy the cache here, or load a local folder written by "
            "save_pretrained; specnb.catalog() shows which models work offline."
        )
    return _remote_hub_plan(repo_id, alias=alias, entry=entry, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def _remote_hub_plan(repo_id: str, *, alias: str, entry, trust_remote_code: bool, allow_pickle: bool) -> Plan:
    """A hub model not yet cached: fetch its config to learn the task, let transformers download the rest."""
    import json

    from huggingface_hub import hf_hub_download

    from .folder import check_remote_code, is_causal
    from .hf import TransformersBackend

    try:
        config = json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text())
    except Exception as exc:  # the hub answers 401/404 for unknown or gated repos
        raise UnknownModelError(f"the hub has no readable model {repo_id!r} ({type(exc).__name__}: {exc})") from exc
    check_remote_code(config, repr(repo_id), trust_remote_code)
    default, tasks, role = _tasks_and_role(config, entry)

    def make(task, device, dtype):
        return TransformersBackend(
            task, device, dtype, repo_id, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
            causal=is_causal(config),
        )

    def estimate(dtype):
        return entry.parameters * _DTYPE_BYTES[dtype] if entry is not None and entry.parameters else None

    return Plan(f"hub:{repo_id}", repo_id, "transformers", alias, tasks, default, role, False, make, estimate, entry)


def _callable_plan(fn, task: str | None) -> Plan:
    from ..errors import TaskError
    from .callable_backend import CallableBackend

    if task is None:
        raise TaskError(f"a callable model needs task=...; valid tasks: {', '.join(TASKS)}")
    name = getattr(fn, "__name__", type(fn).__name__)
    return Plan(
        f"callable:{id(fn)}", f"callable {name}", "callable", _slug(name), tuple(TASKS), task,
        "generalist" if task == "generate" else "specialist", True,
        lambda task, device, dtype: CallableBackend(task, device, dtype, fn),
        lambda dtype: 0,
    )


def _path_plan(path: Path, trust_remote_code: bool, allow_pickle: bool) -> Plan:
    resolved = path.resolve()
    common = {"key": f"path:{resolved}", "source": str(path), "alias": _slug(resolved.stem if resolved.is_file() else resolved.name), "entry": None}
    if resolved.is_file():
        if resolved.suffix == ".gguf":
            from .gguf import check_gguf

            check_gguf(resolved)
            return _gguf_plan(resolved, **common)
        if resolved.suffix in (".ftz",):
            return _fasttext_plan(resolved, **common)
        if resolved.suffix == ".bin" and resolved.stat().st_size > 0 and not (resolved.parent / "config.json").exists():
            return _fasttext_plan(resolved, **common)
        raise NotAModelError(
            f"file {str(path)!r} is not a model file specnb can load: expected a .gguf file, a fastText .ftz/.bin "
            "file, or a folder (transformers folder with config.json, or a spaCy pipeline)"
        )
    from .spacy_backend import is_spacy_pipeline

    if is_spacy_pipeline(resolved):
        return _spacy_plan(resolved, **common)
    ggufs = sorted(resolved.glob("*.gguf"))
    if ggufs and not (resolved / "config.json").exists():
        if len(ggufs) > 1:
            raise NotAModelError(
                f"folder {str(path)!r} holds several GGUF files ({', '.join(g.name for g in ggufs)}); pass the one to load"
            )
        return _gguf_plan(ggufs[0], **common)
    return _transformers_plan(resolved, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, **common)


def resolve(source, *, task: str | None, trust_remote_code: bool = False, allow_pickle: bool = False,
            endpoint: dict | None = None) -> Plan:
    """Decide how to load ``source``: a catalog name, a local path, a hub id (org/name), an endpoint
    (``openai:NAME``, ``openai:NAME@URL`` or a base URL; ``endpoint`` holds its options) or a callable."""
    endpoint = {k: v for k, v in (endpoint or {}).items() if v is not None and v is not True}
    if isinstance(source, str) and source.strip().startswith(("openai:", "http://", "https://")):
        from .endpoint_load import endpoint_plan

        return endpoint_plan(source.strip(), endpoint)
    if endpoint:
        from ..errors import InputError

        raise InputError(f"{', '.join(f'{k}=' for k in endpoint)} apply to endpoint models (a source such as "
                         f"'openai:gpt-4o-mini' or 'http://127.0.0.1:8000/v1'); {source!r:.80} is not one")
    if callable(source) and not isinstance(source, (str, os.PathLike)):
        return _callable_plan(source, task)
    if not isinstance(source, (str, os.PathLike)):
        raise UnknownModelError(
            f"cannot load {source!r} (type {type(source).__name__}); pass a catalog name, a local folder or file, "
            "a hub id such as 'org/name', or a callable"
        )
    text = os.fspath(source).strip()
    if text in ENTRIES:
        return _catalog_plan(get_entry(text), trust_remote_code, allow_pickle)
    path = Path(text).expanduser()
    if path.exists():
        return _path_plan(path, trust_remote_code, allow_pickle)
    if path.is_symlink():
        raise NotAModelError(f"{text!r} is a symbolic link that points nowhere or loops; point it at the model "
                             "folder or file")
    looks_like_path = text.startswith((".", "/", "~")) or os.sep in text and not _HUB_ID.fullmatch(text)
    if looks_like_path or isinstance(source, os.PathLike):
        raise NotAModelError(f"no such file or folder: {text!r}")
    if _HUB_ID.fullmatch(text):
        return _hub_plan(text, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    matches = close_matches(text, ENTRIES)
    hint = f" Did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""
    raise UnknownModelError(
        f"no model called {text!r}.{hint} specnb.catalog() lists the known names; a local folder or "
        "a hub id with its organisation (e.g. 'openai-community/gpt2') also works."
    )
