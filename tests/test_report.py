"""Charts and HTML views of a Comparison: figures, the notebook summary and the offline report."""

from __future__ import annotations

import re

import pytest

import specnb
from specnb._compare import charts, report
from specnb.tasks import Label

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '"quotes" &amp; more']
HOSTILE_ESCAPED = ["&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;",
                   "&quot;quotes&quot; &amp;amp; more"]
INTERVAL = re.compile(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]")


def positive(texts):
    return [("pos", 0.9) if t and "good" in t else ("neg", 0.6) for t in texts]


def always_positive(texts):
    return ["pos" for _ in texts]


def labelled(specnb_home, **kwargs):
    texts = ["good film", "bad film", "good plot", "dull", "good cast", "bad end"]
    gold = ["pos", "neg", "pos", "neg", "neg", "neg"]
    return specnb.compare("classify", texts, [positive, always_positive], labels=gold, label_space=["pos", "neg"],
                          progress=False, **kwargs)


def constructed(models: dict, n: int = 20, price: dict | None = None) -> specnb.Comparison:
    """A comparison with chosen quality and latency: model -> (accuracy, seconds per item)."""
    gold = ["yes" if i % 2 else "no" for i in range(n)]
    flip = {"yes": "no", "no": "yes"}
    predictions, seconds, info, stats = {}, {}, {}, {}
    for m, (accuracy, per_item) in models.items():
        right = round(accuracy * n)
        predictions[m] = [Label(g if i < right else flip[g], 0.8) for i, g in enumerate(gold)]
        seconds[m] = [per_item] * n
        info[m] = {"source": f"test/{m}", "version": "1", "backend": "callable", "role": "specialist",
                   "device": "cpu", "dtype": "float32", "parameters": 1_000_000, "weight_bytes": 4 * 2**20,
                   "load_seconds": 0.5}
        stats[m] = {"seconds": per_item * n, "items": n, "run_peak_bytes": 2**20, "batches": 1, "oom_retries": 0,
                    "price_per_hour": (price or {}).get(m, 1.0)}
    return specnb.Comparison(task="classify", models=list(models), inputs=[f"text {i}" for i in range(n)],
                             labels=gold, index=range(n), label_space=["no", "yes"], predictions=predictions,
                             item_seconds=seconds, model_info=info, model_stats=stats)


def front_of(figure) -> list[str]:
    (trace,) = [t for t in figure.data if t.name == "Pareto front"]
    return list(trace.text)


def without_plotlyjs(text: str) -> str:
    from plotly.offline import get_plotlyjs

    return text.replace(get_plotlyjs(), "")


# -- figures -------------------------------------------------------------------------------------------
def test_figures_with_labels_have_every_chart_and_stay_small(specnb_home):
    figures = labelled(specnb_home).figures()
    assert set(figures) == {"quality_vs_latency", "quality_vs_cost", "latency", "confusion", "reliability", "memory"}
    for name, figure in figures.items():
        assert figure.layout.title.text, name
        if name != "latency":
            assert len(figure.to_json()) < 20_000, name


def test_figures_without_labels_leave_out_quality_and_confusion(specnb_home):
    comparison = specnb.compare("classify", ["a", "b"], [positive], label_space=["pos", "neg"], progress=False)
    assert set(comparison.figures()) == {"latency", "memory"}


def test_pareto_front_holds_exactly_the_models_no_other_beats():
    comparison = constructed({"fast": (0.6, 0.001), "accurate": (0.9, 0.010), "dominated": (0.5, 0.020)},
                             price={"dominated": 0.01})
    figures = comparison.figures()
    assert front_of(figures["quality_vs_latency"]) == ["fast", "accurate"]
    # At a hundredth of the price, the slowest model is the cheapest per item: no longer dominated.
    assert front_of(figures["quality_vs_cost"]) == ["dominated", "fast", "accurate"]
    assert figures["quality_vs_latency"].layout.xaxis.type == "log"
    assert "$0.01" in figures["quality_vs_cost"].layout.title.text


def test_pareto_front_keeps_ties_and_skips_unknown_points():
    # e and f each lose on one axis and tie on the other: dominated. a and b tie on both: both kept.
    points = {"a": (1.0, 0.5), "b": (1.0, 0.5), "c": (2.0, 0.4), "d": (float("nan"), 0.9), "e": (1.0, 0.3),
              "f": (3.0, 0.5)}
    assert charts.pareto_front(points) == ["a", "b"]


