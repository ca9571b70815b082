"""One registry type for every named choice of linsim.

Each choice the library offers by name (an output model of :func:`linsim.embed`, a kernel, a
spectrum, a dataset, an architecture, an optimizer, a CLI subcommand, ...) lives in a
:class:`Registry`: a mapping from names to entries that

* checks what is registered (the entry's type, an optional per-registry check, and, for
  entries that carry their own name, that the two names agree);
* refuses to register a name twice unless ``replace=True`` is passed;
* answers an unknown name with :class:`UnknownNameError`, which names the registry and lists
  the names it holds (it is both a ``KeyError`` and a ``ValueError``, so code written against
  either keeps working);
* keeps registration order (``names()``, iteration) and offers a read-only live view.

Assigning ``registry[name] = entry`` is the explicit overwrite, as for a ``dict`` (it runs the
same checks as :meth:`Registry.register` with ``replace=True``), and ``del registry[name]``
removes an entry; both exist so that tests can patch a registry (``monkeypatch.setitem``).

Examples
--------
>>> colours = Registry("colour", type=str)
>>> colours.register("red", "#ff0000")
'#ff0000'
>>> @colours.register("green")
... def _green():
...     return "#00ff00"
Traceback (most recent call last):
...
TypeError: colour registry takes str entries; got function for 'green'
>>> colours.register("red", "#f00")
Traceback (most recent call last):
...
ValueError: colour 'red' is already registered; pass replace=True to overwrite it
>>> colours["blue"]
Traceback (most recent call last):
...
linsim.registry.UnknownNameError: unknown colour 'blue'; valid: ['red']
>>> "red" in colours, colours.names(), len(colours)
(True, ('red',), 1)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, MutableMapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")

_MISSING = object()


class UnknownNameError(KeyError, ValueError):
    """A name that a :class:`Registry` does not hold.

    Subclasses both ``KeyError`` (what a mapping raises) and ``ValueError`` (what a bad
    argument raises), so ``except KeyError`` and ``except ValueError`` both catch it.  The
    message is printed as is (not quoted as ``KeyError`` messages usually are).

    Attributes
    ----------
    kind : str
        What the registry holds (``"kernel"``, ``"dataset"``, ...).
    name : hashable
        The name that was asked for.
    known : tuple
        The names the registry held, in registration order.

    Examples
    --------
    >>> err = UnknownNameError("unknown loss 'l1'; valid: ['mse']", kind="loss", name="l1", known=("mse",))
    >>> isinstance(err, KeyError) and isinstance(err, ValueError), str(err)
    (True, "unknown loss 'l1'; valid: ['mse']")
    """

    def __init__(self, message: str, *, kind: str, name: Any, known: tuple):
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self):  # picklable (errors travel back from worker processes)
        return _rebuild_unknown_name_error, (self.args[0], self.kind, self.name, self.known)


def _rebuild_unknown_name_error(message, kind, name, known) -> UnknownNameError:
    return UnknownNameError(message, kind=kind, name=name, known=known)


def _sorted_names(names: tuple) -> list:
    try:
        return sorted(names)
    except TypeError:  # names of mixed, unorderable types: keep registration order
        return list(names)


class Registry(MutableMapping, Generic[T]):
    """Named entries of one kind, registered once each, looked up with a clear error.

    Parameters
    ----------
    kind : str
        What the entries are, in words (``"kernel"``, ``"output model"``); used in every
        message.
    type : type or tuple of types, optional
        Entries must be instances of it (``TypeError`` otherwise).  None: any object.
    callable_only : bool
        Entries must be callable (``TypeError`` otherwise).
    key : callable, optional
        ``key(entry) -> name`` for entries that carry their own name (e.g.
        ``operator.attrgetter("name")``): enables :meth:`add`, and every registration checks
        that the name it is given equals the entry's own.
    check : callable, optional
        ``check(name, entry)``, run on every registration after the built-in checks; it raises
        (``ValueError``/``TypeError``) to refuse an entry.
    name_type : type or tuple of types
        Type of the names (``str``, the default, must also be non-empty).
    unknown : str
        Start of the message for an unknown name, a :meth:`str.format` template with fields
        ``kind`` and ``name`` (e.g. ``"no runner for {name[0]!r}"``); ``"; valid: [...]"``
        (the sorted names) is appended.
    label : str
        How messages name one entry, a template like ``unknown`` (default ``"{kind} {name!r}"``;
        e.g. ``"a runner for model={name[0]!r}, optimizer={name[1]!r}"``).
    entries : mapping or iterable of (name, entry) pairs, optional
        Initial entries, registered in order with the same checks.

    Examples
    --------
    >>> import operator
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Shape:
    ...     name: str
    ...     sides: int
    >>> shapes = Registry("shape", type=Shape, key=operator.attrgetter("name"))
    >>> shapes.add(Shape("triangle", 3)).sides
    3
    >>> shapes.register("square", Shape("quad", 4))
    Traceback (most recent call last):
    ...
    ValueError: shape registered as 'square' carries the name 'quad'
    >>> shapes.view()["triangle"].sides
    3
    """

    def __init__(self, kind: str, *, type: type | tuple | None = None, callable_only: bool = False,
                 key: Callable[[T], Hashable] | None = None, check: Callable[[Hashable, T], None] | None = None,
                 name_type: type | tuple = str, unknown: str = "unknown {kind} {name!r}",
                 label: str = "{kind} {name!r}",
                 entries: Mapping | Iterable = ()):
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"Registry kind must be a non-empty string; got {kind!r}")
        self.kind = kind
        self._type = type
        self._callable_only = bool(callable_only)
        self._key = key
        self._check = check
        self._name_type = name_type
        self._unknown = unknown
        self._label = label
        self._entries: dict[Hashable, T] = {}
        items = entries.items() if isinstance(entries, Mapping) else entries
        for name, entry in items:
            self.register(name, entry)

    # ------------------------------------------------------------------ registration
    def _type_words(self) -> str:
        types = self._type if isinstance(self._type, tuple) else (self._type,)
        return " or ".join(t.__name__ for t in types)

    def _validate(self, name, entry) -> None:
        if not isinstance(name, self._name_type):
            want = getattr(self._name_type, "__name__", str(self._name_type))
            raise TypeError(f"{self.kind} names must be non-empty {want}; got {name!r}")
        if isinstance(name, str) and not name:
            raise ValueError(f"{self.kind} names must be non-empty str; got ''")
        if self._type is not None and not isinstance(entry, self._type):
            raise TypeError(f"{self.kind} registry takes {self._type_words()} entries; "
                            f"got {type(entry).__name__} for {name!r}")
        if self._callable_only and not callable(entry):
            raise TypeError(f"{self.kind} {name!r} must be callable; got {type(entry).__name__}")
        if self._key is not None and self._key(entry) != name:
            raise ValueError(f"{self.kind} registered as {name!r} carries the name {self._key(entry)!r}")
        if self._check is not None:
            self._check(name, entry)

    def register(self, name: Hashable, entry: T = _MISSING, *, replace: bool = False):
        """Register ``entry`` under ``name`` and return it; without ``entry``, a decorator.

        Parameters
        ----------
        name : str (or the registry's ``name_type``)
        entry : object, optional
            Omitted: ``register(name)`` returns a decorator that registers what it decorates
            (and returns it unchanged).
        replace : bool
            Overwrite an entry of the same name instead of refusing it.

        Returns
        -------
        The entry (or the decorator).

        Examples
        --------
        >>> losses = Registry("loss", callable_only=True)
        >>> @losses.register("l2")
        ... def l2(x):
        ...     return x * x
        >>> losses["l2"](3), losses.register("l2", abs, replace=True) is abs
        (9, True)
        """
        if entry is _MISSING:
            def decorator(obj: T) -> T:
                return self.register(name, obj, replace=replace)
            return decorator
        self._validate(name, entry)
        if not replace and name in self._entries:
            raise ValueError(f"{self._label.format(kind=self.kind, name=name)} is already registered; "
                             "pass replace=True to overwrite it")
        self._entries[name] = entry
        return entry

    def add(self, entry: T, *, replace: bool = False) -> T:
        """Register an entry that carries its own name (needs ``key``); returns it.

        Examples
        --------
        >>> names = Registry("word", type=str, key=str.lower)
        >>> names.add("abc"), names.names()
        ('abc', ('abc',))
        """
        if self._key is None:
            raise TypeError(f"{self.kind} registry has no key function; use register(name, entry)")
        if self._type is not None and not isinstance(entry, self._type):  # before key() reads it
            raise TypeError(f"{self.kind} registry takes {self._type_words()} entries; got {type(entry).__name__}")
        return self.register(self._key(entry), entry, replace=replace)

    def unregister(self, name: Hashable) -> T:
        """Remove and return the entry ``name`` (:class:`UnknownNameError` if absent).

        Examples
        --------
        >>> r = Registry("item", entries={"a": 1})
        >>> r.unregister("a"), "a" in r
        (1, False)
        """
        entry = self[name]
        del self._entries[name]
        return entry

    # ------------------------------------------------------------------ lookup
    def _unknown_error(self, name, what: str | None = None) -> UnknownNameError:
        known = tuple(self._entries)
        if what is None:
            message = (self._unknown.format(kind=self.kind, name=name)
                       + f"; valid: {_sorted_names(known)}")
        else:
            message = f"{what} must be one of {known}; got {name!r}"
        return UnknownNameError(message, kind=self.kind, name=name, known=known)

    def __getitem__(self, name: Hashable) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name is no name either
            raise self._unknown_error(name) from None

    def lookup(self, name: Hashable, *, what: str | None = None) -> T:
        """The entry ``name``; an unknown name raises :class:`UnknownNameError`.

        Parameters
        ----------
        name : hashable
        what : str, optional
            The argument or field the name came from; the message then reads
            ``"<what> must be one of (<names in registration order>); got <name>"``.
            None: the registry's own message (as ``registry[name]``).

        Examples
        --------
        >>> modes = Registry("mode", entries={"exact": 0, "sampled": 1})
        >>> modes.lookup("sampled"), modes.lookup("sampled", what="make_inputs mode")
        (1, 1)
        >>> modes.lookup("noisy", what="make_inputs mode")
        Traceback (most recent call last):
        ...
        linsim.registry.UnknownNameError: make_inputs mode must be one of ('exact', 'sampled'); got 'noisy'
        """
        if what is None:
            return self[name]
        if name not in self:
            raise self._unknown_error(name, what)
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:
            return False

    def names(self) -> tuple:
        """The registered names, in registration order.

        Examples
        --------
        >>> Registry("item", entries=[("b", 1), ("a", 2)]).names()
        ('b', 'a')
        """
        return tuple(self._entries)

    def view(self) -> Mapping:
        """A read-only, live view of the entries (``types.MappingProxyType``).

        Examples
        --------
        >>> r = Registry("item")
        >>> v = r.view()
        >>> _ = r.register("a", 1)
        >>> dict(v)
        {'a': 1}
        """
        return MappingProxyType(self._entries)

    def copy(self) -> Registry[T]:
        """An independent registry with the same checks and the same entries.

        Examples
        --------
        >>> r = Registry("item", entries={"a": 1})
        >>> c = r.copy()
        >>> _ = c.register("b", 2)
        >>> r.names(), c.names()
        (('a',), ('a', 'b'))
        """
        new = Registry(self.kind, type=self._type, callable_only=self._callable_only, key=self._key,
                       check=self._check, name_type=self._name_type, unknown=self._unknown, label=self._label)
        new._entries = dict(self._entries)
        return new

    # ------------------------------------------------------------------ mapping protocol
    def __setitem__(self, name: Hashable, entry: T) -> None:
        self.register(name, entry, replace=True)

    def __delitem__(self, name: Hashable) -> None:
        self.unregister(name)

    def __iter__(self) -> Iterator:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"
