"""The main job on the embedded offline defaults (`make demo`, ``specnb demo``), and the text form of
a comparison that the command line prints.

Two comparisons, offline: language identification on specnb's own 240 sentences (the fastText
specialist against SmolLM2), and BBC News topics on 100 articles (MiniLM answering zero-shot by
similarity to the topic descriptions, against SmolLM2 ranking the topics). Each prints its summary
and a few disagreements; the reports go to ``<out>/langid.html`` and ``<out>/bbc.html``, and
``<out>/report.html`` shows both summaries with links to them. Then a pipeline (`run_pipeline_demo`)
and specialists trained on the spot (`run_specialize_demo`): a head on MiniLM from gold labels, one
distilled from SmolLM2's answers, and a learning curve, on one fixed split of BBC articles (the
section's report is ``<out>/specialize.html``; its learning curve is drawn in ``report.html``). Last, the
evidence notebook (``notebooks/specialist-vs-generalist.ipynb``) runs headless and is written as
``<out>/specialist-vs-generalist.html`` (`specnb.demo_notebook`), and a closing block says what ran, where
the pages are and each comparison's verdicts.
"""

from __future__ import annotations

import html
import math
import sys
from pathlib import Path

from .errors import InputError
from .presentation import (
    MISSING,
    PRICE_COLUMN,
    format_rate,
    format_share,
    format_value,
    summary_cells,
    summary_columns,
)
from .tasks.base import is_missing

__all__ = ["run_demo", "run_pipeline_demo", "run_specialize_demo", "PIPELINE_CELL", "summary_table", "format_summary",
           "format_disagreements", "write_index"]

#: What the demo compares: (file stem, heading, task, models, name in the run store).
_JOBS = (
    ("langid", "Language ID: 240 everyday sentences in 12 languages (shipped with specnb)", "langid",
     ("langid", "smollm2"), "demo: langid"),
    ("bbc", "BBC News topics: 100 articles, 5 topics, zero-shot (MiniLM by description similarity, SmolLM2 "
     "by ranking the topics)", "classify", ("minilm", "smollm2"), "demo: bbc topics"),
)


def summary_table(comparison):
    """`Comparison.summary` as text cells, one row per model: validity, quality with its 95 % bootstrap
    interval, agreement, latency, throughput, load time, memory and cost, formatted as in the report
    (`specnb.presentation`, compact: ``77.9%``).

    Returns
    -------
    pandas.DataFrame
        Indexed by model; every cell a str (``-`` where a value is missing).
    """
    import pandas as pd

    summary = comparison.summary
    columns = {c.key: c for c in summary_columns(comparison.quality_column)}
    valid = columns.pop("valid")
    quality = [c for c in columns.values() if c.interval]
    measures = [c for c in columns.values() if not c.interval and c.key != "usd_per_1m"]
    order = [valid, *quality, *measures, PRICE_COLUMN, columns["usd_per_1m"]]
    records = [summary.loc[m].to_dict() for m in comparison.models]
    cells = summary_cells(records, order, compact=True, price_note=False)
    agreement = len(comparison.models) > 1
    rows = {}
    for model, record, texts in zip(comparison.models, records, cells):
        row = {"role": record["role"], "device": record["device"], "items": str(record["items"])}
        for position, (column, cell) in enumerate(zip(order, texts)):
            row[f"{column.short} [95% CI]" if column.interval else column.short] = cell["text"] + (cell["note"] or "")
            if agreement and position == len(quality):  # after validity and quality: agreement with each model
                for other in comparison.models:
                    row[f"agree:{other}"] = MISSING if other == model else format_value(
                        record[f"agree:{other}"], "percent", compact=True)
        rows[model] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return frame


