"""transformers models: encoders (embed, classify, ner) and causal LMs (generate).

Only ``_forward``-like steps touch the device; batching, ordering and ``inference_mode`` come from
`specnb.engine`. What a folder holds is read without torch by `specnb.backends.folder`.
"""

from __future__ import annotations

import time

from ..errors import DeviceError, TaskError
from ..tasks import Embedding, Entities, Label, sentiment_label
from ..tasks.langid import language_code
from ..tasks.ner import group_entities, words_from_tokens
from .base import Backend
from .folder import FolderInfo

__all__ = ["TransformersBackend"]


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
