"""Name -> spec registries that remember which plugin gave each name."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from recframe.errors import DuplicateNameError, UnknownNameError, unknown_name_message
from recframe.plugin.lazyref import resolve_spec

S = TypeVar("S")


@dataclass(frozen=True)
class Entry(Generic[S]):
    """One registered spec and the plugin that registered it."""

    spec: S
    plugin: str


class Registry(Generic[S]):
    """Specs of one kind (models, metrics, ...) keyed by name."""

    def __init__(self, kind: str, spec_type: type) -> None:
        self.kind = kind
        self.spec_type = spec_type
        self._entries: dict[str, Entry[S]] = {}
        self._resolved: dict[str, S] = {}

    def add(self, spec: S, plugin: str) -> None:
        if not isinstance(spec, self.spec_type):
            raise TypeError(
                f"plugin {plugin!r} registered a {type(spec).__name__} as a {self.kind}; "
                f"expected {self.spec_type.__name__}"
            )
        name = spec.name  # type: ignore[attr-defined]
        if name in self._entries:
            other = self._entries[name].plugin
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by plugin {other!r} and by "
                f"plugin {plugin!r}. Uninstall one of them or rename the {self.kind}."
            )
        self._entries[name] = Entry(spec, plugin)

    def get(self, name: str, key: str = "") -> S:
        """Return the spec called ``name``; unknown names list what exists.

        Fields registered as :func:`recframe.plugin.lazyref.lazy` references are imported
        here, the first time ``name`` is asked for (registering imports nothing heavy).
        """
        if name in self._resolved:
            return self._resolved[name]
        try:
            entry = self._entries[name]
        except KeyError:
            raise UnknownNameError(
                unknown_name_message(self.kind, name, self._entries, key)
            ) from None
        spec = self._resolved[name] = resolve_spec(entry.spec, entry.plugin)
        return spec

    def description(self, name: str) -> str:
        """The description of ``name`` without importing anything it refers to."""
        return str(getattr(self._entries[name].spec, "description", ""))

    def plugin_of(self, name: str) -> str:
        return self._entries[name].plugin

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


class Registrar(Generic[S]):
    """What a hook receives: adds specs on behalf of one named plugin."""

    def __init__(self, registry: Registry[S], plugin: str) -> None:
        self._registry = registry
        self.plugin = plugin

    def add(self, spec: S) -> None:
        self._registry.add(spec, self.plugin)
