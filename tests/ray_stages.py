"""Python stages for tests/test_ray.py: importable by path, so Ray workers can run them."""

from __future__ import annotations

import specnb


@specnb.stage(reads=["text"], writes=["words", "shout"])
def word_stats(records):
    """Count words; shout the text when VADER found it positive (a field only some records have)."""
    for record in records:
        record["words"] = len(record["text"].split())
        if record.get("sentiment") == "positive":
            record["shout"] = record["text"].upper()


@specnb.stage(writes=["broken"])
def drops_a_record(records):
    """Returns one dict too few: the executor must refuse it."""
    return [dict(r, broken=True) for r in records[1:]]


@specnb.stage(writes=["worker_tasks"])
def worker_tasks(records):
    """The default task of each model loaded in this worker's registry, by alias."""
    tasks = {model.alias: model.task for model in specnb.registry}
    for record in records:
        record["worker_tasks"] = tasks
