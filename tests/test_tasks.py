"""Tasks: label spaces, input checks, prompts, answer parsing and the NER line parser (pure Python)."""

import string
import sys
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import specnb
from specnb import InputError, TaskError
from specnb.tasks import (
    LABEL_TASKS,
    SENTIMENT_LABELS,
    TASKS,
    Entities,
    Generation,
    Invalid,
    Label,
    LabelTask,
    Prompt,
    Span,
    get_task,
)
from specnb.tasks.base import MAX_CHARS
from specnb.tasks.langid import DEFAULT_LANGUAGES
from specnb.tasks.ner import ENTITY_TYPES, TYPE_SYNONYMS, parse_entities

CLASSIFY, SENTIMENT, LANGID, NER, EMBED, GENERATE = (
    get_task(name) for name in ("classify", "sentiment", "langid", "ner", "embed", "generate")
)
TOPICS = ("business", "sport", "tech")


def spans_of(result):
    assert isinstance(result, Entities), result
    return [(s.label, s.text) for s in result.spans]


def assert_offsets_exact(result, text):
    assert isinstance(result, Entities), result
    for span in result.spans:
        assert 0 <= span.start < span.end <= len(text)
        assert text[span.start : span.end] == span.text
    assert [s.start for s in result.spans] == sorted(s.start for s in result.spans)


# -- 1. label spaces -----------------------------------------------------------------------------------

def test_classify_needs_labels_and_says_how_to_give_them():
    with pytest.raises(TaskError, match=r"needs labels.*labels=\[.*e\.g\. labels=\['business'"):
        CLASSIFY.label_space(None)


@pytest.mark.parametrize("labels", [[], ["only"], ["  only  "]])
def test_classify_needs_at_least_two_labels(labels):
    with pytest.raises(TaskError, match="at least two labels"):
        CLASSIFY.label_space(labels)


@pytest.mark.parametrize("bad", ["", "   ", 3, None, b"tech"])
def test_classify_refuses_empty_and_non_string_labels(bad):
    with pytest.raises(TaskError, match="must be non-empty strings") as info:
        CLASSIFY.label_space(["sport", bad])
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("labels", ["sport,tech", 42])
def test_classify_labels_must_be_a_list_not_a_string(labels):
    with pytest.raises(TaskError, match="must be a list of strings"):
        CLASSIFY.label_space(labels)


def test_classify_refuses_duplicates_compared_without_case_naming_them():
    with pytest.raises(TaskError, match="compared without case") as info:
        CLASSIFY.label_space(["Sport", "tech", "sport ", "business"])
    assert "'Sport'" in str(info.value) and "'sport'" in str(info.value)
    assert "'tech'" not in str(info.value)


def test_classify_strips_whitespace_and_keeps_order_and_case():
    assert CLASSIFY.label_space([" Business", "sport\n", "Tech"]) == ("Business", "sport", "Tech")
    assert CLASSIFY.label_space(x for x in ("a", "b")) == ("a", "b")  # any iterable


def test_sentiment_defaults_and_synonyms():
    assert SENTIMENT.label_space(None) == ("positive", "negative", "neutral")
    assert SENTIMENT.label_space(["POS", "Negative"]) == ("positive", "negative")
    assert SENTIMENT.label_space(["neg", "NEU", " positive "]) == ("negative", "neutral", "positive")


def test_sentiment_refuses_labels_that_are_no_sentiment():
    with pytest.raises(TaskError, match=r"positive, negative, neutral.*'happy'"):
        SENTIMENT.label_space(["happy", "negative"])


def test_sentiment_refuses_two_labels_that_are_the_same_sentiment():
    with pytest.raises(TaskError):
        SENTIMENT.label_space(["pos", "positive"])


def test_langid_defaults_and_region_codes():
    assert LANGID.label_space(None) == DEFAULT_LANGUAGES
    assert LANGID.label_space(["pt-BR", "EN", "zh_Hans"]) == ("pt", "en", "zh")


@pytest.mark.parametrize("bad", ["english", "xx", "fra"])
def test_langid_refuses_what_is_not_an_iso_639_1_code(bad):
    with pytest.raises(TaskError, match=r"ISO 639-1 codes such as 'en', 'fr', 'pt-BR'") as info:
        LANGID.label_space(["en", bad])
    assert repr(bad) in str(info.value)


def test_langid_refuses_two_labels_for_one_language():
    with pytest.raises(TaskError, match="same language twice") as info:
        LANGID.label_space(["en-US", "en-GB", "fr"])
    assert "en-US" in str(info.value)


