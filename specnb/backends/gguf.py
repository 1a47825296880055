"""GGUF generalists: dequantized once by transformers, cached as a safetensors folder.

transformers dequantizes a GGUF file on every ``from_pretrained(gguf_file=...)`` (16 s for
SmolLM2-135M here); the cached folder reloads in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path

from ..errors import MissingDependencyError, NotAModelError
from ..settings import config
from .folder import inspect_folder
from .hf import TransformersBackend

__all__ = ["GGUFBackend", "cache_key", "gguf_cache_dir", "ensure_gguf_cache", "gguf_parameters"]

# Bump when the layout of a cached folder changes, so old caches are rebuilt.
CACHE_FORMAT = 1
# A temporary folder this old belongs to a conversion that died.
STALE_TMP_SECONDS = 3600
MARKER = "specnb-gguf.json"


def cache_key(path: Path) -> str:
    """Cache folder name for a GGUF file: its stem and a digest of its path, size and mtime."""
    stat = path.stat()
    ident = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{CACHE_FORMAT}"
    return f"{path.stem}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


def gguf_cache_dir(path: Path) -> Path:
    """Where the safetensors copy of the GGUF file ``path`` lives (it may not exist yet)."""
    return config.cache_dir / "gguf" / cache_key(Path(path))


def check_gguf(path: Path) -> None:
    """NotAModelError naming ``path`` unless it starts as a GGUF file does (its magic and a version)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise NotAModelError(f"{str(path)!r} cannot be read ({exc})") from exc
    if len(head) < 8 or head[:4] != b"GGUF":
        raise NotAModelError(f"{str(path)!r} is not a GGUF file (it does not start with the GGUF magic): "
                             "the file is damaged or has the wrong extension")


def gguf_parameters(path: Path) -> int | None:
    """Parameter count from the GGUF header, or None when gguf is not installed."""
    try:
        from gguf import GGUFReader
    except ImportError:
        return None
    check_gguf(path)
    try:
        reader = GGUFReader(str(path))
        return int(sum(int(t.n_elements) for t in reader.tensors))
    except Exception as exc:  # the reader's own errors on a damaged file: ValueError, IndexError, struct.error…
        raise NotAModelError(f"{str(path)!r} is a damaged GGUF file ({type(exc).__name__}: {exc})") from exc


def ensure_gguf_cache(path: Path) -> tuple[Path, bool]:
    """Return (cached folder, whether it was built now), converting ``path`` when needed.

    The folder is built in a temporary sibling and renamed into place, so a crash never leaves a
    half-written cache that a later load would trust.
    """
    path = Path(path)
    if not path.is_file() or path.suffix != ".gguf":
        raise NotAModelError(f"{str(path)!r} is not a .gguf file")
    check_gguf(path)
    target = gguf_cache_dir(path)
    if (target / MARKER).is_file():
        return target, False
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise MissingDependencyError(
            f"loading GGUF file {path.name!r} needs the gguf and accelerate packages: pip install 'specnb[gguf]'"
        ) from exc
    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep(target.parent, path)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a shared SPECNB_HOME should stay readable
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        except (ValueError, IndexError, KeyError, TypeError, struct.error) as exc:
            raise NotAModelError(f"{str(path)!r} is a GGUF file transformers cannot read ({type(exc).__name__}: "
                                 f"{exc}): the file is damaged, or its architecture is not one transformers "
                                 "converts") from exc
        # The weights are plain tensors now; drop the GGUF quantizer so save_pretrained accepts them.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        meta = {
            "source": str(path.resolve()),
            "size": path.stat().st_size,
            "format": CACHE_FORMAT,
            "convert_seconds": round(time.perf_counter() - started, 2),
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=2))
        del model
        if target.exists() and not (target / MARKER).is_file():
            shutil.rmtree(target)  # an untrusted leftover (a copy cut short, an older layout)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first
            if not (target / MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target, True


def _sweep(cache: Path, source: Path) -> None:
    """Remove what earlier conversions left: dead temporary folders, and caches of older versions
    of the same source file (same path, other size or mtime)."""
    now = time.time()
    resolved = str(source.resolve())
    for entry in cache.iterdir():
        try:
            if entry.name.endswith(".tmp"):
                if now - entry.stat().st_mtime > STALE_TMP_SECONDS:
                    shutil.rmtree(entry, ignore_errors=True)
                continue
            marker = entry / MARKER
            if marker.is_file() and json.loads(marker.read_text()).get("source") == resolved:
                shutil.rmtree(entry, ignore_errors=True)
        except (OSError, ValueError):
            continue  # another process is busy with it; leave it alone


class GGUFBackend(TransformersBackend):
    """A GGUF causal LM, served from its cached safetensors copy (converted on first load)."""

    name = "gguf"

    def __init__(self, task: str, device: str, dtype: str, gguf_path: Path):
        super().__init__(task, device, dtype, str(gguf_path), causal=True)
        self.gguf_path = Path(gguf_path)
        self.converted = False  # whether this load had to dequantize the file

    def load(self) -> None:
        self.check_dtype()  # before the (slow) conversion
        folder, self.converted = ensure_gguf_cache(self.gguf_path)
        self.source = str(folder)
        self.info = inspect_folder(folder)
        super().load()
