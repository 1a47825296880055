"""Python stages importable by path (the CLI and Ray workers import them; notebook functions they cannot)."""

import specnb


@specnb.stage(reads=["text"], writes=["length"])
def add_length(records):
    for record in records:
        record["length"] = len(record["text"] or "")


@specnb.stage(writes=["shout"])
def shout(records):
    return [{**r, "shout": str(r.get("text", "")).upper()} for r in records]
