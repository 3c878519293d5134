"""The API as Northflank's official Python client (PyPI `northflank`, test-only) declares it:
each GET endpoint's path templates, required permission, and the type its `call()` returns.
Shares nothing with the exporter or the simulator, which it exists to check."""

from __future__ import annotations

import importlib
import pkgutil
import re
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import northflank.endpoints
from northflank.endpoint import ApiEndpoint
from pydantic import TypeAdapter, ValidationError


@dataclass(frozen=True)
class Declared:
    name: str  # the client's endpoint class
    templates: tuple[str, ...]
    permission: str
    data_type: Any  # what call() returns as the answer's `data`
    _adapter: list[TypeAdapter[Any]] = field(default_factory=list, compare=False)

    def problems(self, data: Any) -> list[str]:
        """How `data` differs from the declared type: one line per field ([] when it fits).
        Strict: a number is not a string, nor a string a number. Keys the type does not
        declare are allowed, as the client allows them."""
        if not self._adapter:
            self._adapter.append(TypeAdapter(self.data_type))
        try:
            self._adapter[0].validate_python(data, strict=True)
        except ValidationError as error:
            return [
                f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
                for problem in error.errors()
            ]
        return []


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "/?$")


@cache
def declared_gets() -> tuple[tuple[re.Pattern[str], Declared], ...]:
    """Every GET endpoint of the client, as (path pattern, what it declares)."""
    found = []
    for module_info in pkgutil.walk_packages(
        northflank.endpoints.__path__, northflank.endpoints.__name__ + "."
    ):
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if not (
                isinstance(value, type)
                and issubclass(value, ApiEndpoint)
                and value.__module__ == module.__name__
                and value.method == "get"
            ):
                continue
            returned = typing.get_type_hints(value.call, globalns=vars(module))["return"]
            (data_type,) = typing.get_args(returned)
            declared = Declared(
                value.__name__, tuple(value.path_templates), value.required_permissions, data_type
            )
            found.extend((_pattern(template), declared) for template in value.path_templates)
    # the longest template first: /projects/{p}/addons before /projects/{p}
    found.sort(key=lambda pair: -len(pair[0].pattern))
    return tuple(found)


def declared_for(path: str) -> Declared | None:
    """What the client declares for GET `path` (no query), or None: an endpoint it lacks."""
    for pattern, declared in declared_gets():
        if pattern.match(path):
            return declared
    return None
