"""linetwin_lazy.lazy_exports: a package's public names are imported on first use, once."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest


def test_a_name_is_imported_on_first_use_and_kept_and_an_unknown_one_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "lazy_probe"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from linetwin_lazy import lazy_exports\n"
        "_EXPORTS = {'heavy_value': 'lazy_probe.heavy'}\n"
        "__all__ = sorted(_EXPORTS)\n"
        "__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)\n")
    (package / "heavy.py").write_text("heavy_value = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        probe = importlib.import_module("lazy_probe")
        assert "lazy_probe.heavy" not in sys.modules
        assert "heavy_value" in dir(probe) and probe.__all__ == ["heavy_value"]
        assert probe.heavy_value == 42
        assert "lazy_probe.heavy" in sys.modules and vars(probe)["heavy_value"] == 42
        with pytest.raises(AttributeError, match="module 'lazy_probe' has no attribute 'light_value'"):
            _ = probe.light_value
    finally:
        for name in ("lazy_probe", "lazy_probe.heavy"):
            sys.modules.pop(name, None)