def test_ner_defaults_and_type_synonyms():
    assert NER.label_space(None) == ENTITY_TYPES
    assert NER.label_space(["per", "organization", " Location "]) == ("PERSON", "ORG", "LOC")
    assert NER.label_space(["PER", "person", "work_of_art"]) == ("PERSON", "WORK_OF_ART")  # merged, custom kept
    assert NER.label_space(["gpe"]) == ("GPE",)  # one type is enough for ner


@pytest.mark.parametrize("bad", ["1abc", "", "ORG-NAME", 7])
def test_ner_refuses_types_that_are_no_names(bad):
    with pytest.raises(TaskError, match="is not a name such as PERSON or ORG"):
        NER.label_space(["PERSON", bad])


@pytest.mark.parametrize("bad", [[], "PERSON"])
def test_ner_refuses_no_types_or_a_bare_string(bad):
    with pytest.raises(TaskError, match=r"PERSON.*ORG"):
        NER.label_space(bad)


@pytest.mark.parametrize("task", [EMBED, GENERATE])
def test_embed_and_generate_take_no_labels(task):
    assert task.label_space(None) is None
    with pytest.raises(TaskError, match=rf"{task.name!r} takes no labels; labels apply to classify"):
        task.label_space(["a", "b"])


def test_every_task_error_is_a_specnb_error_and_a_value_error():
    with pytest.raises(specnb.SpecnbError):
        CLASSIFY.label_space(None)
    with pytest.raises(ValueError):
        LANGID.label_space(["english", "fr"])


# -- 2. input checks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("task", [CLASSIFY, SENTIMENT, LANGID])
@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_label_tasks_refuse_empty_text(task, text):
    assert "empty" in task.problem(text)


@pytest.mark.parametrize("task", [NER, EMBED, GENERATE])
def test_ner_embed_and_generate_accept_empty_text(task):
    assert task.problem("") is None and task.problem("  ") is None


@pytest.mark.parametrize("task", [CLASSIFY, NER, EMBED, GENERATE])
def test_texts_over_max_chars_are_refused_with_their_size(task):
    assert task.problem("x" * MAX_CHARS) is None
    reason = task.problem("x" * (MAX_CHARS + 1))
    assert "1,000,001 characters" in reason and "1,000,000" in reason and "split" in reason


def test_ordinary_text_has_no_problem():
    assert CLASSIFY.problem("Great match!") is None


# -- 3. prompts ----------------------------------------------------------------------------------------

class ChatMLTokenizer:
    """Just enough of a Hugging Face tokenizer: a ChatML chat template."""

    chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}...{% endfor %}"

    def apply_chat_template(self, turns, tokenize=False, add_generation_prompt=False):
        assert tokenize is False
        out = "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns)
        return out + ("<|im_start|>assistant\n" if add_generation_prompt else "")


class DroppingTokenizer(ChatMLTokenizer):
    """A chat template that ignores what the user wrote."""

    def apply_chat_template(self, turns, tokenize=False, add_generation_prompt=False):
        return "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"


class RepeatingTokenizer(ChatMLTokenizer):
    def apply_chat_template(self, turns, tokenize=False, add_generation_prompt=False):
        content = turns[-1]["content"]
        return content + content


@pytest.mark.parametrize("instruction", ["", "   ", None, 3])
def test_prompt_needs_an_instruction(instruction):
    with pytest.raises(InputError, match="non-empty instruction"):
        Prompt(instruction)


@pytest.mark.parametrize("input_", ["Text:", "{text} and {text}", "{Text}", None])
def test_prompt_input_must_hold_text_exactly_once(input_):
    with pytest.raises(InputError, match=r"'\{text\}' exactly once"):
        Prompt("Classify.", input=input_)


def test_message_puts_instruction_then_examples_then_input():
    p = Prompt("Pick one of: {labels}.").with_examples([("Goal!", "sport"), ("Shares fell", "business")])
    message = p.message("New phone out", list(TOPICS))
    assert message.startswith("Pick one of: business, sport, tech.\n\nExamples:\n\n")
    assert message.index("Goal!") < message.index("Shares fell") < message.index("New phone out")
    assert "Text:\nGoal!\nAnswer: sport" in message
    assert message.endswith("\n\nText:\nNew phone out")


def test_message_matches_the_documented_example():
    p = Prompt("Classify the text as one of: {labels}. Answer with the label only.")
    assert p.message("Great match!", ["sport", "tech"]) == (
        "Classify the text as one of: sport, tech. Answer with the label only.\n\nText:\nGreat match!"
    )


def test_labels_are_shown_as_the_task_answers_them():
    listing = LANGID.default_prompt().replace(instruction="Which language? One of: {labels}.")
    message = listing.message("Bonjour", ["fr", "de"], LANGID.answer)
    assert "French, German" in message and "fr," not in message
    # examples' answers too
    p = listing.with_examples([("Hallo", "de")])
    assert "Answer: German" in p.message("Bonjour", ["fr", "de"], LANGID.answer)


