"""The trained text model: TF-IDF word and character n-grams into a calibrated linear SVM.

It is trained from the labelled corpus in ``bot/data/corpus/`` the first time a process needs
it (about a third of a second for ~800 examples), kept in memory, and shared by every thread.
Training is deterministic: fixed fold order and a fixed random state.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from bot.domain.vocabulary import IncidentType

log = logging.getLogger(__name__)

RANDOM_STATE = 20260
HELD_OUT_SHARE = 0.25
CORPUS_PACKAGE = "bot"
CORPUS_FOLDER = ("data", "corpus")


class CorpusError(ValueError):
    """A corpus line that is not a labelled example."""


@dataclass(frozen=True)
class Example:
    text: str
    incident_type: IncidentType
    source: str


def parse_corpus(lines: Iterable[str], *, name: str) -> list[Example]:
    """Examples from JSON Lines of ``{"text", "type"[, "source"]}``; blank lines are skipped."""
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            kind = IncidentType(record["type"])
            text = record["text"]
        except (ValueError, KeyError, TypeError) as error:
            raise CorpusError(f"{name}:{number}: not a labelled example ({error})") from None
        if not isinstance(text, str) or not text.strip():
            raise CorpusError(f"{name}:{number}: empty text")
        source = record.get("source", f"{name}:{number}")
        examples.append(Example(text=text.strip(), incident_type=kind, source=str(source)))
    return examples


def load_corpus() -> list[Example]:
    """Every example of the packaged corpus, files in name order, lines in file order."""
    folder = resources.files(CORPUS_PACKAGE).joinpath(*CORPUS_FOLDER)
    examples: list[Example] = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".jsonl"):
            text = entry.read_text(encoding="utf-8")
            examples.extend(parse_corpus(text.splitlines(), name=entry.name))
    return examples


def split_corpus(
    examples: Sequence[Example],
    *,
    held_out: float = HELD_OUT_SHARE,
    random_state: int = RANDOM_STATE,
) -> tuple[list[Example], list[Example]]:
    """A fixed stratified split into training and held-out examples."""
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    train, test = train_test_split(
        list(examples),
        test_size=held_out,
        stratify=[example.incident_type.value for example in examples],
        random_state=random_state,
    )
    return list(train), list(test)


class SklearnTextModel:
    """A fitted pipeline plus the content words it has seen (to notice off-topic text)."""

    def __init__(self, pipeline: Any, known_words: frozenset[str], analyzer: Any) -> None:
        self._pipeline = pipeline
        self._known_words = known_words
        self._analyzer = analyzer
        self._classes = tuple(IncidentType(name) for name in pipeline.classes_)

    @classmethod
    def train(cls, examples: Sequence[Example]) -> SklearnTextModel:
        """Fit the model on labelled examples."""
        # Imported here: scikit-learn takes a second to import, and most commands never train.
        from sklearn.calibration import CalibratedClassifierCV  # type: ignore[import-untyped]
        from sklearn.feature_extraction.text import (  # type: ignore[import-untyped]
            CountVectorizer,
            TfidfVectorizer,
        )
        from sklearn.pipeline import Pipeline, make_union  # type: ignore[import-untyped]
        from sklearn.svm import LinearSVC  # type: ignore[import-untyped]

        texts = [example.text for example in examples]
        labels = [example.incident_type.value for example in examples]
        pipeline = Pipeline(
            [
                (
                    "features",
                    make_union(
                        TfidfVectorizer(
                            analyzer="word",
                            ngram_range=(1, 2),
                            sublinear_tf=True,
                            strip_accents="unicode",
                        ),
                        TfidfVectorizer(
                            analyzer="char_wb",
                            ngram_range=(2, 5),
                            min_df=2,
                            sublinear_tf=True,
                            strip_accents="unicode",
                        ),
                    ),
                ),
                (
                    "classifier",
                    CalibratedClassifierCV(
                        LinearSVC(C=0.5, max_iter=10_000, random_state=RANDOM_STATE),
                        cv=3,
                        method="sigmoid",
                        ensemble=False,
                    ),
                ),
            ]
        )
        pipeline.fit(texts, labels)
        # Content words seen at least twice: character n-grams match almost any text, so a
        # reading needs at least one of these words behind it.
        words = CountVectorizer(stop_words="english", min_df=2, strip_accents="unicode")
        words.fit(texts)
        return cls(pipeline, frozenset(words.vocabulary_), words.build_analyzer())

    def knows(self, text: str) -> bool:
        """Whether the text shares at least one content word with the training corpus."""
        return any(word in self._known_words for word in self._analyzer(text))

    def rank(self, text: str) -> list[tuple[IncidentType, float]]:
        """Every type with its probability, best first; empty for empty or off-topic text."""
        return self.rank_many([text])[0]

    def rank_many(self, texts: Sequence[str]) -> list[list[tuple[IncidentType, float]]]:
        """`rank` of each text, with one pass of the pipeline for all of them."""
        readable = [text for text in texts if text.strip() and self.knows(text)]
        rows = self._pipeline.predict_proba(readable) if readable else []
        rankings = {
            text: sorted(
                zip(self._classes, (float(p) for p in probabilities), strict=True),
                key=lambda pair: -pair[1],
            )
            for text, probabilities in zip(readable, rows, strict=True)
        }
        return [list(rankings.get(text, [])) for text in texts]

    def predict(self, texts: Sequence[str]) -> list[IncidentType]:
        """The most likely type of each text, ignoring confidence."""
        return [IncidentType(name) for name in self._pipeline.predict(list(texts))]

    def prepare(self) -> None:
        """Nothing to do: a trained model is ready."""


class LazyTextModel:
    """Trains on first use, once, however many threads ask at the same time."""

    def __init__(self, examples: Sequence[Example] | None = None) -> None:
        self._examples = examples
        self._model: SklearnTextModel | None = None
        self._lock = threading.Lock()

    def model(self) -> SklearnTextModel:
        """The trained model, training it now if no one has yet."""
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                examples = self._examples if self._examples is not None else load_corpus()
                self._model = SklearnTextModel.train(examples)
                log.debug(
                    "trained the text model on %d examples in %.2fs",
                    len(examples),
                    time.perf_counter() - started,
                )
            return self._model

    def rank(self, text: str) -> list[tuple[IncidentType, float]]:
        """Every type with its probability, best first (training first if needed)."""
        return self.rank_many([text])[0]

    def rank_many(self, texts: Sequence[str]) -> list[list[tuple[IncidentType, float]]]:
        """`rank` of each text (training first if needed)."""
        if not any(text.strip() for text in texts):
            return [[] for _ in texts]
        return self.model().rank_many(texts)

    def prepare(self) -> None:
        """Train now rather than on the first ranking."""
        self.model()


_SHARED = LazyTextModel()


def shared_text_model() -> LazyTextModel:
    """The process-wide model trained on the packaged corpus."""
    return _SHARED
