"""langid: which language a text is in, as an ISO 639-1 code.

A generalist ranks language *names* ("French"), which it knows far better than codes, and each
name maps back to its code ("fr").
"""

from __future__ import annotations

from .base import LabelTask, normalize_answer, only_named
from .prompts import Prompt
from .types import Invalid, Label

__all__ = ["ISO_639_1", "LANGUAGE_NAMES", "DEFAULT_LANGUAGES", "is_language_code", "language_code", "Langid", "LANGID"]

# The 183 two-letter codes of ISO 639-1 (plus "iw"/"in"/"ji", the withdrawn codes some models still emit).
ISO_639_1 = frozenset(
    ["aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh", "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj", "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln", "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo", "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu", "iw", "in", "ji"]
)

# English names of the languages a generalist is most likely to know, by ISO 639-1 code.
LANGUAGE_NAMES = {
    "af": "Afrikaans", "am": "Amharic", "ar": "Arabic", "az": "Azerbaijani", "be": "Belarusian",
    "bg": "Bulgarian", "bn": "Bengali", "bs": "Bosnian", "ca": "Catalan", "cs": "Czech", "cy": "Welsh",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "eo": "Esperanto", "es": "Spanish",
    "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French", "ga": "Irish",
    "gl": "Galician", "gu": "Gujarati", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian",
    "hy": "Armenian", "id": "Indonesian", "is": "Icelandic", "it": "Italian", "ja": "Japanese",
    "ka": "Georgian", "kk": "Kazakh", "km": "Khmer", "kn": "Kannada", "ko": "Korean", "la": "Latin",
    "lb": "Luxembourgish", "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian", "ml": "Malayalam",
    "mn": "Mongolian", "mr": "Marathi", "ms": "Malay", "mt": "Maltese", "my": "Burmese", "ne": "Nepali",
    "nl": "Dutch", "no": "Norwegian", "nb": "Norwegian Bokmål", "nn": "Norwegian Nynorsk", "pa": "Punjabi",
    "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "si": "Sinhala",
    "sk": "Slovak", "sl": "Slovenian", "so": "Somali", "sq": "Albanian", "sr": "Serbian", "sv": "Swedish",
    "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish",
    "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese", "yi": "Yiddish", "zh": "Chinese",
    "zu": "Zulu",
}
# The label space when none is given: widely spoken languages with distinct scripts or spelling.
DEFAULT_LANGUAGES = (
    "en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl", "cs", "ru", "uk", "el", "tr", "ar", "he", "hi",
    "zh", "ja", "ko", "vi", "id", "fi", "hu",
)


def is_language_code(label: str) -> bool:
    """``'fr'``, ``'pt-BR'``, ``'zh_Hans'`` -> True; ``'cat'`` -> False."""
    return label.replace("_", "-").split("-", 1)[0].lower() in ISO_639_1


_WITHDRAWN = {"iw": "he", "in": "id", "ji": "yi"}


def language_code(label: str) -> str:
    """``'pt-BR'`` -> ``'pt'``; ``'__label__fr'`` -> ``'fr'``; ``'iw'`` -> ``'he'``: the current
    ISO 639-1 code, lower case."""
    code = label.replace("__label__", "").replace("_", "-").split("-", 1)[0].lower()
    return _WITHDRAWN.get(code, code)


class Langid(LabelTask):
    name = "langid"
    description = "an ISO 639-1 language code, with a score"
    default_labels = DEFAULT_LANGUAGES

    label_kind = "ISO 639-1 codes such as 'en', 'fr', 'pt-BR'"
    same_kind = "language"

    def canonical(self, label):
        code = language_code(label)
        return code if is_language_code(label) and len(code) == 2 else None

    def answer(self, label: str) -> str:
        return LANGUAGE_NAMES.get(label, label)

    def parse(self, raw, text, labels):
        answer = normalize_answer(raw)
        spellings = sorted(((name.casefold(), label) for label in labels for name in (label, self.answer(label))),
                           key=lambda pair: -len(pair[0]))
        for name, label in spellings:  # whole answer, else the longest name that starts it
            if answer == name:
                return Label(label, None)
        for name, label in spellings:
            if answer.startswith(name + " ") or answer.startswith(name + ","):
                return Label(label, None)
        named = only_named(answer, [(name, label) for name, label in spellings if len(name) > 2])
        if named is not None:  # "This text is written in French."
            return Label(named, None)
        return Invalid(raw, f"the answer names none of the languages {', '.join(labels[:12])}{', ...' if len(labels) > 12 else ''}")

    def default_prompt(self) -> Prompt:
        # No list of languages (see `specnb.tasks.classify`): the model ranks every name after the lead-in.
        return Prompt("Which language is this text written in?", answer="The text is written in")


LANGID = Langid()