def test_default_label_prompts_do_not_list_the_labels_and_lead_into_the_answer():
    from specnb.tasks import get_task

    for task in ("classify", "sentiment", "langid"):
        prompt = get_task(task).default_prompt()
        assert "{labels}" not in prompt.instruction and prompt.answer, task


def test_braces_in_user_text_are_left_alone():
    p = Prompt("Pick one of: {labels}.", input="Review: {text}").with_examples([("{text} {0}", "tech")])
    text = "{labels} {text} {0} {} {{x}}"
    message = p.message(text, list(TOPICS))
    assert message.endswith("Review: " + text)
    assert "Review: {text} {0}\nAnswer: tech" in message
    assert message.count("business") == 1  # {labels} inside the text is not filled in
    for tokenizer in (None, ChatMLTokenizer()):
        assert text in p.render(tokenizer, text, list(TOPICS))


def test_with_examples_accepts_pairs_dicts_and_dataframes():
    pd = pytest.importorskip("pandas")
    expected = (("Goal!", "sport"), ("Shares fell", "business"))
    p = Prompt("Classify.")
    assert p.with_examples([("Goal!", "sport"), ["Shares fell", "business"]]).examples == expected
    assert p.with_examples([{"text": "Goal!", "label": "sport"},
                            {"text": "Shares fell", "answer": "business"}]).examples == expected
    frame = pd.DataFrame({"text": ["Goal!", "Shares fell"], "label": ["sport", "business"], "extra": [1, 2]})
    assert p.with_examples(frame).examples == expected
    assert p.with_examples(None).examples == () and p.examples == ()  # copies; the original is unchanged


@pytest.mark.parametrize(("examples", "match"), [
    ([("a", "b"), ("only one",)], "example 1 is"),
    ([("a", "b"), ("c", "d"), ("e", 3)], "example 2 is"),
    ([{"text": "a"}], "example 0 is"),
    (["ab"], "example 0 is"),
    ("text,label", "must be .text, answer. pairs, got str"),
    (42, "got int"),
])
def test_bad_examples_are_refused_naming_the_index(examples, match):
    with pytest.raises(InputError, match=match):
        Prompt("Classify.").with_examples(examples)


def test_dataframe_examples_need_text_and_label_columns():
    pd = pytest.importorskip("pandas")
    with pytest.raises(InputError, match=r"missing \['label'\]"):
        Prompt("Classify.").with_examples(pd.DataFrame({"text": ["a"], "topic": ["b"]}))


def test_parts_without_a_chat_template_is_plain_text():
    p = Prompt("Pick one of: {labels}.", answer="Label:", system="Be brief.")
    prefix, suffix = p.parts(None, list(TOPICS))
    assert prefix == "Be brief.\n\nPick one of: business, sport, tech.\n\nText:\n"
    assert suffix == "\nAnswer: Label:"
    assert p.render(None, "Goal!", list(TOPICS)) == prefix + "Goal!" + suffix


def test_parts_with_a_chat_template_share_a_prefix_and_match_the_template():
    tokenizer = ChatMLTokenizer()
    p = Prompt("Pick one of: {labels}.", system="Be brief.", answer="The topic is")
    p = p.with_examples([("Goal!", "sport")])
    prefix, suffix = p.parts(tokenizer, list(TOPICS))
    assert prefix.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nPick one of: business")
    assert suffix == "<|im_end|>\n<|im_start|>assistant\nThe topic is"
    first, second = (p.render(tokenizer, t, list(TOPICS)) for t in ("Shares fell", "A longer text about chips"))
    assert first.startswith(prefix) and second.startswith(prefix)
    for text, rendered in (("Shares fell", first), ("A longer text about chips", second)):
        assert rendered == prefix + text + suffix
        turns = [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": p.message(text, list(TOPICS))}]
        assert rendered == tokenizer.apply_chat_template(turns, add_generation_prompt=True) + "The topic is"


def test_a_tokenizer_with_an_empty_chat_template_gets_plain_text():
    tokenizer = ChatMLTokenizer()
    tokenizer.chat_template = None
    assert Prompt("Classify.").parts(tokenizer) == Prompt("Classify.").parts(None)


@pytest.mark.parametrize("tokenizer", [DroppingTokenizer(), RepeatingTokenizer()])
def test_a_chat_template_that_drops_or_repeats_the_input_is_an_input_error(tokenizer):
    with pytest.raises(InputError, match="dropped or repeated the input"):
        Prompt("Classify.").parts(tokenizer, list(TOPICS))


def test_every_task_with_a_prompt_renders_its_default_labels():
    for task, labels in ((SENTIMENT, None), (LANGID, None), (NER, None), (CLASSIFY, TOPICS)):
        prompt = task.default_prompt()
        shown = prompt.message("x", task.label_space(labels), task.answer)
        assert "{labels}" not in shown
        if "{labels}" in prompt.instruction:  # ner lists its types; label tasks rank their labels unlisted
            assert task.answer(task.label_space(labels)[0]) in shown
        else:
            assert prompt.answer and prompt.answer in str(prompt)
    assert EMBED.default_prompt() is None and GENERATE.default_prompt() is None


# -- 4. parsing generated answers for label tasks ------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "business", "Business", "BUSINESS", '"Business"', "'business'", "`business`", "**Business**", "Business.",
    " business \n", "Answer: Business", "answer - business", "The answer is: business", "Label: business",
    "Topic: Business.", "business - because shares fell", "Business\n\nThe text is about markets.",
])
def test_label_answers_are_read_leniently(raw):
    assert CLASSIFY.parse(raw, "Shares fell", TOPICS) == Label("business", None)


