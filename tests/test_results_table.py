"""scripts.results_table --write replaces the table between the markers and keeps the text around it."""

import pytest

from scripts.results_table import BEGIN, END, write_table


def test_write_table_replaces_only_the_table(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{BEGIN}\ncaption\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nafter the table\n{END}\ntail\n")
    write_table(doc, "| a | b |\n|---|---|\n| 3 | 4 |")
    assert doc.read_text() == (
        f"intro\n{BEGIN}\ncaption\n\n| a | b |\n|---|---|\n| 3 | 4 |\n\nafter the table\n{END}\ntail\n"
    )


def test_write_table_refuses_a_file_without_markers(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no <!-- results:begin -->"):
        write_table(doc, "| a |")
