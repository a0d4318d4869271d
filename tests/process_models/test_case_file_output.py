"""`linetwin simulate` output (issue 7): every CSV column name is unique, and no value prints as "-0"."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from linetwin_cli.simulate import cli_simulate

CASES = Path(__file__).resolve().parents[2] / "examples" / "cases"


def test_crystallizer_csv_has_no_duplicated_column_names(tmp_path, capsys):
    out = tmp_path / "crystallizer.csv"
    assert cli_simulate([str(CASES / "crystallizer_kdp_moments.toml"), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    header = next(csv.reader(out.open()))
    duplicates = sorted({name for name in header if header.count(name) > 1})
    assert duplicates == []
    assert "mu0 [1/kg]" in header and "mu0 (output) [1/kg]" in header  # the state and the output beside it


def test_chromatography_uv_column_and_summary_never_print_minus_zero(tmp_path, capsys):
    out = tmp_path / "column.csv"
    assert cli_simulate([str(CASES / "chromatography_ed_linear_pulse.toml"), "--out", str(out), "--quiet"]) == 0
    summary = capsys.readouterr().out
    rows = list(csv.reader(out.open()))
    uv = rows[0].index("outlet_uv_absorbance [1]")
    values = [row[uv] for row in rows[1:]]
    assert "0.0" in values  # the baseline before the pulse elutes
    assert not [v for v in values if v in ("-0.0", "-0")]
    assert not any(v == "-0.0" for row in rows[1:] for v in row)
    assert not re.search(r"(?<![\w.])-0(?![.\de])", summary), summary