def test_an_answer_naming_exactly_one_label_is_read_as_it():
    # chat models answer in sentences; one label named as a whole word is that label, two are no answer
    assert CLASSIFY.parse("I think it is tech", "x", TOPICS) == Label("tech", None)
    assert CLASSIFY.parse("This article is about sport.", "x", TOPICS) == Label("sport", None)
    assert isinstance(CLASSIFY.parse("Either business or tech", "x", TOPICS), Invalid)


@pytest.mark.parametrize("raw", ["I think it is technology", "", "none", "businesses", "sporty", "techno",
                                 "it is business or tech"])
def test_answers_that_are_no_label_are_invalid_listing_the_labels(raw):
    result = CLASSIFY.parse(raw, "x", TOPICS)
    assert isinstance(result, Invalid) and result.valid is False
    assert result.raw == raw
    assert "business, sport, tech" in result.reason


def test_invalid_keeps_the_raw_answer_verbatim():
    raw = "  Well...\n I'd say **something else**  "
    result = CLASSIFY.parse(raw, "x", TOPICS)
    assert result.raw == raw and not result.valid
    assert result.to_dict() == {"invalid": True, "raw": raw, "reason": result.reason}
    assert Label("tech", 0.5).valid and Label("tech", 0.5).to_dict() == {"label": "tech", "score": 0.5}


def test_the_longest_label_wins_when_one_is_a_prefix_of_another():
    labels = ("sport", "sports", "sports news")
    assert CLASSIFY.parse("Sports", "x", labels).label == "sports"
    assert CLASSIFY.parse("sports - clearly", "x", labels).label == "sports"
    assert CLASSIFY.parse("Sports news, it is about a match", "x", labels).label == "sports news"
    assert CLASSIFY.parse("sport, because", "x", labels).label == "sport"
    assert CLASSIFY.parse("Sport", "x", tuple(reversed(labels))).label == "sport"


def test_a_label_answer_shows_at_most_twelve_labels():
    labels = tuple(f"topic{i}" for i in range(20))
    reason = CLASSIFY.parse("none of these", "x", labels).reason
    assert "topic11, ..." in reason and "topic12" not in reason


def test_labels_ending_in_punctuation_are_found_before_an_explanation():
    assert CLASSIFY.parse("C++ because it is fast", "x", ("C++", "Java")) == Label("C++", None)


def test_an_empty_answer_is_never_a_label():
    assert not CLASSIFY.parse("", "x", ("language", "music")).valid
    assert not CLASSIFY.parse("Answer:", "x", ("language", "music")).valid


def test_sentiment_answers():
    labels = SENTIMENT.label_space(None)
    assert SENTIMENT.parse("Negative.", "x", labels).label == "negative"
    assert SENTIMENT.parse("Sentiment: positive", "x", labels).label == "positive"
    assert not SENTIMENT.parse("happy", "x", labels).valid


@pytest.mark.parametrize("raw", ["French", "fr", "french.", "FR", "The language is French.", "French (France)",
                                 "French, with some English"])
def test_langid_answers_may_name_the_language_or_its_code(raw):
    assert LANGID.parse(raw, "Bonjour", LANGID.label_space(None)) == Label("fr", None)


def test_langid_reads_a_sentence_naming_one_language():
    assert LANGID.parse("This text is written in French.", "Bonjour", ("en", "fr", "de")) == Label("fr", None)
    assert isinstance(LANGID.parse("Maybe English or French", "Bonjour", ("en", "fr", "de")), Invalid)


@pytest.mark.parametrize("raw", ["Klingon", "", "Frenchy", "it is French or German"])
def test_langid_answers_naming_no_language_are_invalid(raw):
    result = LANGID.parse(raw, "Bonjour", ("en", "fr", "de"))
    assert isinstance(result, Invalid) and result.raw == raw
    assert "en, fr, de" in result.reason