def test_quality_markers_carry_asymmetric_bootstrap_intervals():
    comparison = constructed({"one": (0.7, 0.002), "two": (0.8, 0.003)})
    figure = comparison.figures()["quality_vs_latency"]
    row = comparison.summary.loc["one"]
    (trace,) = [t for t in figure.data if t.name == "one"]
    assert trace.y[0] == pytest.approx(row["accuracy"])
    assert trace.x[0] == pytest.approx(2.0)
    assert trace.error_y.array[0] == pytest.approx(row["accuracy_high"] - row["accuracy"])
    assert trace.error_y.arrayminus[0] == pytest.approx(row["accuracy"] - row["accuracy_low"])
    assert trace.error_y.symmetric is False


def test_each_model_keeps_its_colour_across_charts():
    comparison = constructed({"one": (0.7, 0.002), "two": (0.8, 0.003)})
    figures = comparison.figures()
    colors = charts.model_colors(comparison.models)
    assert colors["one"] != colors["two"]
    for m in comparison.models:
        (scatter,) = [t for t in figures["quality_vs_latency"].data if t.name == m]
        (box,) = [t for t in figures["latency"].data if t.name == m]
        assert scatter.marker.color == box.marker.color == colors[m]
    for m in comparison.models:
        bars = [t for t in figures["memory"].data if list(t.x) == [m]]
        assert len(bars) == 2 and all(t.marker.color == colors[m] for t in bars)


def test_memory_legend_swatches_are_the_bar_colours():
    """plotly draws a legend swatch in its trace's first bar colour: a trace coloured per bar (one per memory
    part, as before) showed the first model's colour for every model. One entry per model, in its colour."""
    comparison = constructed({"one": (0.7, 0.002), "two": (0.8, 0.003), "three": (0.6, 0.001)})
    figure = comparison.figures()["memory"]
    colors = charts.model_colors(comparison.models)
    shown = [t for t in figure.data if t.showlegend is not False]
    assert [t.name for t in shown] == comparison.models
    for trace in figure.data:
        assert isinstance(trace.marker.color, str), "one colour per trace, so the legend shows the bars' colour"
        (model,) = trace.x
        assert trace.marker.color == colors[model] and trace.legendgroup == model
    assert figure.layout.barmode == "stack"


def test_latency_chart_draws_points_only_for_small_runs():
    small = constructed({"one": (0.7, 0.002)}, n=50).figures()["latency"].data[0]
    assert small.boxpoints == "all" and len(small.y) == 50
    big = constructed({"one": (0.7, 0.002)}, n=charts.POINTS_LIMIT + 1).figures()["latency"]
    assert big.data[0].y is None and big.data[0].boxpoints is False
    assert big.data[0].median[0] == pytest.approx(2.0)
    assert len(big.to_json()) < 5_000


def test_confusion_writes_counts_only_for_few_labels():
    figure = constructed({"one": (0.7, 0.002), "two": (0.8, 0.003)}).figures()["confusion"]
    assert len(figure.data) == 2
    assert {t.coloraxis for t in figure.data} == {"coloraxis"}
    assert figure.data[0].texttemplate == "%{z}"
    many = [f"label{i}" for i in range(charts.TEXT_LIMIT + 2)]
    comparison = specnb.Comparison(task="classify", models=["m"], inputs=many, labels=many, index=range(len(many)),
                                   label_space=many, predictions={"m": [Label(x) for x in many]},
                                   item_seconds={"m": [0.001] * len(many)}, model_info={"m": {}}, model_stats={})
    assert comparison.figures()["confusion"].data[0].texttemplate is None


def test_ner_comparison_gives_figures(specnb_home):
    def finder(texts):
        return [[(0, 5, "PERSON")] if t.startswith("Alice") else [] for t in texts]

    texts = ["Alice went home", "Bob stayed", "Alice and Bob"]
    gold = [[(0, 5, "PERSON")], [(0, 3, "PERSON")], [(0, 5, "PERSON"), (10, 13, "PERSON")]]
    comparison = specnb.compare("ner", texts, [finder], labels=gold, progress=False)
    figures = comparison.figures()
    assert set(figures) == {"quality_vs_latency", "quality_vs_cost", "latency", "confusion", "memory"}  # no scores: no reliability
    assert "F1" in figures["quality_vs_latency"].layout.yaxis.title.text
    html = report.summary_html(comparison)
    assert "precision" in html and "recall" in html and INTERVAL.search(html)