def format_summary(comparison) -> str:
    """The summary of a comparison as a plain-text table, for terminals and logs."""
    import pandas as pd

    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 80):
        text = summary_table(comparison).to_string()
    notes = []
    if comparison.quality_column is not None:
        notes.append("[95% CI] = bootstrap interval")
    if len(comparison.models) > 1:
        notes.append("agree = same valid answer")
    notes.append("run peak = memory measured during the run")
    notes.append("$/1M items = cost of a million items at $/h")
    return text + "\n" + "; ".join(notes)


def _cut(value, width: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(invalid)"
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def format_disagreements(comparison, *, limit: int = 5, width: int = 60) -> str:
    """The first ``limit`` items where the models differ or any is wrong: the input (cut to
    ``width`` characters), the gold label and each model's answer, as a plain-text table."""
    rows = comparison.disagreements
    total = len(comparison.done)
    several = len(comparison.models) > 1
    if not len(rows):
        same = "every model gave the same valid" if several else "the model gave a valid"
        return f"{same}{' and correct' if comparison.labels is not None else ''} answer on all {total} items"
    head = rows.head(limit)
    columns = {"item": [str(i) for i in head.index], "input": [_cut(x, width) for x in head["input"]]}
    if "label" in head.columns:
        columns["gold"] = [_cut(x, 30) for x in head["label"]]
    for model in comparison.models:
        columns[model] = [_cut(x, 30) for x in head[model]]
    widths = {k: max(len(k), *(len(v) for v in values)) for k, values in columns.items()}
    lines = ["  ".join(k.ljust(widths[k]) for k in columns).rstrip()]
    for i in range(len(head)):
        lines.append("  ".join(columns[k][i].ljust(widths[k]) for k in columns).rstrip())
    if several:
        what = "the models differ or one is wrong" if comparison.labels is not None else "the models differ"
    else:
        what = "the answer is wrong or invalid" if comparison.labels is not None else "the answer is invalid"
    return f"{len(rows)} of {total} items where {what}; the first {len(head)}:\n" + "\n".join(lines)


def write_index(path, sections) -> Path:
    """Write an HTML page with each comparison's summary and a link to its full report.

    ``sections`` is a list of (heading, comparison, report path relative to the page), each optionally
    followed by an HTML fragment shown under the summary (its text already escaped) and a list of plotly
    figures drawn under that; plotly.js is then inlined once, so the page works offline.
    """
    from ._compare.report import _PLOTLY_CONFIG, _script_json, summary_html

    path = Path(path)
    parts, plots = [], 0
    for heading, comparison, report, *more in sections:
        extra, figures = (list(more) + ["", ()])[:2]
        charts = []
        for figure in figures:
            plots += 1
            charts.append(f'<div id="specnb-figure-{plots}"></div><script>(function () {{ var figure = '
                          f"{_script_json(figure.to_json())}; Plotly.newPlot(\"specnb-figure-{plots}\", figure.data, "
                          f"figure.layout, {_PLOTLY_CONFIG}); }})();</script>")
        parts.append(
            f"<section><h2>{html.escape(heading)}</h2>{summary_html(comparison)}"
            f"<p><a href=\"{html.escape(str(report))}\">Full report</a>: charts, agreement, disagreements and "
            f"confusion matrices.</p>{extra}{''.join(charts)}</section>"
        )
    script = ""
    if plots:
        from ._compare.charts import plotly_js

        script = f"<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>\n<script>{plotly_js()}</script>\n"
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>specnb demo</title>\n"
        "<style>body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif;color:#1f2937;"
        "max-width:1200px;margin:0 auto;padding:24px 28px 60px}h2{font-size:1.25em;margin-top:1.6em}</style>\n"
        + script + "</head>\n<body>\n<h1>specnb demo: specialists vs a generalist, offline</h1>\n"
        + "\n".join(parts) + "\n</body>\n</html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _data(job: str):
    from .datasets import BBC_DESCRIPTIONS, bbc_topics, langid_sentences

    if job == "langid":
        return langid_sentences(), None
    return bbc_topics(100, seed=0, max_chars=1000), BBC_DESCRIPTIONS


def run_demo(out="build/demo", *, device: str = "auto", file=None, notebook: bool = True) -> list:
    """Run the demo's comparisons, pipeline and specialists, print their summaries, write the reports,
    execute the evidence notebook into ``<out>/specialist-vs-generalist.html`` and print a closing block
    (what ran, where the pages are, one verdict line per model; `demo_notebook.closing_block`).

    Parameters
    ----------
    out : path
        Folder for ``report.html`` (every summary, linking the full reports), ``langid.html``,
        ``bbc.html``, ``specialize.html`` and ``pipeline.yaml``; created if needed.
    device : str
        Where the models run, as in `specnb.load`.
    file : text stream, optional
        Where to print (default ``sys.stdout``).
    notebook : bool
        Execute the evidence notebook (`demo_notebook.run_notebook_demo`; it picks its own device).

    Returns
    -------
    list of Comparison
        Language ID, BBC topics, then the specialists on their held-out BBC articles.
    """
    from ._compare import compare
    from .backends.model_registry import load
    from .demo_notebook import closing_block, run_notebook_demo

    file = sys.stdout if file is None else file
    out = Path(out)

    def say(text: str = "") -> None:
        print(text, file=file, flush=True)

    say("specnb demo: specialists vs a generalist on two labelled sets, offline")
    comparisons, sections = [], []
    for stem, heading, task, names, name in _JOBS:
        models = [load(m, device=device) for m in names]
        inputs, label_space = _data(stem)
        comparison = compare(task, inputs, models, label_space=label_space, name=name)
        say(f"\n== {heading}\nrun {comparison.run_id}\n")
        say(format_summary(comparison))
        say()
        say(format_disagreements(comparison))
        comparisons.append(comparison)
        sections.append((heading, comparison, f"{stem}.html"))
    out.mkdir(parents=True, exist_ok=True)
    _, piped, _ = run_pipeline_demo(out, device=device, say=say)
    comparison, curve, extra = run_specialize_demo(device=device, say=say)
    comparisons.append(comparison)
    sections.append((SPECIALIZE_HEADING, comparison, "specialize.html", extra, [curve.figure()]))
    written = [c.to_html(out / report) for (_, c, report, *_) in sections]
    index = write_index(out / "report.html", sections)
    say(f"\nreport: {index}  (full reports: {', '.join(str(p) for p in written)})")
    page = run_notebook_demo(out, say=say) if notebook else None
    say(closing_block(comparisons, report=index, notebook=page, pipeline=f"pipeline triage ({len(piped)} texts: "
                      "langid, then a minilm -> smollm2 topic cascade for English; threshold sweep)"))
    return comparisons


#: The demo's pipeline, in the ``%%specnb pipe`` syntax (``topics`` is `specnb.datasets.BBC_DESCRIPTIONS`).
PIPELINE_CELL = """\
lang = langid(text)
route lang: en -> topic = cascade(minilm, smollm2, labels=topics, threshold=0.5)(text); * -> skip
"""
_SWEEP = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0)


