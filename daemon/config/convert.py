"""TOML tables to frozen msgspec Structs, field by field, recording every mistake instead of stopping.

The struct's own field types drive the conversion: plain types go through ``msgspec.convert`` (strict:
a TOML ``true`` is no integer, ``"8"`` no number), ``Annotated`` markers add what TOML cannot say
(durations, sizes, paths relative to the config file, alternative spellings), and ``Secret`` fields
read one of ``key``, ``key_env``, ``key_file`` or ``key_credential``. A struct's ``__post_init__``
checks values that depend on each other; its ``ValueError`` is reported at the table's position.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import msgspec

from daemon.config.secrets import resolve_secret
from daemon.errors import ConfigError
from daemon.util.fields import Alias, FieldError, Parse, Relative
from daemon.util.secret import Secret
from daemon.util.tomlpos import KeyPath, Locator, close_match

S = TypeVar("S", bound=msgspec.Struct)
SECRET_SUFFIXES = ("", "_env", "_file", "_credential")
_MSGSPEC_AT = re.compile(r" - at `\$(.*)`$")
_PATH_PART = re.compile(r"\[(\d+)\]|\.([^.\[]+)")


class _Fail:
    """A value that could not be converted (its problem is already recorded)."""


FAIL = _Fail()
_MISSING = object()  # a key not given: the struct's default applies


@dataclass(slots=True)
class Problems:
    """Every mistake of one load, with file:line:column, raised together as one ConfigError."""

    texts: dict[Path, str] = field(default_factory=dict)
    found: list[tuple[Path, KeyPath, str]] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)  # already placed (a file's syntax error)
    _locators: dict[Path, Locator] = field(default_factory=dict)

    def add(self, file: Path, where: KeyPath, message: str) -> None:
        self.found.append((file, where, message))

    def error(self) -> ConfigError | None:
        if not self.found and not self.errors:
            return None
        errors = list(self.errors)
        for file, where, message in self.found:
            line: int | None = None
            column: int | None = None
            if file in self.texts:
                locator = self._locators.get(file) or self._locators.setdefault(file, Locator(self.texts[file]))
                line, column = locator.find(where)
            errors.append(ConfigError(message, path=file, key=key_text(where) or None, line=line, column=column))
        errors.sort(key=lambda e: (e.path or "", e.line or 0, e.column or 0))
        return errors[0] if len(errors) == 1 else ConfigError.combine(errors)


def key_text(where: KeyPath) -> str:
    """("feeds", 2, "interval") -> "feeds[2].interval"."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def show(value: Any) -> str:
    """A found value as an error message shows it."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"


@dataclass(slots=True)
class Reader:
    """Converts the tables of one file; records problems instead of raising them."""

    file: Path
    problems: Problems
    secrets: bool = True  # False: secret keys are checked, their values not read (operator commands)
    unresolved: bool = False  # set when a secret of the table being built was left unread

    def problem(self, where: KeyPath, message: str) -> _Fail:
        self.problems.add(self.file, where, message)
        return FAIL

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.file.parent / path).resolve()

    def table(
        self,
        cls: type[S],
        data: Any,
        where: KeyPath,
        *,
        extra_keys: Sequence[str] = (),
        check_unknown: bool = True,
    ) -> S | _Fail | None:
        """``data`` as a ``cls``; unknown keys (besides ``extra_keys``) are mistakes, with a close match.

        None when a secret was left unread (``secrets=False``) and the struct's checks need its value.
        """
        if not isinstance(data, dict):
            return self.problem(where, f"expected a table, got {show(data)}")
        values: dict[str, Any] = {}
        known: list[str] = list(extra_keys)
        ok = True
        hints = _hints(cls)
        for info in _fields(cls):
            names, value = self._field(info, hints[info.name], data, where)
            known += names
            if value is FAIL:
                ok = False
            elif value is not _MISSING:
                values[info.name] = value
        if check_unknown:
            for key in data:
                if key not in known:
                    self.problem((*where, key), f"unknown key{close_match(key, known)}")
                    ok = False
        if not ok:
            return FAIL
        try:
            return cls(**values)
        except (ValueError, TypeError) as exc:
            if self.unresolved:
                return None  # checks that need the unread secret's value wait for the daemon's own load
            if isinstance(exc, FieldError):
                return self.problem((*where, exc.key), str(exc))
            return self.problem(where, str(exc))

    def _field(
        self, info: msgspec.structs.FieldInfo, tp: Any, data: Mapping[str, Any], where: KeyPath
    ) -> tuple[list[str], Any]:
        """(the TOML keys this field reads, its value or FAIL or _MISSING when absent)."""
        key = info.encode_name
        if _is_secret(tp):
            secret = self._secret(data, where, key, required=info.required)
            return [key + s for s in SECRET_SUFFIXES], _MISSING if secret is None else secret
        names = [key, *_aliases(tp)]
        given = [n for n in names if n in data]
        if len(given) > 1:
            return names, self.problem((*where, given[1]), f"give either {given[0]!r} or {given[1]!r}, not both")
        if not given:
            return names, self.problem((*where, key), "required value is missing") if info.required else _MISSING
        return names, self.value(tp, data[given[0]], (*where, given[0]))

    def value(self, tp: Any, value: Any, where: KeyPath) -> Any:
        """One TOML value as ``tp``, or FAIL."""
        base, marks = _unwrap(tp)
        for mark in marks:
            if isinstance(mark, Parse):
                try:
                    return mark.fn(value)
                except ValueError as exc:
                    return self.problem(where, str(exc))
            if isinstance(mark, Relative):
                if not isinstance(value, str):
                    return self.problem(where, f"expected a path, got {show(value)}")
                path = self.resolve(value)
                return str(path) if mark.as_str else path
        struct = _struct_of(base)
        if struct is not None:
            return self.table(struct, value, where)
        items = _struct_items(base)
        if items is not None:
            if not isinstance(value, list):
                return self.problem(where, f"expected an array of [[{key_text(where)}]] tables, got {show(value)}")
            converted = [self.table(items, v, (*where, i)) for i, v in enumerate(value)]
            return FAIL if any(c is FAIL for c in converted) else tuple(converted)
        return self._leaf(tp, base, marks, value, where)

    def _leaf(self, tp: Any, base: Any, marks: Sequence[Any], value: Any, where: KeyPath) -> Any:
        try:
            out = msgspec.convert(value, base, strict=True)
        except msgspec.ValidationError as exc:
            sub, element = _at(str(exc), value)
            return self.problem((*where, *sub), f"expected {describe(_element_type(base, sub))}, got {show(element)}")
        if any(isinstance(m, msgspec.Meta) for m in marks):
            try:
                msgspec.convert(value, tp, strict=True)
            except msgspec.ValidationError:
                return self.problem(where, f"expected {describe(tp)}, got {value!r}")
        return out

    def _secret(self, data: Mapping[str, Any], where: KeyPath, key: str, *, required: bool) -> Secret | _Fail | None:
        sources: dict[str, str | None] = {}
        for suffix in SECRET_SUFFIXES:
            raw = data.get(key + suffix)
            if raw is not None and not isinstance(raw, str):
                return self.problem((*where, key + suffix), f"expected a string, got {show(raw)}")
            sources[suffix] = raw
        if all(v is None for v in sources.values()):
            if required:
                others = " / ".join(key + s for s in SECRET_SUFFIXES[1:])
                return self.problem((*where, key), f"required (or {others})")
            return None
        if not self.secrets and sources[""] is None:
            # Operator commands (status, check, db backup) run without the service's credentials. A value
            # written in the file itself needs none: it is used, so `check` validates it (a URL's port, host).
            self.unresolved = True
            return Secret("")
        file = sources["_file"]
        try:
            return resolve_secret(
                value=sources[""],
                env=sources["_env"],
                file=self.resolve(file) if file else None,
                credential=sources["_credential"],
                key=key_text((*where, key)),
            )
        except ConfigError as exc:
            given = next(key + s for s in SECRET_SUFFIXES if sources[s] is not None)
            return self.problem((*where, given), exc.reason)


def describe(tp: Any) -> str:
    """What a type accepts, in the words of an error message."""
    base, marks = _unwrap(tp)
    bounds = []
    for mark in marks:
        if isinstance(mark, msgspec.Meta):
            bounds += [f">= {mark.ge}"] if mark.ge is not None else []
            bounds += [f"<= {mark.le}"] if mark.le is not None else []
    text = _describe_base(base)
    return f"{text} {' and '.join(bounds)}" if bounds else text


def _describe_base(base: Any) -> str:
    names = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}
    if base in names:
        return names[base]
    origin, args = get_origin(base), get_args(base)
    if origin is Literal:
        shown = [f'"{a}"' for a in args]
        return " or ".join(shown) if len(shown) < 3 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    if origin in (tuple, list) and args and args[0] is str:
        return "a list of strings"
    if origin in (dict, Mapping) and len(args) == 2 and args[1] is str:
        return "a table of strings"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe_base(a) for a in args if a is not type(None))
    return getattr(base, "__name__", str(base))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Cached: evaluating the annotations is the cost of a table, and a config has thousands of [[feeds]].
    return typing.get_type_hints(cls, include_extras=True)


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    return msgspec.structs.fields(cls)


_UNWRAPPED: dict[Any, tuple[Any, tuple[Any, ...]]] = {}


def _unwrap(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """(type without Annotated and without None, markers); TOML has no null, so ``X | None`` is X."""
    # Cached: each field of each of a config's thousands of [[feeds]] asks this of the same few types.
    try:
        return _UNWRAPPED[tp]
    except KeyError:
        found = _UNWRAPPED[tp] = _unwrap_type(tp)
        return found
    except TypeError:  # an unhashable marker
        return _unwrap_type(tp)


def _unwrap_type(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    marks: tuple[Any, ...] = ()
    if get_origin(tp) is Annotated:
        tp, *rest = get_args(tp)
        marks = tuple(rest)
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])[0], marks + _unwrap(args[0])[1]
    return tp, marks


def _is_secret(tp: Any) -> bool:
    base, _ = _unwrap(tp)
    return base is Secret or (get_origin(base) in (Union, types.UnionType) and Secret in get_args(base))


def _aliases(tp: Any) -> tuple[str, ...]:
    return next((m.names for m in _unwrap(tp)[1] if isinstance(m, Alias)), ())


def _struct_of(tp: Any) -> type[msgspec.Struct] | None:
    return tp if isinstance(tp, type) and issubclass(tp, msgspec.Struct) else None


def _struct_items(tp: Any) -> type[msgspec.Struct] | None:
    """The item struct of ``tuple[SomeStruct, ...]``."""
    if get_origin(tp) is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return _struct_of(args[0])
    return None


def _at(message: str, value: Any) -> tuple[KeyPath, Any]:
    """The key path inside a value that msgspec's error names (``- at `$[1]```), and the value there."""
    m = _MSGSPEC_AT.search(message)
    if not m:
        return (), value
    path: list[str | int] = []
    element = value
    for index, name in _PATH_PART.findall(m.group(1)):
        part: str | int = int(index) if index else name
        path.append(part)
        try:
            element = element[part]
        except (KeyError, IndexError, TypeError):
            break
    return tuple(path), element


def _element_type(base: Any, sub: KeyPath) -> Any:
    """The type of the element at ``sub`` inside ``base`` (a list's items, a table's values)."""
    for _ in sub:
        args = get_args(base)
        if not args:
            break
        base = args[-1] if get_origin(base) in (dict, Mapping) else args[0]
    return base