def test_langid_prefers_the_longest_language_name():
    assert LANGID.parse("Norwegian Bokmål", "x", ("no", "nb")).label == "nb"


def test_generate_strips_and_embed_has_no_parser():
    assert GENERATE.parse("  Hello there.\n", "x", None) == Generation("Hello there.")
    with pytest.raises(NotImplementedError):
        EMBED.parse("x", "x", None)


# -- 5. the NER line parser ----------------------------------------------------------------------------

def test_ner_well_formed_answer_gives_exact_sorted_offsets():
    text = "Acme hired Alice Smith in Paris."
    result = parse_entities("PERSON: Alice Smith\nGPE: Paris\nORG: Acme", text, ENTITY_TYPES)
    assert result.spans == (Span(0, 4, "ORG", "Acme"), Span(11, 22, "PERSON", "Alice Smith"),
                            Span(26, 31, "GPE", "Paris"))
    assert_offsets_exact(result, text)
    assert result.valid and result.to_dict()["spans"][0] == {"start": 0, "end": 4, "label": "ORG", "text": "Acme",
                                                             "score": None}


def test_ner_task_parse_uses_default_types_when_given_none():
    assert spans_of(NER.parse("PER: Bob", "Bob ran.", None)) == [("PERSON", "Bob")]
    assert not NER.parse("PER: Bob", "Bob ran.", ("PERSON",), complete=False).valid


@pytest.mark.parametrize(("line", "types", "label"), [
    ("PER: Paris", ENTITY_TYPES, "PERSON"),
    ("person: Paris", ENTITY_TYPES, "PERSON"),
    ("Organization: Paris", ENTITY_TYPES, "ORG"),
    ("organisation: Paris", ENTITY_TYPES, "ORG"),
    ("Location: Paris", ENTITY_TYPES, "LOC"),
    ("Location: Paris", ("PERSON", "GPE"), "GPE"),
    ("GPE: Paris", ("PERSON", "LOC"), "LOC"),
    ("City: Paris", ("LOC",), "LOC"),
    ("WORK_OF_ART: Paris", ("WORK_OF_ART",), "WORK_OF_ART"),
])
def test_ner_entity_types_are_mapped(line, types, label):
    assert spans_of(parse_entities(line, "I love Paris", types)) == [(label, "Paris")]


def test_ner_custom_types_may_be_written_with_spaces():
    assert spans_of(parse_entities("Work of art: Mona Lisa", "the Mona Lisa", ("WORK_OF_ART",))) == [
        ("WORK_OF_ART", "Mona Lisa")]


@pytest.mark.parametrize("raw", [
    "- PERSON: Alice\n- ORG: Acme",
    "* PERSON: Alice\n* ORG: Acme",
    "\u2022 PERSON: Alice\n\u2022 ORG: Acme",
    "1. PERSON: Alice\n2) ORG: Acme",
    "**PERSON**: Alice\n**ORG:** Acme",
    "- **PERSON**: **Alice**\n- ORG: `Acme`",
    'PERSON: "Alice"\nORG: \u201cAcme\u201d',
    "PERSON: 'Alice'\nORG: Acme.",
    "```\nPERSON: Alice\nORG: Acme\n```",
    "```text\nPERSON: Alice\n\n\nORG: Acme\n```\n",
    "Entities:\nPERSON: Alice\nORG: Acme",
    "Here are the named entities:\n\nPERSON: Alice\nORG: Acme\nGPE: none\nLOC: N/A",
    "PERSON | Alice\nORG = Acme",
    "PERSON\tAlice\nORG:Acme",
    "  PERSON:   Alice  \n\n  ORG: Acme  \n",
    "PERSON: alice\nORG: ACME",
])
def test_ner_tolerated_formatting(raw):
    text = "Alice works for Acme."
    if raw.endswith("Acme."):
        text = "Alice works for Acme. Period."  # 'Acme.' must occur as written
    result = parse_entities(raw, text, ENTITY_TYPES)
    assert [s.label for s in result.spans] == ["PERSON", "ORG"]
    assert result.spans[0].text == "Alice" and result.spans[1].text.startswith("Acme")
    assert_offsets_exact(result, text)


@pytest.mark.parametrize("raw", ["NONE", "none", "None.", "N/A", "No entities", "\"NONE\"", "**None**", "PERSON: none",
                                 "PERSON: None\nORG: none.", "```\nNONE\n```", "Entities:", "-"])
def test_ner_no_entities(raw):
    assert parse_entities(raw, "nothing to see", ENTITY_TYPES) == Entities(())


