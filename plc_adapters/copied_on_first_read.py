"""A table whose entries are copied from a shared snapshot the first time they are read (issue 14: server start-up).

Every asyncua server of a process holds the same standard address space: 6,174 nodes, ~480,000 Python objects.
``asyncua_seam.init_server`` used to give each server after the second a whole unpickled copy of it (~0.3–0.5 CPU s
a server, most of a server's start-up), although a server reads only a few dozen of those nodes in its life (27 at
init, ~60 for a pilot twin's start-up): the Server object and its status, the types its own nodes are instances of,
the reference types a browse walks.

:class:`CopiedOnFirstRead` is a ``dict`` that starts empty beside a table of pickled entries (one ``bytes`` per key,
the key and its value pickled together, shared by every copy: bytes cannot change). Reading a key that is still
pickled unpickles that one entry, stores it under its own copy of the key, and from then on the entry is the
table's own, as in a plain dict; an entry written or deleted before it was read replaces or removes the pickled
one. Keys, length, iteration and membership cover both kinds of entries, so the table answers every question a
dict answers, with the same result as a dict holding a whole copy would (the keys of entries not read yet are the
snapshot's, shared and never changed). Each copy's entries are independent objects: nothing one table changes is
seen by another.

Reads of entries already copied are plain ``dict`` look-ups in C (``__getitem__`` is not overridden; a miss calls
:meth:`__missing__`); ``get``, ``in``, writes and deletes are one Python call each. Copying an entry and writing one
hold the table's lock, so two threads reading the same pickled entry get the same object.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator, KeysView, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_ABSENT: Any = object()


def pickled_entries(table: Mapping[K, Any]) -> dict[K, bytes]:
    """Each entry of ``table`` — its key and value — pickled on its own (an entry unpickled shares no object with
    another, nor with the snapshot's keys)."""
    return {key: pickle.dumps((key, value), pickle.HIGHEST_PROTOCOL) for key, value in table.items()}


def _unpickled(blob: bytes) -> tuple[Any, Any]:
    return pickle.loads(blob)  # type: ignore[no-any-return]  # noqa: S301 - pickled by pickled_entries in this process


class CopiedOnFirstRead(dict[K, V], Generic[K, V]):
    """A dict over ``pickled`` (key → ``pickle.dumps((key, value))``, from :func:`pickled_entries`; shared, never
    changed): an entry is unpickled into this table, under its own copy of the key, when first read. See the module
    docstring."""

    __slots__ = ("_lock", "_pickled")

    def __init__(self, pickled: Mapping[K, bytes]) -> None:
        super().__init__()
        self._pickled: dict[K, bytes] = dict(pickled)
        """Entries not read yet (this table's own dict of the shared bytes: removing one changes no other table)."""
        self._lock = threading.Lock()

    @property
    def copied(self) -> int:
        """Entries held as objects (read or written so far)."""
        return dict.__len__(self)

    @property
    def still_pickled(self) -> int:
        """Entries never read nor written."""
        return len(self._pickled)

    def __missing__(self, key: K) -> V:
        with self._lock:
            value = dict.get(self, key, _ABSENT)
            if value is not _ABSENT:  # another thread copied it meanwhile
                return value  # type: ignore[no-any-return]
            blob = self._pickled.pop(key)  # KeyError: no such entry, as a dict says
            own_key, value = _unpickled(blob)
            dict.__setitem__(self, own_key, value)  # under its own copy of the key: the table's entries are its own
            return value  # type: ignore[no-any-return]

    def get(self, key: K, default: Any = None) -> Any:  # type: ignore[override]
        value = dict.get(self, key, _ABSENT)
        if value is not _ABSENT:
            return value
        if key not in self._pickled:
            return default
        try:
            return self[key]
        except KeyError:  # deleted by another thread meanwhile
            return default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._pickled

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            dict.__setitem__(self, key, value)
            self._pickled.pop(key, None)

    def __delitem__(self, key: K) -> None:
        with self._lock:
            if dict.__contains__(self, key):
                dict.__delitem__(self, key)
            else:
                del self._pickled[key]  # KeyError: no such entry

    def pop(self, key: K, default: Any = _ABSENT) -> Any:  # type: ignore[override]
        if key in self:
            with self._lock:
                if dict.__contains__(self, key):
                    return dict.pop(self, key)
                blob = self._pickled.pop(key, None)
            if blob is not None:
                return _unpickled(blob)[1]
        if default is _ABSENT:
            raise KeyError(key)
        return default

    def setdefault(self, key: K, default: Any = None) -> Any:  # type: ignore[override]
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            self[key] = default
            return default
        return value

    def update(self, *others: Any, **entries: Any) -> None:  # type: ignore[override]
        for key, value in dict(*others, **entries).items():
            self[key] = value

    def clear(self) -> None:
        with self._lock:
            dict.clear(self)
            self._pickled.clear()

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._pickled)

    def __iter__(self) -> Iterator[K]:
        # a list, not a live view: a read while iterating moves an entry from one table to the other
        return iter([*dict.keys(self), *self._pickled])

    def keys(self) -> KeysView[K]:  # type: ignore[override]
        return KeysView(self)

    def copy_all(self) -> None:
        """Unpickle every entry still pickled (what ``values()``, ``items()``, ``popitem()``, equality and pickling
        of the table need)."""
        for key in list(self._pickled):
            self.get(key)

    def values(self) -> Any:
        self.copy_all()
        return dict.values(self)

    def items(self) -> Any:
        self.copy_all()
        return dict.items(self)

    def popitem(self) -> tuple[K, V]:
        self.copy_all()
        with self._lock:
            return dict.popitem(self)

    def copy(self) -> dict[K, V]:
        """A plain dict with every entry (all unpickled)."""
        self.copy_all()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self.copy_all()
        if isinstance(other, CopiedOnFirstRead):
            other.copy_all()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:  # dict's own would compare the copied entries only
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __or__(self, other: Any) -> dict[K, V]:
        return self.copy() | dict(other)

    def __ior__(self, other: Any) -> CopiedOnFirstRead[K, V]:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (self.copy(),)

    def __repr__(self) -> str:
        return f"CopiedOnFirstRead({self.copied} copied, {self.still_pickled} still pickled)"

