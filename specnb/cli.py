"""``specnb`` command line: ``demo``, ``catalog``, ``compare``, ``run`` and ``runs``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "read_table", "INPUT_FORMATS", "OUTPUT_FORMATS"]

#: Data files ``specnb compare`` reads, by extension.
INPUT_FORMATS = {".csv": "CSV", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines", ".parquet": "Parquet"}
#: What ``-o`` writes, by extension: the report, or the per-item table.
OUTPUT_FORMATS = {".html": "to_html", ".csv": "to_csv", ".parquet": "to_parquet", ".json": "to_json"}


def read_table(path):
    """Read a CSV, JSON Lines (``.jsonl``, ``.ndjson``) or Parquet file into a DataFrame.

    Raises
    ------
    InputError
        The file is missing, its extension is not one of `INPUT_FORMATS`, or pandas cannot read it.
    """
    import pandas as pd

    from .errors import InputError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise InputError(f"cannot tell the format of {str(path)!r} from its extension; "
                         f"use one of {', '.join(INPUT_FORMATS)}")
    if not path.exists():
        raise InputError(f"no such file: {str(path)!r}")
    try:
        if suffix == ".csv":
            # Text stays text ("1", "NA" and "001" are inputs too); empty cells stay missing.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
            _check_csv_lines(path, frame)
            return frame
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False)
        return pd.read_parquet(path)
    except Exception as exc:  # pandas and pyarrow raise many types; all mean "not readable as that format"
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"cannot read {str(path)!r} as {INPUT_FORMATS[suffix]}: {detail[:300]}") from exc


def _check_csv_lines(path: Path, frame) -> None:
    """Warn when the CSV's quoting joined lines into one field (an unclosed quote swallows the lines after
    it): fewer rows than the file has non-empty lines, with the rows that span lines named."""
    import warnings

    from .errors import InputWarning

    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        lines = sum(1 for line in fh if line.strip())
    if lines <= len(frame) + 1:
        return
    multiline = frame.apply(lambda col: col.map(lambda v: isinstance(v, str) and "\n" in v)).any(axis=1)
    spanning = [int(i) for i in frame.index[multiline]]
    rows = ", ".join(str(i + 2) for i in spanning[:5]) + (" …" if len(spanning) > 5 else "")
    warnings.warn(f"{str(path)!r}: read {len(frame):,} rows from {lines:,} non-empty lines (header included): "
                  f"quoted fields span lines (row{'s' if len(spanning) != 1 else ''} starting on line {rows}); "
                  "an unclosed quote joins the lines after it — check the file's quoting", InputWarning,
                  stacklevel=3)


def check_output_path(path: Path, flag: str = "-o") -> None:
    """InputError before any work when ``path`` cannot be written: a folder, under a file, or in a folder
    this process may not write."""
    import os

    from .errors import InputError

    if path.is_dir():
        raise InputError(f"{flag} {str(path)!r} is a folder; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {str(path)!r}: {str(parent)!r} is a file, so nothing can be written under it")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{flag} {str(path)!r}: this process may not write there")


def _output_paths(outputs) -> list[Path]:
    from .errors import InputError

    paths = [Path(p) for p in outputs or []]
    for path in paths:
        if path.suffix.lower() not in OUTPUT_FORMATS:
            raise InputError(f"cannot tell what to write to {str(path)!r} from its extension; use one of "
                             f"{', '.join(OUTPUT_FORMATS)} (.html: the report; the others: the per-item table)")
        check_output_path(path)
    return paths


def _write_outputs(comparison, paths) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = getattr(comparison, OUTPUT_FORMATS[path.suffix.lower()])(path)
        print(f"wrote {written}")


def _print_comparison(comparison) -> None:
    from .demo import format_summary
    from .presentation import plural

    state = "" if comparison.status == "finished" else \
        f" ({comparison.status}: {len(comparison.done)} of {len(comparison.inputs)} items done)"
    name = f" {comparison.name!r}" if comparison.name else ""
    print(f"run {comparison.run_id}{name}: {comparison.task}, {plural(len(comparison.inputs), 'item')}, "
          f"models {', '.join(comparison.models)}{state}\n")
    print(format_summary(comparison))


def _columns(frame) -> str:
    return ", ".join(map(str, frame.columns))


def _compare(args) -> int:
    from ._compare import compare
    from .errors import InputError

    outputs = _output_paths(args.output)
    frame = read_table(args.data)
    for option, column in (("--text", args.text), ("--label", args.label)):
        if column is not None and column not in frame.columns:
            raise InputError(f"{args.data} has no column {column!r} ({option}); its columns: {_columns(frame)}")
    label_space = None
    if args.label_space is not None:
        label_space = [x.strip() for x in args.label_space.split(",") if x.strip()]
    # Only the named columns go in: without --label there are no gold labels, whatever the file holds.
    inputs = frame[args.text]
    labels = None if args.label is None else frame[args.label]
    comparison = compare(args.task, inputs, args.models, labels=labels, label_space=label_space, sample=args.sample,
                         seed=args.seed, price_per_hour=args.price_per_hour, name=args.name,
                         batch_size=args.batch_size)
    _print_comparison(comparison)
    _write_outputs(comparison, outputs)
    return 0


#: What ``specnb run -o`` writes, by extension.
PIPELINE_OUTPUTS = (".parquet", ".csv", ".jsonl")


def _run_pipeline(args) -> int:
    from .compose import Pipeline
    from .errors import InputError
    from .progress import bar as progress_bar
    from .settings import config

    out = Path(args.output)
    if out.suffix.lower() not in PIPELINE_OUTPUTS:
        raise InputError(f"-o {str(out)!r}: write .parquet, .csv or .jsonl")
    check_output_path(out)
    pipe = Pipeline.from_yaml(Path(args.pipeline), trust_code=args.trust_code)
    frame = read_table(args.data)
    records = pipe.records(frame, text=args.text)
    pipe.validate(fields=set(frame.columns) | {pipe.input})
    done = []
    if args.engine == "ray":
        from .compose.ray_engine import run_ray

        done = run_ray(pipe, records, batch_size=args.batch_size, progress=config.progress)  # Ray Data's own bars
    else:
        step = max(1, config.store_chunk)
        with progress_bar(total=len(records), desc=f"{pipe.name}", unit="item", disable=not config.progress) as bar:
            for start in range(0, len(records), step):
                done.extend(pipe.run(records[start:start + step]))
                bar.update(min(step, len(records) - start))
    from .compose.executor import records_frame

    result = records_frame(done)
    if args.text and args.text != pipe.input:
        result = result.rename(columns={pipe.input: args.text})  # the input column keeps its own name
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        result.to_parquet(out, index=False)
    elif suffix == ".csv":
        result.to_csv(out, index=False)
    else:
        result.to_json(out, orient="records", lines=True, force_ascii=False)
    print(f"{len(result):,} records, {len(result.columns)} columns -> {out}")
    return 0


def _runs(args) -> int:
    import pandas as pd

    from ._compare import runs
    from .store import default_store

    table = runs()
    if table.empty:
        print(f"no stored runs in {default_store().path}")
        return 0
    shown = pd.DataFrame({
        "id": table["id"],
        "created": table["created"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "status": table["status"],
        "task": table["task"],
        "name": table["name"].fillna(""),
        "items": table["items"],
        "models": [",".join(m) for m in table["models"]],
    })
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 60):
        print(shown.to_string(index=False))
    return 0


def _runs_show(args) -> int:
    from ._compare import get_run

    outputs = _output_paths(args.output)
    comparison = get_run(args.id)
    _print_comparison(comparison)
    _write_outputs(comparison, outputs)
    return 0


def _runs_delete(args) -> int:
    from ._compare import delete_run

    delete_run(args.id)
    print(f"deleted run {args.id}")
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(args.out, device=args.device)
    return 0


def _catalog(args) -> int:
    import pandas as pd

    from ._catalog import catalog

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(catalog().drop(columns=["description"]).to_string(index=False))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of dollars per hour") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _parser() -> argparse.ArgumentParser:
    from ._compare.run import COMPARED_TASKS

    parser = argparse.ArgumentParser(prog="specnb", description="Specialist vs generalist models, side by side.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="compare specialists with a generalist on two built-in labelled sets (offline)")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    demo.add_argument("--out", default="build/demo", metavar="DIR",
                      help="folder for report.html, langid.html and bbc.html (default: build/demo)")
    demo.set_defaults(func=_demo)

    cat = sub.add_parser("catalog", help="list the models specnb knows")
    cat.set_defaults(func=_catalog)

    outputs = ", ".join(OUTPUT_FORMATS)
    cmp = sub.add_parser(
        "compare", help="run several models on a labelled data file and compare them",
        description="Run several models on the texts of a data file, score them the same way, store the run "
                    "and print its summary.",
    )
    cmp.add_argument("--task", required=True, choices=COMPARED_TASKS, help="what the models do")
    cmp.add_argument("--data", required=True, metavar="FILE", help=f"the inputs: {', '.join(INPUT_FORMATS)}")
    cmp.add_argument("--models", required=True, metavar="A,B,...",
                     help="catalog names, folders, .gguf/.ftz files or hub ids, comma separated")
    cmp.add_argument("--text", default="text", metavar="COLUMN", help="the text column (default: text)")
    cmp.add_argument("--label", metavar="COLUMN",
                     help="the gold label column; without it there are no accuracy/F1 columns")
    cmp.add_argument("--label-space", metavar="A,B,...",
                     help="the labels the models choose from (classify default: the distinct gold labels)")
    cmp.add_argument("--sample", type=_positive_int, metavar="N", help="compare on N rows drawn at random")
    cmp.add_argument("--seed", type=int, default=0, help="seed of --sample and the bootstrap intervals (default: 0)")
    cmp.add_argument("--price-per-hour", type=_price, metavar="USD", help="dollars per device-hour for the cost column")
    cmp.add_argument("--name", help="a name for the run in the store")
    cmp.add_argument("--batch-size", type=_positive_int, metavar="N", help="items per batch")
    cmp.add_argument("-o", "--output", action="append", metavar="FILE",
                     help=f"write the report (.html) or the per-item table ({outputs} by extension); repeatable")
    cmp.set_defaults(func=_compare)

    run = sub.add_parser("run", help="run a pipeline (YAML) on a data file")
    run.add_argument("pipeline", metavar="PIPE.yaml")
    run.add_argument("data", metavar="INPUT", help="CSV, JSON Lines or Parquet")
    run.add_argument("-o", "--output", required=True, metavar="OUT", help="output: .parquet, .csv or .jsonl")
    run.add_argument("--engine", choices=["local", "ray"], default="local",
                     help="local (this process) or ray (Ray Data map_batches, one actor per model stage; "
                          "pip install 'specnb[ray]')")
    run.add_argument("--batch-size", type=_positive_int, default=64, metavar="N",
                     help="records per Ray batch (--engine ray; default 64)")
    run.add_argument("--text", default=None, metavar="COL", help="the input text column (default: the pipeline's input)")
    run.add_argument("--trust-code", action="store_true",
                     help="import the modules the pipeline's python stages name (off: loading runs no code)")
    run.set_defaults(func=_run_pipeline)

    runs = sub.add_parser("runs", help="list, show or delete stored comparisons")
    runs.set_defaults(func=_runs)
    actions = runs.add_subparsers(dest="action")
    show = actions.add_parser("show", help="print a stored run's summary (and write its report or table)")
    show.add_argument("id", help="the run id (specnb runs lists them)")
    show.add_argument("-o", "--output", action="append", metavar="FILE",
                      help=f"write the report (.html) or the per-item table ({outputs} by extension); repeatable")
    show.set_defaults(func=_runs_show)
    delete = actions.add_parser("delete", help="delete a stored run")
    delete.add_argument("id", help="the run id")
    delete.set_defaults(func=_runs_delete)
    return parser


def _one_line(exc: BaseException) -> str:
    parts = [str(exc), *map(str, getattr(exc, "__notes__", None) or [])]
    return " ".join("; ".join(p for p in parts if p).split())


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .errors import SpecnbError

    try:
        return args.func(args)
    except SpecnbError as exc:
        print(f"specnb: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        detail = _one_line(exc)
        print(f"specnb: interrupted{'; ' + detail if detail else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
