"""Endpoint models against real servers started by the suite (tests/servers.py): vLLM on the CPU serving
SmolLM2-135M, and `transformers serve` as the partly compatible server. Inputs stay small: vLLM on two CPU cores
computes every prompt token's log-probabilities (a rank request over 12 languages takes seconds)."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

import specnb
from specnb.compose.syntax import parse
from specnb.datasets import bbc_topics, langid_sentences
from specnb.errors import EndpointError, InputError
from specnb.tasks import Invalid, Label

KEY = "sk-specnb-test-7f3a9c2e1b5d4f60a8e2"


@pytest.fixture
def fresh_home(specnb_home):
    return specnb_home


#: Few labels keep requests small where the test is not about the label space (each label is one more prompt).
SMALL = ["en", "fr", "de"]


def _langid_sample(per_language: int = 1, languages=None):
    frame = langid_sentences()
    if languages is not None:
        frame = frame[frame["label"].isin(languages)]
    return frame.groupby("label").head(per_language).reset_index(drop=True)


def test_rank_scoring_through_vllm_equals_rank_scoring_in_the_kernel(vllm, fresh_home):
    """The same model, the same prompts and label tokens: the same label on every item, scores within 1e-3."""
    remote = specnb.load(vllm.base_url, cache=False)
    assert remote.endpoint["methods"]["langid"] == "rank" and remote.device == "remote"
    local = specnb.load("smollm2", device="cpu")
    langid = _langid_sample(1)
    bbc = bbc_topics(3, max_chars=300)
    for task, frame, labels in (("langid", langid, None), ("classify", bbc, sorted(set(bbc["label"])))):
        texts = frame["text"].tolist()
        here = local.predict(texts, task=task, labels=labels, progress=False)
        there = remote.predict(texts, task=task, labels=labels, progress=False)
        assert remote.last_run.method == "rank" and remote.last_run.requests == len(texts)
        assert [p.label for p in there] == [p.label for p in here]
        assert max(abs(a.score - b.score) for a, b in zip(here, there)) < 1e-3
        assert remote.last_run.input_tokens > 0


def test_the_probe_records_what_vllm_supports(vllm):
    model = specnb.load(vllm.base_url)
    probe = model.endpoint["probe"]
    assert probe["prompt_logprobs"] and probe["zero_max_tokens"] and probe["chat_logprobs"]
    assert probe["structured"] and probe["structured_via"] == "choice"
    assert probe["context_length"] == 2048
    table = specnb.models()
    row = table[table["alias"] == model.alias].iloc[0]
    assert row["backend"] == "endpoint" and row["device"] == "remote" and row["host"] == f"127.0.0.1:{vllm.port}"
    assert "prompt logprobs" in row["capabilities"] and row["memory_bytes"] == 0


def test_constrained_choice_answers_in_the_label_space_with_a_probability(vllm, fresh_home):
    model = specnb.load(vllm.base_url, method="choice", cache=False)
    texts = ["The match ended two nil.", "Shares fell sharply on Monday."]
    out = model.predict(texts, task="classify", labels=["sport", "business"], progress=False)
    assert model.last_run.method == "choice"
    assert all(isinstance(p, Label) and p.label in ("sport", "business") for p in out)
    assert all(p.score is not None and 0 < p.score <= 1 for p in out)


def test_transformers_serve_is_detected_and_answered_by_generate_and_parse(hf_serve, fresh_home):
    model = specnb.load(hf_serve.base_url, cache=False)
    probe = model.endpoint["probe"]
    assert not probe["prompt_logprobs"] and not probe["chat_logprobs"] and not probe["structured"]
    assert "ignores" in probe["notes"]["prompt_logprobs"] and "ignores" in probe["notes"]["structured"]
    assert model.endpoint["methods"]["langid"] == "generate"
    with pytest.raises(EndpointError, match="rank"):
        specnb.load(hf_serve.base_url, alias="forced", method="rank")
    out = model.predict(_langid_sample(1, SMALL)["text"].tolist(), task="langid", labels=SMALL, progress=False)
    assert model.last_run.method == "generate"
    for p in out:  # never a made-up probability
        assert (isinstance(p, Label) and p.score is None) or isinstance(p, Invalid)


def test_a_rerun_of_a_finished_comparison_sends_no_request_and_costs_by_the_token(vllm, fresh_home):
    frame = _langid_sample(2, SMALL).head(4)
    prices = {"input": 0.10, "output": 0.40}
    remote = specnb.load(vllm.base_url, alias="vllm", price_per_1m_tokens=prices)
    first = specnb.compare("langid", frame, ["langid", remote], label_space=SMALL, progress=False)
    stats = first.model_stats["vllm"]
    assert stats["requests"] == 4 and stats["cached"] == 0 and stats["method"] == "rank"
    usd = (stats["input_tokens"] * prices["input"] + stats["output_tokens"] * prices["output"]) / 1e6
    summary = first.summary
    assert summary.loc["vllm", "usd_per_1m"] == pytest.approx(usd / 4 * 1e6)
    assert summary.loc["vllm", "method"] == "rank" and summary.loc["vllm", "price_per_hour"] != summary.loc["vllm", "price_per_hour"]
    figure = first.figures()["quality_vs_cost"]  # the chart says how each cost was priced
    assert any("$0.10 in / $0.40 out per 1M tokens" in str(trace.customdata) for trace in figure.data)
    assert "vllm by the token" in figure.layout.title.text
    again = specnb.compare("langid", frame, ["langid", remote], label_space=SMALL, progress=False)
    assert again.model_stats["vllm"]["requests"] == 0 and again.summary.loc["vllm", "cached"] == 4
    assert again.predictions["vllm"] == first.predictions["vllm"]
    assert specnb.get_run(again.run_id).model_info["vllm"]["endpoint"]["host"] == f"127.0.0.1:{vllm.port}"


def test_a_cascade_sends_only_the_unsure_items_to_the_endpoint_and_prices_the_sweep(vllm, fresh_home):
    remote = specnb.load(vllm.base_url, alias="big", price_per_1m_tokens={"input": 1.0, "output": 2.0})
    frame = _langid_sample(2, SMALL)
    pipe = specnb.Pipeline(parse('lang = cascade(langid, big, labels=["en", "fr", "de"], threshold=0.99)(text)'))
    out = pipe(frame)
    by = out["lang:by"].tolist()
    assert set(by) <= {"langid", "big"}
    sweep = pipe.sweep("lang", [0.0, 1.0], frame["label"].tolist(), frame)
    table = sweep.table
    share = table.loc[1, "fallback_share"]
    assert table.loc[0, "fallback_share"] == 0 and share > 0
    run = remote.last_run  # the fallback answered every item once, for the sweep
    assert run.items == len(frame) and run.method == "rank"
    per_item = (run.input_tokens * 1.0 + run.output_tokens * 2.0) / len(frame)  # dollars per 1M items
    assert table.loc[1, "usd_per_1m"] == pytest.approx(table.loc[0, "usd_per_1m"] + share * per_item)


def test_load_errors_name_the_url_and_what_the_server_said(vllm):
    import servers

    port = servers.free_port()  # nothing listens there
    with pytest.raises(EndpointError, match=rf"http://127.0.0.1:{port}/v1 .*cannot be reached"):
        specnb.load(f"http://127.0.0.1:{port}/v1", model="m")
    with pytest.raises(EndpointError, match=r"serves no model 'no-such-model'; it serves: "):
        specnb.load(vllm.base_url, model="no-such-model")
    with pytest.raises(InputError, match="apply to endpoint models"):
        specnb.load("langid", model="x")
    with pytest.raises(InputError, match="concurrency= must be"):
        specnb.load(vllm.base_url, concurrency=0)


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A server that refuses every key the way OpenAI does (401, the key partly echoed): an injected fault."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {key[:7]}...{key[-4:]} / {key}",
                                     "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_bad_key_is_one_line_naming_the_url_and_the_key_never_shows():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        with pytest.raises(EndpointError) as caught:
            specnb.load(url, model="m", api_key=KEY)
        message = str(caught.value)
        assert url in message and "refused the API key" in message and "\n" not in message
        assert KEY not in message and KEY[-12:] not in message
    finally:
        server.shutdown()


def test_the_key_never_reaches_the_store_cache_yaml_repr_errors_widgets_or_logs(vllm, fresh_home, caplog, capfd,
                                                                                 tmp_path):
    import logging

    from specnb.widgets.compare_view import CompareView
    from specnb.widgets.model_panel import ModelPanel

    caplog.set_level(logging.DEBUG)
    model = specnb.load(vllm.base_url, alias="keyed", api_key=KEY)
    frame = _langid_sample(1, SMALL).head(2)
    comparison = specnb.compare("langid", frame, ["langid", model], label_space=SMALL, progress=False)
    pipe = specnb.Pipeline(parse(f'lang = {model.alias}(text, task="langid", labels=["en", "fr"])'))
    yaml_path = tmp_path / "p.yaml"
    pipe.to_yaml(yaml_path)
    with pytest.raises(EndpointError) as caught:
        specnb.load(vllm.base_url, model="missing", api_key=KEY)
    panel, view = ModelPanel(), CompareView(comparison)
    texts = [repr(model), str(model.endpoint), str(model.info()), specnb.models().to_string(), str(caught.value),
             yaml_path.read_text(), json.dumps(panel.get_state(), default=str), json.dumps(view.get_state(), default=str),
             panel.snapshot_html(), comparison._repr_html_(),
             caplog.text, "".join(capfd.readouterr())]
    panel.close()
    view.close()
    for text in texts:
        assert KEY not in text
    store = b"".join(p.read_bytes() for p in fresh_home.glob("runs.sqlite*"))
    assert store and KEY.encode() not in store


def test_an_endpoint_teaches_a_specialist_and_the_second_time_its_answers_come_from_the_cache(vllm, fresh_home):
    from specnb._specialize.data import prepare

    texts = ["I love this film, it is wonderful.", "This was a terrible, awful day.", "What a lovely, happy surprise!",
             "The food was disgusting and cold.", "Great service and friendly staff.",
             "I hate waiting, this is the worst.", "An excellent, delightful book.", "Horrible noise, I am so angry."]
    labels = ["negative", "positive"]
    teacher = specnb.load(vllm.base_url, alias="teacher")
    first = prepare(texts, task="sentiment", labels=labels, teacher=teacher, eval=0.25, progress=False)
    assert first.teacher["asked"] == 8 and teacher.last_run.requests == 8 and teacher.last_run.method == "rank"
    assert sorted(set(first.labels)) == labels
    again = prepare(texts, task="sentiment", labels=labels, teacher=teacher, eval=0.25, progress=False)
    assert again.teacher["asked"] == 0 and again.teacher["cached"] == 8 and again.labels == first.labels
    model = specnb.specialize("minilm", texts, task="sentiment", labels=labels, teacher=teacher, eval=0.25,
                              progress=False, alias="distilled")
    assert model.training["data"]["teacher"]["cached"] == 8
    assert model.predict(["A wonderful, lovely day."])[0].label in labels

def test_a_saved_notebook_that_used_an_endpoint_holds_no_key(vllm, fresh_home, monkeypatch, tmp_path):
    """A kernel that reads the key from the environment: the executed notebook, widget state included, and
    the run store hold no trace of it."""
    import nbclient
    import nbformat

    monkeypatch.setenv("OPENAI_BASE_URL", vllm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    served = specnb.load(vllm.base_url).endpoint["model"]
    cells = [
        "import specnb\nfrom specnb.datasets import langid_sentences",
        f"gen = specnb.load({'openai:' + served!r})\ngen",
        "specnb.models()",
        "%load_ext specnb\n%specnb models",
        "cmp = specnb.compare('langid', langid_sentences().head(2), ['langid', gen], label_space=['en', 'fr'], "
        "progress=False)\ncmp",
        "try:\n    specnb.load('openai:missing-model')\nexcept specnb.EndpointError as error:\n    print(error)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    text = path.read_text()
    assert "serves no model 'missing-model'" in text and "remote" in text  # the cells ran and showed
    assert KEY not in text
    store = b"".join(p.read_bytes() for p in fresh_home.glob("runs.sqlite*"))
    assert KEY.encode() not in store


def test_ner_through_vllm_is_the_kernels_generation_parsed_the_same_way(vllm, fresh_home):
    """Greedy generation from the same chat template: the served model writes what the kernel's writes, and the
    same parser reads it back to character spans."""
    texts = ["Angela Merkel met Emmanuel Macron in Paris.", "Microsoft opened an office in Dublin."]
    remote = specnb.load(vllm.base_url, cache=False)
    there = remote.predict(texts, task="ner", progress=False)
    assert remote.last_run.method == "generate" and remote.last_run.output_tokens > 0
    here = specnb.load("smollm2", device="cpu").predict(texts, task="ner", progress=False)
    assert there == here


def test_the_load_magic_takes_an_endpoint_with_its_model_and_method(vllm, fresh_home):
    """``%specnb load URL --model NAME --method M``; the magics' device default does not apply to a server."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.SpecnbMagics.device = "cpu"
    config.HistoryManager.enabled = False
    shell = InteractiveShell(config=config)
    shell.run_line_magic("load_ext", "specnb")
    try:
        served = specnb.load(vllm.base_url).endpoint["model"]
        model = shell.run_line_magic("specnb", f"load {vllm.base_url} --model {served} --method choice --as vchoice")
        assert model.alias == "vchoice" and model.device == "remote" and model.endpoint["methods"]["langid"] == "choice"
        assert model.endpoint["concurrency"] == 8
    finally:
        shell.configurables.clear()
