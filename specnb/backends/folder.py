"""What a local transformers folder holds, read without torch: config, weight files, pooling, the
tasks its architecture serves, parameter counts from safetensors headers, and the remote-code check.

`specnb.backends.resolve` plans a load from this before any backend (or torch) is imported.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NotAModelError, UnsafeWeightsError
from ..tasks import TASKS, sentiment_label
from ..tasks.langid import is_language_code
from .zeroshot import ZERO_SHOT_TASKS

__all__ = [
    "FolderInfo",
    "inspect_folder",
    "infer_tasks",
    "is_causal",
    "safetensors_parameters",
    "safetensors_header",
    "read_json",
    "check_remote_code",
    "GENERALIST_TASKS",
]

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass
class FolderInfo:
    """What a local transformers folder holds, read without torch."""

    path: Path
    config: dict
    safetensors: list[Path] = field(default_factory=list)
    pickled: list[Path] = field(default_factory=list)
    pooling: str = "mean"
    normalize: bool = False
    max_length: int | None = None  # sentence-transformers' max_seq_length, when set


def inspect_folder(path: Path) -> FolderInfo:
    """Read ``config.json`` and list weight files; NotAModelError when it is not a model folder."""
    config_path = path / "config.json"
    if not config_path.is_file():
        raise NotAModelError(
            f"folder {str(path)!r} is not a model: expected a transformers folder (config.json with "
            "model.safetensors, as save_pretrained writes), a spaCy pipeline (meta.json and config.cfg) "
            "or a .gguf file"
        )
    config = read_json(config_path, dict, "save the model again with save_pretrained")
    info = FolderInfo(path=path, config=config)
    # Only the files transformers loads as the model count: model.safetensors or its shards,
    # pytorch_model.bin or its shards (adapters, optimizer states and training args do not).
    info.safetensors = sorted(path.glob("model*.safetensors"))
    info.pickled = sorted(
        p for p in path.iterdir() if p.is_file() and p.suffix in _PICKLE_SUFFIXES and p.name.startswith("pytorch_model")
    )
    if not info.safetensors and not info.pickled:
        adapters = sorted(p.name for p in path.glob("adapter_model*"))
        extra = f" (it holds {', '.join(adapters)}: adapters need their base model, which specnb does not merge)" if adapters else ""
        raise NotAModelError(
            f"folder {str(path)!r} has config.json but no model weights{extra}: expected model.safetensors "
            "(or sharded model-0000x-of-0000y.safetensors) as save_pretrained writes"
        )
    for file in info.safetensors:  # every header checked before transformers allocates anything
        safetensors_header(file)
    fix = "fix or delete it (sentence-transformers writes it)"
    pooling_config = path / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        pooling = read_json(pooling_config, dict, fix)
        if pooling.get("pooling_mode_cls_token"):
            info.pooling = "cls"
        elif pooling.get("pooling_mode_max_tokens"):
            info.pooling = "max"
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        max_length = read_json(st_config, dict, fix).get("max_seq_length")
        if max_length is not None and not (isinstance(max_length, int) and max_length > 0):
            raise NotAModelError(f"{str(st_config)!r}: max_seq_length must be a positive integer, got {max_length!r}; {fix}")
        info.max_length = max_length
    modules = path / "modules.json"
    if modules.is_file():
        entries = read_json(modules, list, fix)
        info.normalize = any(isinstance(m, dict) and "Normalize" in str(m.get("type", "")) for m in entries)
    return info


def read_json(path: Path, kind: type, fix: str):
    """``path``'s JSON, which must be a ``kind`` (dict or list); NotAModelError naming the file otherwise."""
    what = "an object" if kind is dict else "a list"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NotAModelError(f"{str(path)!r} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(value, kind):
        raise NotAModelError(f"{str(path)!r} holds {type(value).__name__} JSON where {what} is expected; {fix}")
    return value


#: The largest safetensors header read (real ones are a few KB to a few MB).
MAX_SAFETENSORS_HEADER = 100 * 2**20


def safetensors_header(file: Path) -> dict:
    """The tensors a safetensors file declares (name → {dtype, shape, data_offsets}), checked against the
    file's size before anything large is read; NotAModelError naming the file and what is wrong."""
    fix = "the file is damaged or not safetensors: save the model again with save_pretrained"
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise NotAModelError(f"{str(file)!r} is {size} bytes, too short for a safetensors header; {fix}")
            (length,) = struct.unpack("<Q", head)
            if length < 2 or length > min(MAX_SAFETENSORS_HEADER, size - 8):
                raise NotAModelError(f"{str(file)!r} declares a {length:,}-byte header in a {size:,}-byte file; {fix}")
            raw = fh.read(length)
    except OSError as exc:
        raise NotAModelError(f"{str(file)!r} cannot be read ({exc})") from exc
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotAModelError(f"{str(file)!r}: its header is not JSON ({exc}); {fix}") from exc
    if not isinstance(header, dict):
        raise NotAModelError(f"{str(file)!r}: its header is not a JSON object; {fix}")
    data = size - 8 - length
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        shape = meta.get("shape") if isinstance(meta, dict) else None
        offsets = meta.get("data_offsets") if isinstance(meta, dict) else None
        if not (isinstance(meta, dict) and isinstance(meta.get("dtype"), str) and isinstance(shape, list)
                and all(isinstance(d, int) and d >= 0 for d in shape) and isinstance(offsets, list)
                and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data):
            raise NotAModelError(f"{str(file)!r}: tensor {name!r} is declared as {meta!r}, which does not fit "
                                 f"the file's {data:,} bytes of data; {fix}")
    return header


def _label_tasks(labels: list[str]) -> tuple[str, ...]:
    """Label tasks a classifier with these labels serves, its natural one first."""
    if labels and all(sentiment_label(label) for label in labels):
        return ("sentiment", "classify")
    if len(labels) > 2 and all(is_language_code(label) for label in labels):
        return ("langid", "classify")
    return ("classify",)


def infer_tasks(config: dict) -> tuple[str, tuple[str, ...]]:
    """(default task, tasks the architecture can serve) from a config dict."""
    architectures = config.get("architectures") or []
    arch = architectures[0] if architectures else ""
    if arch.endswith("ForSequenceClassification"):
        tasks = _label_tasks([str(v) for v in (config.get("id2label") or {}).values()])
        return tasks[0], tasks
    if arch.endswith("ForTokenClassification"):
        return "ner", ("ner",)
    if is_causal(config):
        return "generate", GENERALIST_TASKS
    # An encoder embeds, and answers classify and sentiment zero-shot (see zeroshot.py).
    return "embed", ("embed", *ZERO_SHOT_TASKS)


# A causal LM serves every task: rank scoring for label tasks, generation for ner (see causal.py).
GENERALIST_TASKS = tuple(TASKS)


def is_causal(config: dict) -> bool:
    architectures = config.get("architectures") or []
    return bool(architectures) and architectures[0].endswith(("ForCausalLM", "ForConditionalGeneration", "LMHeadModel"))


def safetensors_parameters(files: list[Path]) -> tuple[int, str | None]:
    """(element count, most common dtype) from safetensors headers, without loading tensors."""
    names = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
    total, by_dtype = 0, {}
    for file in files:
        header = safetensors_header(file)
        for key, meta in header.items():
            if key == "__metadata__":
                continue
            count = 1
            for dim in meta["shape"]:
                count *= dim
            total += count
            by_dtype[meta["dtype"]] = by_dtype.get(meta["dtype"], 0) + count
    common = max(by_dtype, key=by_dtype.get) if by_dtype else None
    return total, names.get(common)


def check_remote_code(config: dict, where: str, trust_remote_code: bool) -> None:
    """Refuse a model whose architecture exists only as code shipped with it, unless trusted."""
    if trust_remote_code or "auto_map" not in config:
        return
    from transformers import CONFIG_MAPPING

    if config.get("model_type") in CONFIG_MAPPING:
        return  # transformers has this architecture built in; the shipped code is not run
    raise UnsafeWeightsError(
        f"{where} needs trust_remote_code=True: its architecture ({config.get('model_type')!r}) is Python code "
        "shipped with the model, which would run in this kernel. Pass trust_remote_code=True only if you trust it."
    )
