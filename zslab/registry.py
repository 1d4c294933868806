"""A tiny name → factory registry, so that new models, datasets, losses or heads are one decorator away."""
from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, List, TypeVar

from .errors import check_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (usually factories). ``get`` fails with the list of valid names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._entries:
            raise KeyError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        check_choice(self.kind, name, self._entries)
        return self._entries[name]

    def names(self) -> List[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