def test_ner_comma_separated_entities_are_split_only_when_the_whole_string_does_not_occur():
    text = "Alice, Bob and Carol met Dave; Eve stayed."
    assert spans_of(parse_entities("PERSON: Alice, Carol; Eve", text, ENTITY_TYPES)) == [
        ("PERSON", "Alice"), ("PERSON", "Carol"), ("PERSON", "Eve")]
    assert spans_of(parse_entities("PERSON: Alice, Bob", text, ENTITY_TYPES)) == [("PERSON", "Alice, Bob")]
    result = parse_entities("PERSON: Alice, Zed", text, ENTITY_TYPES)
    assert not result.valid and "'Zed' does not occur" in result.reason


def test_ner_whitespace_and_case_may_differ_from_the_text():
    text = "She moved to New\nYork  City from paris."
    result = parse_entities("GPE: New York City\nGPE: Paris", text, ENTITY_TYPES)
    assert spans_of(result) == [("GPE", "New\nYork  City"), ("GPE", "paris")]
    assert_offsets_exact(result, text)


def test_ner_exact_case_is_preferred_over_other_case():
    text = "apple pies at Apple"
    assert parse_entities("ORG: Apple", text, ENTITY_TYPES).spans == (Span(14, 19, "ORG", "Apple"),)


def test_ner_repeated_entities_map_to_successive_occurrences():
    text = "Bob met Bob's brother Bob."
    result = parse_entities("PERSON: Bob\nPERSON: Bob\nPERSON: Bob", text, ENTITY_TYPES)
    assert [(s.start, s.end) for s in result.spans] == [(0, 3), (8, 11), (22, 25)]
    # one line more than there are occurrences: not an error, no new span
    assert parse_entities("PERSON: Bob\n" * 4, text, ENTITY_TYPES) == result


def test_ner_prefers_a_standalone_word_over_a_match_inside_another():
    text = "Annabel and Ann"
    assert parse_entities("PERSON: Ann", text, ENTITY_TYPES).spans == (Span(12, 15, "PERSON", "Ann"),)
    result = parse_entities("PERSON: Ann\nPERSON: Annabel", text, ENTITY_TYPES)
    assert [(s.start, s.end) for s in result.spans] == [(0, 7), (12, 15)]
    # a word that occurs only inside another is still found
    assert parse_entities("ORG: Micro", "Microsoft", ENTITY_TYPES).spans == (Span(0, 5, "ORG", "Micro"),)


def test_ner_a_repeated_line_does_not_land_inside_another_word():
    assert len(parse_entities("PERSON: Ann\nPERSON: Ann", "Annabel met Ann.", ENTITY_TYPES).spans) == 1


@pytest.mark.parametrize(("raw", "number", "what"), [
    ("PERSON: Alice\nAlice is a person", 2, "is not 'TYPE: entity'"),
    ("PERSON: Alice\n\nORG: Acme\n{\"PERSON\": \"Alice\"}", 4, "is not 'TYPE: entity'"),
    ("DATE: Monday", 1, "'DATE' is not one of the entity types PERSON, ORG, GPE, LOC"),
    ("PERSON: Alice\nSOMETHING: Acme", 2, "'SOMETHING' is not one of the entity types"),
    ("PERSON: Alice\nORG: Initech", 2, "'Initech' does not occur in the text"),
    ("PERSON: Alice Smith", 1, "'Alice Smith' does not occur"),
])
def test_ner_malformed_answers_are_invalid_naming_the_line(raw, number, what):
    result = parse_entities(raw, "Alice works for Acme on Monday.", ENTITY_TYPES)
    assert isinstance(result, Invalid) and result.raw == raw
    assert f"line {number}" in result.reason and what in result.reason


def test_ner_line_numbers_count_leading_blank_lines():
    assert "line 3" in parse_entities("\nPERSON: Alice\nbogus", "Alice", ENTITY_TYPES).reason


def test_ner_a_cut_off_answer_is_invalid():
    result = parse_entities("PERSON: Alice\nORG: Ac", "Alice works for Acme.", ENTITY_TYPES, complete=False)
    assert isinstance(result, Invalid) and "token limit" in result.reason and "max_new_tokens" in result.reason
    assert result.raw == "PERSON: Alice\nORG: Ac"


@pytest.mark.parametrize("entity", ["C++ (lang)", "a.b*c", "[x]", "$5 (USD)?", "a|b", "^start$", "back\\slash",
                                    "(?P<x>y)", "x{2,3}"])
def test_ner_regex_metacharacters_in_entities_are_literal(entity):
    text = f"We talked about {entity} today; axbbc and x are decoys."
    result = parse_entities(f"ORG: {entity}", text, ENTITY_TYPES)
    assert spans_of(result) == [("ORG", entity)]
    assert_offsets_exact(result, text)
    assert not parse_entities(f"ORG: {entity}", "nothing here", ENTITY_TYPES).valid


