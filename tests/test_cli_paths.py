"""The CLI refuses output paths it cannot write before any run starts, and says when a CSV's quoting
joined lines into one field (an unclosed quote) instead of reading it silently."""

from __future__ import annotations

import warnings

import pytest

import specnb
from specnb.cli import main, read_table
from specnb.errors import InputWarning


@pytest.fixture
def small_csv(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label\nThe cat sleeps.,en\nLe chat dort.,fr\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("where, words", [
    ("file/report.html", "is a file"),     # under an existing file
    ("deeper/file/x/r.html", "is a file"),
    ("adir", "is a folder"),               # an existing folder, not a file
])
def test_a_bad_output_path_is_refused_before_the_run(tmp_path, small_csv, specnb_home, capsys, where, words):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "deeper").mkdir()
    (tmp_path / "deeper" / "file").write_text("x")
    (tmp_path / "adir.html").mkdir()
    target = tmp_path / (where if where != "adir" else "adir.html")
    assert main(["compare", "--task", "langid", "--data", str(small_csv), "--text", "text", "--models", "langid",
                 "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert "InputError" in err and words in err and "Traceback" not in err
    assert specnb.runs().empty, "nothing ran, nothing was stored"


def test_a_new_folder_for_the_output_is_fine(tmp_path, small_csv, specnb_home):
    out = tmp_path / "new" / "sub" / "report.html"
    assert main(["compare", "--task", "langid", "--data", str(small_csv), "--text", "text", "--models", "langid",
                 "-o", str(out)]) == 0
    assert out.is_file()


def test_a_csv_whose_quote_swallows_lines_is_reported(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('text,label\n"hello,en\nbonjour,fr\nhallo" there,de\nciao,it\n', encoding="utf-8")
    with pytest.warns(InputWarning, match=r"read 2 rows from 5 non-empty lines.*line 2"):
        frame = read_table(path)
    assert len(frame) == 2


def test_a_csv_without_multiline_fields_reads_quietly(tmp_path, small_csv):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        assert len(read_table(small_csv)) == 2


def test_run_refuses_a_bad_output_path_before_reading_anything(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code = main(["run", str(tmp_path / "missing.yaml"), str(tmp_path / "missing.csv"),
                 "-o", str(tmp_path / "file" / "out.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "is a file" in err and "missing.yaml" not in err
