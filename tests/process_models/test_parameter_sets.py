"""Parameter sets are immutable, named by their content, stored once, and a tampered file is refused."""

from __future__ import annotations

import json
import stat
from dataclasses import replace

import pytest

from process_models.parameter_sets import (
    NOMINAL_CREATED,
    ParameterSet,
    ParameterSetError,
    ParameterSetStore,
    declaration_hash,
    diff_parameter_sets,
    nominal_parameter_set,
    unit_model_declaration,
)

DECLARATION = unit_model_declaration("crystallizer", {"growth_rate_constant": 1.2e-7, "bins": 120})


def fitted(parent: str | None = None, growth: float = 1.5e-7) -> ParameterSet:
    return ParameterSet(
        unit="crystallizer_1", model="crystallizer", declaration_hash=declaration_hash(DECLARATION),
        values={"growth_rate_constant": growth, "nucleation_rate_constant": 3.0e8, "solubility_offset": 0.0},
        covariance=((1e-18, 2e-12), (2e-12, 1e12)), names=("growth_rate_constant", "nucleation_rate_constant"),
        parent=parent, batch_ids=("B-0001", "B-0002"),
        data_window=("2026-12-01T08:00:00+00:00", "2026-12-01T12:00:00+00:00"),
        report={"method": "wls", "cost": 12.5, "nested": {"list": [1, 2.5]}},
        created="2026-12-06T23:00:00.123456+00:00",
    )


def test_id_is_a_stable_content_hash_that_changes_with_any_field():
    a, b = fitted(), fitted()
    assert a.id == b.id and len(a.id) == 16 and int(a.id, 16) >= 0
    assert fitted(growth=1.6e-7).id != a.id
    assert replace(a, batch_ids=("B-0001",)).id != a.id
    assert replace(a, report={"method": "ml"}).id != a.id
    assert replace(a, parent=a.id).id != a.id


def test_a_set_cannot_be_changed_after_creation():
    ps = fitted()
    with pytest.raises(AttributeError):
        ps.unit = "other"                                     # type: ignore[misc]
    with pytest.raises(TypeError):
        ps.values["growth_rate_constant"] = 1.0               # type: ignore[index]
    with pytest.raises(TypeError):
        ps.report["nested"]["list"] = []                      # type: ignore[index]


def test_nominal_set_id_depends_only_on_declaration_and_values():
    a = nominal_parameter_set("crystallizer_1", "crystallizer", DECLARATION, {"growth_rate_constant": 1.2e-7})
    b = nominal_parameter_set("crystallizer_1", "crystallizer", DECLARATION, {"growth_rate_constant": 1.2e-7})
    assert a.id == b.id and a.created == NOMINAL_CREATED and a.parent is None and a.covariance is None
    other = unit_model_declaration("crystallizer", {"growth_rate_constant": 1.3e-7, "bins": 120})
    assert nominal_parameter_set("crystallizer_1", "crystallizer", other, {"growth_rate_constant": 1.2e-7}).id != a.id


@pytest.mark.parametrize(("change", "key"), [
    ({"values": {"growth_rate_constant": float("nan")}}, "values.growth_rate_constant"),
    ({"covariance": ((1.0,),)}, "covariance"),
    ({"names": ("not_a_value",), "covariance": ((1.0,),)}, "names"),
    ({"parent": "../../etc/passwd"}, "parent"),
    ({"created": "2026-12-06T23:00:00+01:00"}, "created"),
    ({"data_window": ("yesterday", "today")}, "data_window.start"),
    ({"report": {"x": float("inf")}}, "report"),
])
def test_malformed_sets_are_refused_naming_the_key(change, key):
    with pytest.raises(ParameterSetError, match=key.replace(".", r"\.")):
        replace(fitted(), **change)


def test_store_round_trip_write_once_and_permissions(tmp_path):
    store = ParameterSetStore(tmp_path / "parameter_sets")
    parent = nominal_parameter_set("crystallizer_1", "crystallizer", DECLARATION, {"growth_rate_constant": 1.2e-7})
    child = fitted(parent=store.put(parent))
    set_id = store.put(child)
    assert set_id == child.id
    path = tmp_path / "parameter_sets" / f"{set_id}.json"
    before = path.stat().st_mtime_ns
    assert store.put(fitted(parent=parent.id)) == set_id                       # same content: a no-op
    assert path.stat().st_mtime_ns == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    back = store.get(set_id)
    assert back == child and back.id == set_id and back.covariance == child.covariance
    assert [s.id for s in store.list()] == [parent.id, child.id]              # oldest first
    assert store.list("other_unit") == []
    assert store.resolve(set_id[:6]) == set_id
    assert [r["parameter"] for r in diff_parameter_sets(parent, child)] == [
        "growth_rate_constant", "nucleation_rate_constant", "solubility_offset"]
    assert not list(path.parent.glob("*.tmp"))


def test_tampered_file_is_refused(tmp_path):
    store = ParameterSetStore(tmp_path)
    set_id = store.put(fitted())
    path = tmp_path / f"{set_id}.json"
    raw = json.loads(path.read_text())
    raw["values"]["growth_rate_constant"] = 9.9e-7
    path.write_text(json.dumps(raw))
    with pytest.raises(ParameterSetError, match=f"{set_id}.*altered"):
        store.get(set_id)
    with pytest.raises(ParameterSetError, match="altered"):
        store.put(fitted())                                   # the write-once file is not silently kept
    with pytest.raises(ParameterSetError, match="altered"):
        store.list()


@pytest.mark.parametrize("bad_id", ["../x", "ABCDEF0123456789", "12", ""])
def test_bad_ids_are_refused(tmp_path, bad_id):
    with pytest.raises(ParameterSetError, match="hex digits"):
        ParameterSetStore(tmp_path).get(bad_id)


def test_unknown_and_ambiguous_ids(tmp_path):
    store = ParameterSetStore(tmp_path)
    with pytest.raises(ParameterSetError, match="not in the store"):
        store.get("0123456789abcdef")
    store.put(fitted())
    with pytest.raises(ParameterSetError, match="not in the store"):
        store.resolve("ffff" if not store.ids()[0].startswith("ffff") else "0000")