# -- the report ----------------------------------------------------------------------------------------
def test_report_is_one_offline_file_with_plotlyjs_inlined_once(specnb_home, tmp_path):
    from plotly.offline import get_plotlyjs

    comparison = labelled(specnb_home)
    path = comparison.to_html(tmp_path / "deep" / "er" / "report.html")
    assert path == tmp_path / "deep" / "er" / "report.html" and path.is_file()
    text = path.read_text(encoding="utf-8")
    js = get_plotlyjs()
    assert text.count(js[len(js) // 2:len(js) // 2 + 300]) == 1
    assert text.count("Plotly.newPlot(") == len(comparison.figures())
    ours = without_plotlyjs(text)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", ours, re.IGNORECASE)
    assert "<link" not in ours and "@import" not in ours and "url(" not in ours
    assert '"displaylogo": false' in ours
    assert len(ours) < 200_000


def test_report_escapes_every_user_text(specnb_home, tmp_path):
    def shouty(texts):
        return [("<b>", 0.5) for _ in texts]

    specnb.load(shouty, task="classify", alias="m<i>")
    texts = [*HOSTILE, "plain"]
    gold = ["<b>", "pos", '"q"&amp;', "pos"]
    comparison = specnb.compare("classify", texts, [positive, "m<i>"], labels=gold,
                                label_space=["pos", "neg", "<b>", '"q"&amp;'], name="<script>name</script>",
                                progress=False)
    text = comparison.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    ours = without_plotlyjs(text)
    for raw in [*HOSTILE, "m<i>", "<b>", "<script>name", '"q"&amp;', "onerror=alert(1)>"]:
        assert raw not in ours, raw
    for escaped in [*HOSTILE_ESCAPED, "m&lt;i&gt;", "&lt;b&gt;", "&lt;script&gt;name", "&quot;q&quot;&amp;amp;"]:
        assert escaped in ours, escaped
    # Figure JSON: no character that could end the script or open a tag.
    scripts = re.findall(r"<script>(.*?)</script>", ours, re.DOTALL)
    figures = [s for s in scripts if "Plotly.newPlot" in s]
    assert len(figures) == 6 and not any(c in s for s in figures for c in "<>&")
    assert "\\u003c" in "".join(figures)
    # The notebook summary escapes too.
    summary = comparison._repr_html_()
    assert "m<i>" not in summary and "m&lt;i&gt;" in summary and "<script>name" not in summary


def test_summary_html_shows_intervals_and_marks_the_best():
    comparison = constructed({"weak": (0.6, 0.002), "strong": (0.9, 0.004)})
    html = report.summary_html(comparison)
    assert html.startswith("<div") and "<html" not in html
    assert INTERVAL.search(html)
    best = re.search(r'class="num best"><strong>(0\.\d{3}) \[', html)
    assert best and best.group(1) == "0.900"
    assert "$1.00/h" in html and "accuracy" in html and "macro-F1" in html


def test_summary_html_without_labels_has_no_quality_columns(specnb_home):
    comparison = specnb.compare("classify", ["a", "b"], [positive], label_space=["pos", "neg"], progress=False)
    html = report.summary_html(comparison)
    assert "accuracy" not in html and "macro-F1" not in html and not INTERVAL.search(html)
    assert "p50 ms" in html and "$ per 1M items" in html


def test_report_shows_invalid_items(specnb_home, tmp_path):
    comparison = specnb.compare("classify", ["good film", None, "bad film"], [positive], labels=["pos", "neg", "neg"],
                                label_space=["pos", "neg"], progress=False)
    text = comparison.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    ours = without_plotlyjs(text)
    assert "(invalid)" in ours and "missing input" in ours
    assert "66.7 %" in report.summary_html(comparison)


def test_report_of_a_run_without_labels_has_no_confusion(specnb_home, tmp_path):
    comparison = specnb.compare("classify", ["a", "b", "c"], [positive, always_positive], label_space=["pos", "neg"],
                                progress=False)
    ours = without_plotlyjs(comparison.to_html(tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "Confusion" not in ours and "Disagreements" in ours
    assert ours.count("Plotly.newPlot(") == 2


def test_report_cuts_the_disagreement_table_short():
    n = report.DISAGREEMENT_ROWS + 40
    comparison = constructed({"right": (1.0, 0.001), "wrong": (0.0, 0.001)}, n=n)
    html = report._disagreements(comparison)
    assert html.count("<tr>") == report.DISAGREEMENT_ROWS + 1
    assert f"first {report.DISAGREEMENT_ROWS} of {n}" in html


def test_write_html_rejects_a_path_that_is_not_one():
    with pytest.raises(specnb.InputError):
        report.write_html(constructed({"one": (0.5, 0.001)}), 42)
