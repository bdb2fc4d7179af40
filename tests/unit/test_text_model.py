"""The trained text model: corpus quality, held-out accuracy, speed, determinism, sharing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from importlib import resources

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
from sklearn.metrics import classification_report, f1_score  # type: ignore[import-untyped]
from sklearn.metrics.pairwise import cosine_similarity  # type: ignore[import-untyped]

from bot.domain.vocabulary import IncidentType
from bot.text_model import (
    CorpusError,
    Example,
    LazyTextModel,
    SklearnTextModel,
    load_corpus,
    parse_corpus,
    split_corpus,
)

pytestmark = pytest.mark.unit

MIN_MACRO_F1 = 0.8
MIN_EXAMPLES_PER_TYPE = 50
NEAR_DUPLICATE = 0.8


@pytest.fixture(scope="module")
def corpus() -> list[Example]:
    return load_corpus()


@pytest.fixture(scope="module")
def split(corpus: list[Example]) -> tuple[list[Example], list[Example]]:
    return split_corpus(corpus)


@pytest.fixture(scope="module")
def trained_on_split(split: tuple[list[Example], list[Example]]) -> SklearnTextModel:
    return SklearnTextModel.train(split[0])


def test_every_type_has_enough_examples(corpus: list[Example]) -> None:
    counts = Counter(example.incident_type for example in corpus)
    short = {k.value: counts[k] for k in IncidentType if counts[k] < MIN_EXAMPLES_PER_TYPE}
    assert short == {}


def test_no_text_appears_twice(corpus: list[Example]) -> None:
    texts = Counter(example.text.lower() for example in corpus)
    assert [text for text, n in texts.items() if n > 1] == []


def test_third_party_corpus_files_keep_their_licence_beside_them() -> None:
    folder = resources.files("bot").joinpath("data", "corpus")
    names = {entry.name for entry in folder.iterdir()}
    for name in names - {"warroom.jsonl"}:
        if name.endswith(".jsonl"):
            assert f"{name.removesuffix('.jsonl')}-LICENSE.txt" in names, name


def test_held_out_macro_f1_is_at_least_0_8(
    split: tuple[list[Example], list[Example]], trained_on_split: SklearnTextModel
) -> None:
    _, held_out = split
    truth = [example.incident_type.value for example in held_out]
    predicted = [kind.value for kind in trained_on_split.predict([e.text for e in held_out])]
    score = f1_score(truth, predicted, average="macro")
    print(f"\nheld-out macro-F1 {score:.3f} on {len(held_out)} examples")
    assert score >= MIN_MACRO_F1, classification_report(truth, predicted, zero_division=0)


def test_held_out_texts_are_not_near_duplicates_of_training_texts(
    split: tuple[list[Example], list[Example]],
) -> None:
    train, held_out = split
    words = TfidfVectorizer().fit([e.text for e in train] + [e.text for e in held_out])
    similarity = cosine_similarity(
        words.transform([e.text for e in held_out]), words.transform([e.text for e in train])
    )
    closest = similarity.max(axis=1)
    worst = int(closest.argmax())
    assert closest[worst] < NEAR_DUPLICATE, held_out[worst].text


def test_the_split_is_stratified_and_fixed(
    corpus: list[Example], split: tuple[list[Example], list[Example]]
) -> None:
    _, held_out = split
    assert split_corpus(corpus)[1] == held_out
    counts = Counter(example.incident_type for example in held_out)
    assert set(counts) == set(IncidentType)
    assert len(held_out) == pytest.approx(len(corpus) * 0.25, abs=1)


def test_training_on_the_whole_corpus_takes_well_under_two_seconds(
    corpus: list[Example],
) -> None:
    SklearnTextModel.train(corpus[::8])  # imports and warms scikit-learn first
    timings = []
    for _ in range(2):  # the better of two, so a busy machine does not fail the test
        started = time.perf_counter()
        SklearnTextModel.train(corpus)
        timings.append(time.perf_counter() - started)
    print(f"\ntrained on {len(corpus)} examples in {min(timings):.2f}s")
    assert min(timings) < 2.0


def test_training_is_deterministic(split: tuple[list[Example], list[Example]]) -> None:
    train, held_out = split
    texts = [example.text for example in held_out[:40]]
    first, second = SklearnTextModel.train(train), SklearnTextModel.train(train)
    assert [first.rank(t) for t in texts] == [second.rank(t) for t in texts]


def test_a_ranking_covers_every_type_with_probabilities_summing_to_one(
    trained_on_split: SklearnTextModel,
) -> None:
    ranking = trained_on_split.rank("The chatbot invented a refund policy")
    assert {kind for kind, _ in ranking} == set(IncidentType)
    assert sum(p for _, p in ranking) == pytest.approx(1.0)
    assert [p for _, p in ranking] == sorted((p for _, p in ranking), reverse=True)


@pytest.mark.parametrize(
    "text", ["", "   ", "lunch menu for friday", "zxqv wubble frobnicate", "12345 !!!"]
)
def test_empty_or_off_topic_text_gives_no_reading(
    trained_on_split: SklearnTextModel, text: str
) -> None:
    assert trained_on_split.rank(text) == []


def test_the_lazy_model_trains_once_for_many_threads(corpus: list[Example]) -> None:
    lazy = LazyTextModel(corpus[::4])
    seen: list[SklearnTextModel] = []

    def use() -> None:
        lazy.rank("latency spike on the chat API")
        seen.append(lazy.model())

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    assert all(model is seen[0] for model in seen)


def test_the_lazy_model_answers_empty_text_without_training() -> None:
    lazy = LazyTextModel([])
    assert lazy.rank("  ") == []


def test_a_bad_corpus_line_names_its_file_and_line() -> None:
    lines = ['{"text": "Latency spike", "type": "performance_degradation"}', "", '{"text": "x"}']
    with pytest.raises(CorpusError, match=r"^extra\.jsonl:3: "):
        parse_corpus(lines, name="extra.jsonl")
    with pytest.raises(CorpusError, match=r"^extra\.jsonl:1: "):
        parse_corpus(['{"text": "x", "type": "not_a_type"}'], name="extra.jsonl")
