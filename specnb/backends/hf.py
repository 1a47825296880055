"""transformers models: encoders (embed, classify, ner) and causal LMs (generate).

Only ``_forward``-like steps touch the device; batching, ordering and ``inference_mode`` come from
`specnb.engine`.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DeviceError, NotAModelError, TaskError, UnsafeWeightsError
from ..tasks import TASKS, Embedding, Entities, Label, Span, sentiment_label
from ..tasks.langid import is_language_code, language_code
from .base import Backend
from .zeroshot import ZERO_SHOT_TASKS

__all__ = [
    "FolderInfo",
    "inspect_folder",
    "infer_tasks",
    "TransformersBackend",
    "safetensors_parameters",
    "group_entities",
    "words_from_tokens",
]

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


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
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise NotAModelError(f"{str(config_path)!r} is not valid JSON ({exc}); save the model again with save_pretrained") from exc
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
    pooling_config = path / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        pooling = json.loads(pooling_config.read_text())
        if pooling.get("pooling_mode_cls_token"):
            info.pooling = "cls"
        elif pooling.get("pooling_mode_max_tokens"):
            info.pooling = "max"
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        info.max_length = json.loads(st_config.read_text()).get("max_seq_length")
    modules = path / "modules.json"
    if modules.is_file():
        info.normalize = any("Normalize" in m.get("type", "") for m in json.loads(modules.read_text()))
    return info


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
        with open(file, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
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


class TransformersBackend(Backend):
    """A transformers model from a local folder or the hub, for one task."""

    name = "transformers"
    cpu_only = False

    def __init__(
        self,
        task: str,
        device: str,
        dtype: str,
        source: str,
        *,
        info: FolderInfo | None = None,
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
        causal: bool | None = None,
    ):
        super().__init__(task, device, dtype)
        self.causal = task == "generate" if causal is None else causal
        self.source = source
        self.info = info
        self.trust_remote_code = trust_remote_code
        self.allow_pickle = allow_pickle
        self.model = None
        self.tokenizer = None

    # -- loading -----------------------------------------------------------------------------
    def _model_class(self):
        import transformers

        if self.causal:
            return transformers.AutoModelForCausalLM
        return {
            "embed": transformers.AutoModel,
            "ner": transformers.AutoModelForTokenClassification,
        }.get(self.task, transformers.AutoModelForSequenceClassification)

    def check_dtype(self) -> None:
        if self.dtype == "int8" and self.causal:
            raise DeviceError("dtype='int8' is the CPU fast path for encoder specialists; load generalists with float32 on the CPU")

    def load(self) -> None:
        import torch
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.check_dtype()
        hf_logging.disable_progress_bar()
        common = {"trust_remote_code": self.trust_remote_code}
        self.tokenizer = AutoTokenizer.from_pretrained(self.source, **common)
        model = self._model_class().from_pretrained(
            self.source,
            dtype=torch.float32 if self.dtype == "int8" else getattr(torch, self.dtype),
            use_safetensors=None if self.allow_pickle else True,
            **common,
        )
        model.to(self.device)
        model.eval()
        if self.dtype == "int8":
            from .quantize import quantize_int8

            model = quantize_int8(model)
        self.model = model
        # Decoders generate after the prompt, so they pad on the left; encoders pad on the right,
        # which keeps each item's tokens (and NER offsets) at the front of its row.
        self.tokenizer.padding_side = "left" if self.causal else "right"
        if self.causal and self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    # -- prediction ----------------------------------------------------------------------------
    def _max_length(self) -> int:
        limit = getattr(self.tokenizer, "model_max_length", None) or 512
        positions = getattr(self.model.config, "max_position_embeddings", None) or limit
        trained = (self.info.max_length if self.info else None) or limit
        return int(min(limit, positions, trained, 8192))

    def labels(self) -> tuple[str, ...] | None:
        if self.causal or self.task == "embed":
            return None
        return tuple(str(v) for v in self.model.config.id2label.values())

    def predict(self, texts, request):
        if self.causal:
            from .causal import CausalTasks

            return CausalTasks(self.model, self.tokenizer, self.device).predict(texts, request)
        task = request.task
        started = time.perf_counter()
        encoded = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self._max_length(),
            return_offsets_mapping=task == "ner",
        )
        ids, masks = encoded["input_ids"], encoded["attention_mask"]
        extra = {k: encoded[k] for k in ("token_type_ids",) if k in encoded}
        offsets = encoded.get("offset_mapping")
        word_ids = [encoded.word_ids(i) for i in range(len(ids))] if task == "ner" else None
        space = self._label_space(task, request.labels) if task not in ("embed", "ner") else None
        prepare = time.perf_counter() - started  # tokenizing counts in the run's time

        def step(batch):
            features = {"input_ids": [ids[i] for i in batch], "attention_mask": [masks[i] for i in batch]}
            for key, values in extra.items():
                features[key] = [values[i] for i in batch]
            inputs = self.tokenizer.pad(features, padding="longest", return_tensors="pt").to(self.device)
            if task == "embed":
                return self._embed(inputs)
            if task == "ner":
                return self._entities(inputs, batch, texts, offsets, word_ids)
            return self._labels(inputs, task, space)

        outputs, stats = request.batches([len(x) for x in ids], step)
        stats.add_shared(prepare)
        return outputs, stats

    def _label_space(self, task: str, labels) -> tuple[list[str], list[int]] | None:
        """(label of each kept class, kept class ids) when a run restricts the labels; None otherwise."""
        id2label = self.model.config.id2label
        if not labels:
            return None
        wanted = {x.casefold(): x for x in labels}
        names, kept = [], []
        for index in sorted(int(k) for k in id2label):
            name = str(id2label[index])
            if task == "sentiment":
                name = sentiment_label(name) or name
            elif task == "langid":
                name = language_code(name)
            if name.casefold() in wanted:
                names.append(wanted[name.casefold()])
                kept.append(index)
        if not kept:
            raise TaskError(
                f"none of this model's labels ({', '.join(str(v) for v in id2label.values())}) is in the label "
                f"space {list(labels)}; pass labels the model knows, or use a generalist for new labels"
            )
        return names, kept

    def _labels(self, inputs, task, space) -> list[Label]:
        logits = self.model(**inputs).logits.float()
        if space is not None:
            names, kept = space
            probs = logits[:, kept].softmax(dim=-1).cpu()
            scores, best = probs.max(dim=-1)
            return [Label(names[int(b)], float(s)) for b, s in zip(best, scores)]
        probs = logits.softmax(dim=-1).cpu()
        scores, best = probs.max(dim=-1)
        id2label = self.model.config.id2label
        labels = [str(id2label[int(b)]) for b in best]
        if task == "sentiment":  # SST-2 style POSITIVE / NEGATIVE into the task's label space
            labels = [sentiment_label(label) or label for label in labels]
        elif task == "langid":
            labels = [language_code(label) for label in labels]
        return [Label(label, float(s)) for label, s in zip(labels, scores)]

    def _embed(self, inputs) -> list[Embedding]:
        import torch

        hidden = self.model(**inputs).last_hidden_state.float()
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooling = self.info.pooling if self.info else "mean"
        if pooling == "cls":
            vectors = hidden[:, 0]
        elif pooling == "max":
            vectors = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
        else:
            vectors = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        if self.info is not None and self.info.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return [Embedding(v) for v in vectors.cpu().numpy()]

    def _entities(self, inputs, batch, texts, offsets, word_ids) -> list[Entities]:
        probs = self.model(**inputs).logits.float().softmax(dim=-1).cpu()
        scores, best = probs.max(dim=-1)
        id2label = self.model.config.id2label
        out = []
        for row, index in enumerate(batch):
            n = len(offsets[index])  # left of the padding
            tags = [str(id2label[int(b)]) for b in best[row, :n]]
            words = words_from_tokens(word_ids[index], offsets[index], tags, scores[row, :n].tolist())
            out.append(Entities(tuple(group_entities(words, texts[index]))))
        return out

    # -- accounting ----------------------------------------------------------------------------
    def parameters(self) -> int | None:
        from .quantize import quantized_parameter_count

        return quantized_parameter_count(self.model)  # counts int8-packed weights too

    def weight_bytes(self) -> int:
        from .quantize import quantized_weight_bytes

        return quantized_weight_bytes(self.model)  # tied weights once; int8-packed weights included

    def version(self) -> str | None:
        commit = getattr(self.model.config, "_commit_hash", None)
        return commit or getattr(self.model.config, "transformers_version", None)

    def close(self) -> None:
        self.model = None
        self.tokenizer = None


def group_entities(words: list[tuple[int, int, str, float]], text: str) -> list[Span]:
    """Merge BIO-tagged words into entity spans with character offsets.

    ``I-X`` (or a bare ``X``) continues an entity of type X; ``B-X`` starts one; ``O`` ends it.
    """
    spans: list[Span] = []
    current = None  # [start, end, type, scores]
    for start, end, tag, score in words:
        prefix, _, kind = tag.partition("-") if "-" in tag else ("", "", tag)
        if kind == "O":
            current = _close(current, spans, text)
        elif current is not None and kind == current[2] and prefix in ("I", ""):
            current[1] = end
            current[3].append(score)
        else:
            _close(current, spans, text)
            current = [start, end, kind, [score]]
    _close(current, spans, text)
    return spans


def words_from_tokens(word_ids: list, offsets: list, tags: list[str], scores: list[float]):
    """One (start, end, tag, score) per word: the tag of its first sub-word, offsets of them all."""
    words: dict[int, list] = {}
    for word, (start, end), tag, score in zip(word_ids, offsets, tags, scores):
        if word is None or end <= start:
            continue
        if word not in words:
            words[word] = [start, end, tag, score]
        else:
            words[word][1] = end
    return [tuple(w) for _, w in sorted(words.items())]


def _close(current, spans: list[Span], text: str):
    if current is not None:
        start, end, kind, scores = current
        spans.append(Span(start, end, kind, text[start:end], sum(scores) / len(scores)))
