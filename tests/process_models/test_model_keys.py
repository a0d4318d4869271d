"""The model-key reference: every kind declares exactly the keys its factory accepts, `linetwin models describe`
prints the reference, and docs/plant/model-keys.md is current (regenerate: python tools/gen_model_keys.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from linetwin_cli.main import main as linetwin
from process_models.model_keys import describe_kind, model_keys, reference
from process_models.registry import UNIT_KINDS

REPO = Path(__file__).resolve().parents[2]


def _accepted(kind: str) -> set[str]:
    """The keys the kind's factory accepts, read from the factory's own table."""
    if kind == "mixing_tank":
        from process_models.mixing.mixing_tank import option_keys

        return set(option_keys())
    if kind == "crystallizer":
        from process_models.crystallization.crystallizer import _OPTION_KEYS

        return set(_OPTION_KEYS)
    if kind == "chromatography_column":
        from process_models.chromatography.column import _MODEL_KEYS

        return set(_MODEL_KEYS)
    if kind == "axial_dispersion":
        import inspect

        from process_models.mixing.rtd import axial_dispersion_model

        return set(inspect.signature(axial_dispersion_model).parameters)
    raise AssertionError(f"add the accepted keys of the new kind {kind!r} to this test")


@pytest.mark.parametrize("kind", sorted(UNIT_KINDS))
def test_each_kind_declares_exactly_the_keys_its_model_accepts(kind: str):
    declared = [k.key for k in model_keys(kind)]
    assert len(declared) == len(set(declared)), "a key declared twice"
    assert set(declared) == _accepted(kind)
    assert all(k.description and k.default for k in model_keys(kind))


def test_mixing_tank_defaults_and_units_come_from_its_declared_parameters():
    from process_models.registry import model_for_kind

    params = {p.name: p for p in model_for_kind("mixing_tank", {}).parameters}
    keys = {k.key: k for k in model_keys("mixing_tank")}
    assert keys["tank_cross_section_m2"].unit == params["tank_cross_section"].unit == "m2"
    assert float(keys["jacket_time_constant_s"].default) == params["jacket_time_constant"].value


def test_models_describe_prints_the_reference_of_a_kind(capsys: pytest.CaptureFixture[str]):
    assert linetwin(["models", "describe", "crystallizer"]) == 0
    out = capsys.readouterr().out
    assert out == describe_kind("crystallizer")
    assert "| `volume_m3` | m3 |" in out and "`growth_rate_constant`" in out
    assert linetwin(["models", "describe", "reactor"]) == 2
    assert "unknown model kind 'reactor'" in capsys.readouterr().err


def test_generated_model_key_reference_is_current():
    doc = REPO / "docs" / "plant" / "model-keys.md"
    assert doc.read_text(encoding="utf-8") == reference(), \
        "docs/plant/model-keys.md is not current: run python tools/gen_model_keys.py"