def test_ner_html_in_the_text_is_matched_literally():
    text = "The comment <script>alert(1)</script> came from Eve."
    result = parse_entities("ORG: <script>alert(1)</script>\nPERSON: Eve", text, ENTITY_TYPES)
    assert result.spans[0] == Span(12, 37, "ORG", "<script>alert(1)</script>")
    assert_offsets_exact(result, text)


def test_ner_unicode_entities():
    text = "From Zürich to Kraków with 🍕 Pizza Co and Ωmega AG 🎉."
    raw = "GPE: Zürich\nGPE: KRAKÓW\nORG: 🍕 Pizza Co\nORG: ωmega ag"
    result = parse_entities(raw, text, ENTITY_TYPES)
    assert spans_of(result) == [("GPE", "Zürich"), ("GPE", "Kraków"), ("ORG", "🍕 Pizza Co"), ("ORG", "Ωmega AG")]
    assert_offsets_exact(result, text)


def test_ner_an_entity_may_be_the_whole_text():
    text = "Barack Obama"
    assert parse_entities("PERSON: Barack Obama", text, ENTITY_TYPES).spans == (Span(0, 12, "PERSON", text),)


@pytest.mark.parametrize("raw", ["", " ", "\n\n", " \t\n \r\n "])
def test_ner_empty_or_blank_answers_are_no_entities(raw):
    result = parse_entities(raw, "Alice works for Acme.", ENTITY_TYPES)
    assert result == Entities(()) and result.valid


def test_ner_empty_text():
    assert parse_entities("NONE", "", ENTITY_TYPES) == Entities(())
    assert "does not occur" in parse_entities("PERSON: Alice", "", ENTITY_TYPES).reason


