"""The specialist's folder: a plain transformers folder (config with ``id2label``, ``model.safetensors``, the
tokenizer), a model card ``README.md`` and ``training.json``, written to a temporary sibling folder and
renamed into place at the end, so that a failed or interrupted run never leaves a half-written model."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ..errors import InputError

__all__ = ["check_out", "write_folder", "model_card"]


def check_out(out: Path, overwrite: bool) -> None:
    """`InputError` before any training when ``out`` cannot be the model's folder."""
    if out.exists() and not overwrite:
        raise InputError(f"out={str(out)!r} exists; pass overwrite=True to replace it, or choose another out= / alias=")
    if out.exists() and not out.is_dir():
        raise InputError(f"out={str(out)!r} is a file; give a folder path")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"out={str(out)!r}: {str(parent)!r} is not a folder this process may write in")


def write_folder(out: Path, model, tokenizer, *, card: str, training: dict, overwrite: bool,
                 max_length: int | None = None) -> Path:
    """Save into ``.NAME.partial-PID`` beside ``out``, then rename it to ``out`` (replacing it when
    ``overwrite``); the partial folder is removed if anything fails. ``max_length`` becomes the saved
    tokenizer's ``model_max_length``, so specnb and ``transformers.pipeline`` cut texts where training did."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        if max_length is not None:
            config_path = partial / "tokenizer_config.json"
            settings = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
            settings["model_max_length"] = max_length
            config_path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
        (partial / "README.md").write_text(card, encoding="utf-8")
        (partial / "training.json").write_text(json.dumps(training, indent=2, default=str), encoding="utf-8")
        if out.exists():
            check_out(out, overwrite)
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(partial, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out


def _metric_rows(metrics: dict) -> str:
    rows = []
    for name, value in metrics.items():
        if isinstance(value, dict):
            rows.append(f"| {name} | {value['value']:.4f} | [{value['low']:.4f}, {value['high']:.4f}] |")
    return "\n".join(rows)


def _split_text(split: dict) -> str:
    """``stratified 20 % held out, seed 0`` from the recorded split."""
    kind = split.get("kind", "none")
    if kind == "none":
        return "no held-out split"
    if kind == "given":
        return "held-out items given apart (eval= a DataFrame)"
    share = split.get("fraction")
    share = f"{share:.0%} " if isinstance(share, (int, float)) else ""
    return f"{kind} {share}held out, seed {split.get('seed')}"


def model_card(*, alias: str, base: str, method: str, task: str, label_space, data: dict, metrics: dict,
               settings: dict, seconds: float, version: str, tags=None) -> str:
    """The model card: base, method, data digest and size, label space (ner: the entity types and the BIO
    ``tags``), held-out metrics with 95 % intervals, training settings, seconds and the specnb version."""
    labels = ", ".join(f"`{x}`" for x in label_space)
    held = _metric_rows(metrics) or "| (no held-out split) | | |"
    knobs = "\n".join(f"- `{k}`: {v}" for k, v in settings.items())
    if task == "ner":
        pipeline_tag = "token-classification"
        usage = ('`transformers.pipeline("token-classification", model=<this folder>, aggregation_strategy="simple")`'
                 " loads it without specnb")
        tagged = ", ".join(f"`{x}`" for x in (tags or ()))
        space = f"- **Entity types**: {labels} (BIO tags {tagged}; held-out metrics are entity-level, exact spans)"
    else:
        pipeline_tag = "text-classification"
        usage = '`transformers.pipeline("text-classification", model=<this folder>)` loads it without specnb'
        space = f"- **Labels**: {labels}"
    hub_id = re.fullmatch(r"[\w.\-]+/[\w.\-]+", base) and not Path(base).expanduser().exists()
    front = f"base_model: {base}\n" if hub_id else ""  # the hub's link to the base (a hub id only, not a path)
    return f"""---
library_name: transformers
pipeline_tag: {pipeline_tag}
{front}tags: [specnb, {task}]
---

# {alias}

A {task} specialist trained with specnb's `specialize` (method `{method}`) on the
base model `{base}`. It is a plain transformers folder:
{usage}.

{space}
- **Training data**: {data['train']:,} texts (digest `{data['digest']}`); held-out: {data['held_out']:,}
  ({_split_text(data['split'])})
- **Seconds**: {seconds:.1f}
- **specnb**: {version}

## Held-out metrics (95 % intervals)

| metric | value | interval |
|---|---|---|
{held}

## Training settings

{knobs}
"""
