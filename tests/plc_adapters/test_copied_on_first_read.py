"""CopiedOnFirstRead: a dict over shared pickled entries, each unpickled when first read (the standard address
space of every asyncua server after a process's second: plc_adapters/copied_on_first_read.py)."""

from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass

import pytest

from plc_adapters.copied_on_first_read import CopiedOnFirstRead, pickled_entries

SOURCE = {f"node{i}": {"value": [i, i * 2], "name": f"n{i}"} for i in range(50)}


@pytest.fixture
def shared() -> dict[str, bytes]:
    return pickled_entries(SOURCE)


def test_it_answers_every_question_a_dict_with_a_whole_copy_answers(shared: dict[str, bytes]):
    table: CopiedOnFirstRead[str, dict] = CopiedOnFirstRead(shared)
    assert (table.copied, table.still_pickled) == (0, 50)
    assert len(table) == 50 and "node7" in table and "nodeX" not in table
    assert set(table.keys()) == set(SOURCE) and sorted(table) == sorted(SOURCE)
    assert (table.copied, table.still_pickled) == (0, 50)  # keys, length and membership copy nothing
    assert table["node7"] == SOURCE["node7"] and table.get("node8") == SOURCE["node8"]
    assert table.get("nodeX") is None and table.get("nodeX", 3) == 3
    with pytest.raises(KeyError, match="nodeX"):
        table["nodeX"]
    assert (table.copied, table.still_pickled) == (2, 48)
    assert len(table) == 50 and set(table.keys()) == set(SOURCE)
    assert not table != SOURCE and not SOURCE != CopiedOnFirstRead(shared)  # both ways, before any entry is read
    assert table == SOURCE and dict(table.items()) == SOURCE  # equality and items copy every entry
    assert (table.copied, table.still_pickled) == (50, 0)
    assert pickle.loads(pickle.dumps(table)) == SOURCE


def test_a_read_entry_is_the_tables_own_object_and_changes_stay_in_that_table(shared: dict[str, bytes]):
    first: CopiedOnFirstRead[str, dict] = CopiedOnFirstRead(shared)
    second: CopiedOnFirstRead[str, dict] = CopiedOnFirstRead(shared)
    entry = first["node3"]
    assert first["node3"] is entry and first.get("node3") is entry  # copied once, then a plain dict entry
    entry["value"].append(99)
    assert first["node3"]["value"] == [3, 6, 99]
    assert second["node3"]["value"] == [3, 6] and second["node3"] is not entry
    assert CopiedOnFirstRead(shared)["node3"]["value"] == [3, 6]  # the shared bytes never change


def test_writes_and_deletes_replace_or_remove_the_pickled_entry(shared: dict[str, bytes]):
    table: CopiedOnFirstRead[str, object] = CopiedOnFirstRead(shared)
    table["node1"] = "written"
    table["new"] = "added"
    del table["node2"]
    del table["node4"]
    table["node4"] = "again"
    assert table["node1"] == "written" and table["new"] == "added" and table["node4"] == "again"
    assert "node2" not in table and table.get("node2") is None and len(table) == 50
    with pytest.raises(KeyError):
        del table["node2"]
    assert table.pop("node5") == SOURCE["node5"] and "node5" not in table
    assert table.pop("node5", "gone") == "gone"
    assert table.setdefault("node6", "x") == SOURCE["node6"] and table.setdefault("other", "x") == "x"
    table |= {"node9": 9}
    table.update(node10=10)
    assert table["node9"] == 9 and table["node10"] == 10 and len(table) == 50
    assert sorted(table) == sorted({*SOURCE, "new", "other"} - {"node2", "node5"})
    assert (CopiedOnFirstRead(shared) | {"x": 1}) == {**SOURCE, "x": 1}
    drained: CopiedOnFirstRead[str, object] = CopiedOnFirstRead(shared)
    assert dict(drained.popitem() for _ in range(50)) == SOURCE and len(drained) == 0
    table.clear()
    assert len(table) == 0 and list(table) == [] and "node11" not in table


def test_threads_reading_one_pickled_entry_get_the_same_object(shared: dict[str, bytes]):
    table: CopiedOnFirstRead[str, dict] = CopiedOnFirstRead(shared)
    start = threading.Barrier(8)
    got: list[list[object]] = [[] for _ in range(8)]

    def read(mine: list[object]) -> None:
        start.wait()
        mine.extend(table[f"node{i}"] for i in range(50))

    threads = [threading.Thread(target=read, args=(mine,)) for mine in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(mine) == 50 and all(mine[i] is table[f"node{i}"] for i in range(50)) for mine in got)
    assert (table.copied, table.still_pickled) == (50, 0)


def test_iterating_while_entries_are_read_sees_each_key_once(shared: dict[str, bytes]):
    table: CopiedOnFirstRead[str, dict] = CopiedOnFirstRead(shared)
    seen = []
    for key in table:
        seen.append(key)
        table[key]  # moves the entry from the pickled table to the dict while iterating
    assert sorted(seen) == sorted(SOURCE)


@dataclass(unsafe_hash=True)
class _NodeKey:
    """A key object that could be changed (as asyncua's NodeId could): a copied entry must not share it."""

    number: int


def test_a_read_entry_is_kept_under_the_tables_own_copy_of_its_key():
    keys = [_NodeKey(i) for i in range(3)]
    shared = pickled_entries({k: [k.number] for k in keys})
    first: CopiedOnFirstRead[_NodeKey, list[int]] = CopiedOnFirstRead(shared)
    second: CopiedOnFirstRead[_NodeKey, list[int]] = CopiedOnFirstRead(shared)
    assert first[_NodeKey(1)] == [1] and second[_NodeKey(1)] == [1]
    own_first = next(k for k in dict.keys(first))
    own_second = next(k for k in dict.keys(second))
    assert own_first == own_second == keys[1]
    assert own_first is not own_second and own_first is not keys[1] and own_second is not keys[1]