def _lines_run(function, *args):
    """(how many lines of Python ``function(*args)`` runs, its result): a measure of the work done that, unlike a
    time, is the same on every machine however loaded."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        count += event == "line"
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = function(*args)
    finally:
        sys.settrace(previous)
    return count, result


def test_ner_ten_thousand_lines_parse_in_linear_work():
    text = "Alice met Bob in Paris."
    lines = ["- **PERSON**: Alice", "GPE: Paris", "", "PER: bob", "NONE"]
    small, _ = _lines_run(parse_entities, "\n".join(lines * 200), text, ENTITY_TYPES)
    raw = "\n".join(lines * 2000)
    work, result = _lines_run(parse_entities, raw, text, ENTITY_TYPES)
    assert spans_of(result) == [("PERSON", "Alice"), ("PERSON", "Bob"), ("GPE", "Paris")]
    assert work < 15 * small, (small, work)  # ten times the lines: about ten times the work, not a hundred
    bad = raw + "\nthis is not an entity line"
    result = parse_entities(bad, text, ENTITY_TYPES)
    assert "line 10001" in result.reason


def test_ner_many_mentions_of_one_name_parse_in_linear_work():
    def mentions(n):
        return _lines_run(parse_entities, "PERSON: Bob\n" * n, " ".join(["Bob"] * n), ENTITY_TYPES)

    small, _ = mentions(200)
    work, result = mentions(2000)
    assert len(result.spans) == 2000 and result.spans[-1].start == 4 * 1999
    assert work < 15 * small, (small, work)  # each mention starts where the last one ended: not quadratic


# hypothesis: random texts whose words are declared entities

_WORDS = st.text(alphabet=string.ascii_letters + "éüłß", min_size=1, max_size=8).filter(
    lambda w: w.casefold() not in {"none", "nothing"})
_SEPARATORS = st.sampled_from([" ", "  ", "\n", ", ", ". ", " - ", "\t"])
_DECORATIONS = st.sampled_from(["{type}: {entity}", "- {type}: {entity}", "**{type}**: {entity}", "1. {type}: {entity}",
                                '{type}: "{entity}"', "* {type}: `{entity}`", "{type} | {entity}"])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_ner_parser_finds_every_declared_entity_with_exact_offsets(data):
    words = data.draw(st.lists(_WORDS, min_size=1, max_size=25))
    separators = data.draw(st.lists(_SEPARATORS, min_size=len(words), max_size=len(words)))
    text = "".join(w + s for w, s in zip(words, separators)).rstrip()
    types = tuple(data.draw(st.lists(st.sampled_from(ENTITY_TYPES), min_size=1, unique=True)))
    spellings = sorted(name for name, canonical in TYPE_SYNONYMS.items() if canonical in types)
    declared = data.draw(st.lists(st.integers(0, len(words) - 1), unique=True, max_size=len(words)))
    lines, expected = [], Counter()
    for index in data.draw(st.permutations(declared)):
        spelling = data.draw(st.sampled_from(spellings))
        spelling = data.draw(st.sampled_from([spelling, spelling.lower(), spelling.title()]))
        lines.append(data.draw(_DECORATIONS).format(type=spelling, entity=words[index]))
        expected[(TYPE_SYNONYMS[spelling.upper()], words[index])] += 1
    if data.draw(st.booleans()):
        lines.insert(0, "Entities:")
    result = parse_entities("\n".join(lines), text, types)
    assert_offsets_exact(result, text)
    assert all(s.label in types for s in result.spans)
    assert Counter((s.label, s.text) for s in result.spans) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.lists(st.tuples(st.sampled_from(["PERSON", "org", "Loc", "DATE", "x y"]),
                                                st.text(max_size=15)), max_size=6), st.text(max_size=20))
def test_ner_parser_never_raises_and_never_returns_bad_offsets(text, pairs, noise):
    assume(pairs or noise)
    raw = "\n".join(f"{kind}: {value}" for kind, value in pairs) + noise
    result = parse_entities(raw, text, ENTITY_TYPES)
    if result.valid:
        assert_offsets_exact(result, text)
        assert all(s.label in ENTITY_TYPES for s in result.spans)
    else:
        assert isinstance(result, Invalid) and result.raw == raw and result.reason


# -- 6. the task table ---------------------------------------------------------------------------------

def test_tasks_table():
    assert specnb.TASKS is TASKS
    assert list(TASKS) == ["classify", "sentiment", "langid", "ner", "embed", "generate"]
    assert all(isinstance(v, str) and v for v in TASKS.values())
    assert LABEL_TASKS == ("classify", "sentiment", "langid")
    for name in TASKS:
        task = get_task(name)
        assert task.name == name and task.description == TASKS[name] and repr(task).startswith("<specnb task")
        assert isinstance(task, LabelTask) == (name in LABEL_TASKS) == task.ranked
    assert get_task("ner").prediction is Entities and get_task("langid").prediction is Label


@pytest.mark.parametrize("name, closest", [("nope", None), ("Classify", "classify"), ("", None),
                                           ("translate", None), ("sentimnt", "sentiment")])
def test_unknown_task_names_the_closest_and_lists_every_task_on_one_line(name, closest):
    with pytest.raises(TaskError, match="unknown task") as info:
        get_task(name)
    message = str(info.value)
    assert "\n" not in message and f"valid tasks: {', '.join(TASKS)} " in message
    assert ("did you mean" in message) == (closest is not None)
    if closest is not None:
        assert f"did you mean {closest!r}?" in message


def test_check_task_against_what_a_model_supports():
    from specnb.tasks import check_task

    assert check_task("ner", ("ner", "embed")) == "ner"
    with pytest.raises(TaskError, match="cannot serve task 'classify'; valid tasks for it: ner, embed"):
        check_task("classify", ("ner", "embed"))


# -- the parser follows the prompt's own format and common phrasings ------------------------------
def test_ner_accepts_the_type_description_the_prompt_shows():
    prompt_types = NER.default_prompt().message("x", ENTITY_TYPES, NER.answer)
    assert "PERSON (people)" in prompt_types
    parsed = parse_entities("PERSON (people): Ann\nORG (companies, agencies, institutions): Acme", "Ann joined Acme.")
    assert [(s.label, s.text) for s in parsed.spans] == [("PERSON", "Ann"), ("ORG", "Acme")]


@pytest.mark.parametrize("raw", ["No entities found.", "no named entities", "None found", "N/A", "**None**"])
def test_ner_phrasings_of_nothing_are_empty_and_valid(raw):
    assert parse_entities(raw, "nothing to see here") == Entities(())


def test_ner_a_trailing_period_is_not_part_of_the_entity():
    parsed = parse_entities("PERSON: Ann.", "I met Ann yesterday")
    assert [(s.start, s.end) for s in parsed.spans] == [(6, 9)]


def test_ner_spans_never_overlap():
    parsed = parse_entities("GPE: New York\nGPE: York", "In New York today")
    assert [(s.start, s.end, s.text) for s in parsed.spans] == [(3, 11, "New York")]


def test_ner_a_single_star_is_part_of_the_name():
    parsed = parse_entities("ORG: *NSYNC", "Fans of *NSYNC cheered")
    assert [s.text for s in parsed.spans] == ["*NSYNC"]


def test_sentiment_answers_may_use_the_short_spellings():
    assert SENTIMENT.parse("pos", "x", SENTIMENT_LABELS) == Label("positive", None)
    assert SENTIMENT.parse("NEG.", "x", SENTIMENT_LABELS) == Label("negative", None)


def test_langid_withdrawn_codes_are_the_same_language():
    with pytest.raises(TaskError, match="same language"):
        LANGID.label_space(["iw", "he"])
    assert LANGID.label_space(["iw", "en"]) == ("he", "en")
