"""Shared pieces of the property suite: seeded settings, a counter of generated cases (printed at the end of
the run by conftest's terminal summary), and the contract every prediction must keep."""

from __future__ import annotations

import collections
import functools
import math

from hypothesis import HealthCheck, settings

#: Generated cases run, by test; conftest prints the total at the end of the session.
CASES: collections.Counter = collections.Counter()


def seeded(max_examples: int):
    """Hypothesis settings of the suite: derandomized (the same cases on every run and machine), no deadline
    (a slow machine must not fail a test), no example database (nothing written outside the run)."""
    return settings(max_examples=max_examples, derandomize=True, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


def counted(test):
    """Count each generated case of ``test`` in `CASES` (put it under ``@given``)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        CASES[test.__name__] += 1
        return test(*args, **kwargs)

    return run


def check_predictions(texts, predictions) -> None:
    """The contract of `Model.predict`: one prediction per input, each a valid one or `Invalid` with a reason;
    labels non-empty str with a score in [0, 1] or None; spans inside their text, in order, not overlapping,
    their text the input's slice; embeddings finite."""
    from specnb.tasks import Embedding, Entities, Generation, Invalid, Label

    assert isinstance(predictions, list) and len(predictions) == len(texts), (len(texts), predictions)
    for text, prediction in zip(texts, predictions):
        if isinstance(prediction, Invalid):
            assert isinstance(prediction.reason, str) and prediction.reason.strip(), prediction
        elif isinstance(prediction, Label):
            assert isinstance(prediction.label, str) and prediction.label, prediction
            assert prediction.score is None or 0.0 <= prediction.score <= 1.0, prediction
        elif isinstance(prediction, Entities):
            end = 0
            for span in prediction.spans:
                assert end <= span.start < span.end <= len(text), (text, prediction)
                assert text[span.start:span.end] == span.text, (text, span)
                assert span.score is None or 0.0 <= span.score <= 1.0, span
                end = span.end
        elif isinstance(prediction, Embedding):
            assert all(math.isfinite(x) for x in prediction.vector), prediction
        else:
            assert isinstance(prediction, Generation), prediction