def pipeline_demo_data(n: int = 40, seed: int = 0):
    """``n`` BBC articles (English, with their topic) and ``n`` non-English sentences, shuffled."""
    import pandas as pd

    from .datasets import bbc_topics, langid_sentences

    bbc = bbc_topics(n=n, seed=seed, max_chars=600)
    others = langid_sentences()
    others = others[others["label"] != "en"].sample(n, random_state=seed)
    frame = pd.concat([pd.DataFrame({"text": bbc["text"], "topic_gold": bbc["label"]}),
                       pd.DataFrame({"text": others["text"], "topic_gold": None})], ignore_index=True)
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


def run_pipeline_demo(out, *, device: str = "auto", say=print):
    """Language ID, then English texts through a MiniLM → SmolLM2 topic cascade: the output, the profile,
    a threshold sweep; writes ``<out>/pipeline.yaml``. Returns (pipeline, output, sweep)."""
    from .backends.model_registry import registry
    from .compose import Pipeline, parse
    from .datasets import BBC_DESCRIPTIONS

    for name, task in (("langid", "langid"), ("minilm", "classify"), ("smollm2", None)):
        registry.by_name(name, task=task, device=device)  # each keeps its own default task
    data = pipeline_demo_data()
    pipe = Pipeline(name="triage").add(parse(PIPELINE_CELL), namespace={"topics": BBC_DESCRIPTIONS})
    result = pipe(data)
    say("\n== Pipeline: language ID, then English texts through a topic cascade (MiniLM, SmolLM2 when unsure)")
    say(pipe.to_cell())
    english = result[result["lang"] == "en"]
    scored = english[english["topic_gold"].notna()]
    accuracy = float((scored["topic"] == scored["topic_gold"]).mean()) if len(scored) else float("nan")
    by = english["topic:by"].value_counts().to_dict()
    say(f"{len(result)} texts; {len(english)} English; topic accuracy {accuracy:.3f} on {len(scored)} BBC articles; "
        f"answered by {', '.join(f'{k} {v}' for k, v in by.items())}")
    profile = pipe.profile
    for stage_id, row in profile.iterrows():
        rate = float("nan") if row["kind"] == "route" else row["items_per_s"]  # a route only sorts records
        extra = "" if is_missing(row["fallback_share"]) else f", {format_share(row['fallback_share'])} to the fallback"
        say(f"  [{stage_id}] {row['stage'][:70]:<70} {int(row['items']):>4} items {format_rate(rate):>10} "
            f"{format_share(row['share'], 1):>6} of the time{extra}")
    sweep = pipe.sweep("topic", _SWEEP, data["topic_gold"].tolist(), data)
    say("threshold sweep (BBC articles that reach the cascade):")
    for _, row in sweep.table.iterrows():
        say(f"  {row['threshold']:.2f}: accuracy {format_value(row['accuracy'], 'score')}, "
            f"{format_share(row['fallback_share'])} to {sweep.models[1]}, {format_value(row['usd_per_1m'], 'usd')} "
            "per 1M items")
    path = Path(out) / "pipeline.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    pipe.to_yaml(path)
    say(f"pipeline: {path}  (specnb run {path} INPUT.csv -o OUT.parquet)")
    return pipe, result, sweep


#: The Specialize section: BBC articles cut short (SmolLM2 pays per token), one stratified split (``eval``,
#: seed 0), ``distil`` training texts that SmolLM2 labels, the learning curve's sizes (examples per class) and seeds.
_SPECIALIZE = {"items": 300, "max_chars": 500, "eval": 0.2, "distil": 80, "sizes": (1, 2, 4, 8, 16, 32), "seeds": 5}
SPECIALIZE_HEADING = ("Specialize: BBC topics, 300 articles (first 500 characters), one fixed split: specialists "
                      "trained on MiniLM against MiniLM zero-shot and SmolLM2 on the held-out articles")


def run_specialize_demo(*, device: str = "auto", say=print):
    """Specialists trained here, on one fixed split of BBC articles: a head on MiniLM fitted on the gold labels,
    one distilled from SmolLM2's answers to 80 training texts (no gold label in training; the teacher's answers
    are kept in the run store, so a second run does not ask again), compared with MiniLM zero-shot and SmolLM2
    on the held-out articles; then the head's learning curve against those two, on the same items.

    Returns (comparison, learning curve, HTML fragment of the distilled figures and the curve's table)."""
    from ._compare import compare
    from ._specialize import LearningCurve, learning_curve, specialize
    from ._specialize.curve import against_frame
    from .backends.model_registry import registry
    from .datasets import BBC_DESCRIPTIONS, bbc_topics
    from .tasks.base import text_digest

    s = _SPECIALIZE
    for alias in ("minilm-bbc", "minilm-bbc-distilled"):
        if alias in registry:  # a second demo in the same process trains them again
            registry.unload(alias)
    base = registry.by_name("minilm", task="classify", device=device)
    data = bbc_topics(s["items"], seed=0, max_chars=s["max_chars"])
    head = specialize(base, data, eval=s["eval"], seed=0, alias="minilm-bbc", overwrite=True)
    held = head.eval_data
    unseen = set(head.training["held_out_digests"])
    train = data[[text_digest(t) not in unseen for t in data["text"]]].reset_index(drop=True)
    texts = train["text"].sample(s["distil"], random_state=0).tolist()  # texts only: no gold label
    try:
        distilled = specialize(base, texts, teacher="smollm2", labels=list(BBC_DESCRIPTIONS), eval=None, seed=0,
                               alias="minilm-bbc-distilled", overwrite=True)
    except InputError as exc:  # SmolLM2's answers left a topic with fewer than 2 texts (its answers vary by device)
        distilled, distil = None, f"distilled from smollm2: not trained ({exc})"
    smollm2 = registry.by_name("smollm2", device=device)
    models = [head, *([distilled] if distilled else []), base, smollm2]
    comparison = compare("classify", held, models, label_space=BBC_DESCRIPTIONS, name="demo: specialize")
    curve = learning_curve(base, train, eval=held, sizes=s["sizes"], seeds=s["seeds"], progress=False)
    curve = LearningCurve(curve.frame, against_frame(comparison, ["minilm", "smollm2"]), n_held_out=curve.n_held_out,
                          base=curve.base, task=curve.task, method=curve.method, label_space=curve.label_space,
                          split=curve.split, held_out=curve.held_out, comparison=comparison, settings=curve.settings)

    n_train, n_held, summary = head.training["data"]["train"], len(held), comparison.summary
    how = {"minilm-bbc": f"head on MiniLM, {n_train} gold labels", "minilm": "zero-shot: topic descriptions",
           "smollm2": "zero-shot: ranks the topics"}
    if distilled:
        teacher, row = distilled.training["data"]["teacher"], summary.loc["minilm-bbc-distilled"]
        how["minilm-bbc-distilled"] = f"head on MiniLM, {teacher['kept']} SmolLM2 answers, no gold"
        rate = f", {teacher['items_per_s']:.2f} items/s" if teacher.get("items_per_s") else ""
        distil = (f"distilled from smollm2: {len(texts)} training texts labelled by smollm2 (asked {teacher['asked']}, "
                  f"{teacher['cached']} from the run store{rate}), no gold label in training; on the {n_held} held-out "
                  f"articles it agrees with smollm2 on {format_share(row['agree:smollm2'], 1)} and is right on "
                  f"{format_share(row['accuracy'], 1)} (smollm2: {format_share(summary.at['smollm2', 'accuracy'], 1)}),"
                  f" at {row['items_per_s'] / summary.at['smollm2', 'items_per_s']:,.0f}x smollm2's items/s")
    table = summary_table(comparison)
    table.insert(0, "trained on", [how[m] for m in table.index])
    crossings = [f"{what}: {curve.crossover_text(m)}" for m, what in (("minilm", "MiniLM zero-shot"),
                                                                       ("smollm2", "SmolLM2"))]
    say(f"\n== {SPECIALIZE_HEADING}\nrun {comparison.run_id}; {n_train} train / {n_held} held-out articles "
        f"(stratified, seed 0); specialists saved in {Path(head.training['out']).parent}\n")
    say(table[["trained on", "accuracy [95% CI]", "agree:smollm2", "items/s"]].to_string())
    say(distil)
    say(f"learning curve (head on MiniLM, mean held-out accuracy over {s['seeds']} subsets per size): "
        + ", ".join(f"{size}/class {row['mean']:.3f}" for size, row in curve.summary.iterrows()))
    for line in crossings:
        say(f"crossover vs {line}")
    extra = (f"<p>{html.escape(distil)}.</p>"
             + "".join(f"<p>Crossover vs {html.escape(line)}.</p>" for line in crossings) + curve._repr_html_())
    return comparison, curve, extra
