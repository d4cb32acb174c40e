"""``redact_keys``: values under sensitive keys masked, on the sender side.

A key is sensitive when one of its words is a listed name: the key is split
into words at ``_``, ``-``, ``.``, spaces and lowercase-to-uppercase steps
(``HTTP_AUTHORIZATION``, ``X-Api-Key``, ``apiKey``, ``db.password`` ->
``http authorization``, ``x api key``, ``api key``, ``db password``), and a
listed name (itself split the same way: ``api_key`` is ``api key``) must
appear as consecutive whole words. So ``access_token`` and ``Set-Cookie``
are masked, ``max_tokens`` and ``tokenizer`` are not. The verdict per key is
memoised: a record's keys repeat, so the usual cost is one dict lookup per
key.

Masked wherever they appear: top-level fields and, nested, inside mappings,
lists and tuples (up to :data:`MAX_DEPTH` levels and :data:`MAX_ITEMS`
items per container; beyond, a container is shipped as it is). The caller's
objects are never changed: a container with something to mask is copied.
Core fields (``message``, ``exception``) are text, not keys: a secret
written into a message is not found here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

#: The default names (``redact_keys``): passwords, secrets, tokens, auth headers, cookies, keys.
DEFAULT_KEYS = (
    "password",
    "passwd",
    "mysql_pwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "private_key",
    "credentials",
    "sessionid",
    "csrftoken",
)
MASK = "***"
MAX_DEPTH = 8
MAX_ITEMS = 1000
_MEMO_LIMIT = 4096
#: Types that hold no keys (a value of another type may be a container).
PLAIN = frozenset({str, int, float, bool, type(None)})
_PLAIN = PLAIN
_STEP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[_\-.\s]+")


def words(name: str) -> str:
    """``name`` as its lowercase words joined by one space, padded: ``" api key "``."""
    return " " + " ".join(w for w in _SPLIT.split(_STEP.sub("_", name).lower()) if w) + " "


class Redactor:
    """Masks the values of sensitive keys in documents (see the module doc)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(dict.fromkeys(n for n in names if words(n).strip()))
        self._needles = tuple(words(n) for n in self.names)
        self._known: set[Any] = set()  # keys seen, and of those
        self._hits: set[Any] = set()  # the sensitive ones
        #: And the others: a key in here needs no look (the encoder checks inline).
        self.clean: set[Any] = set()

    def sensitive(self, key: Any) -> bool:
        """Whether ``key`` (a str) names a sensitive value; memoised."""
        if key not in self._known:
            self._learn((key,))
        return key in self._hits

    def _learn(self, keys: Iterable[Any]) -> None:
        if len(self._known) >= _MEMO_LIMIT:  # emptied in place: the encoder holds ``clean``
            self._known.clear()
            self._hits.clear()
            self.clean.clear()
        for key in keys:
            if type(key) is str:
                text = words(key)
                if any(needle in text for needle in self._needles):
                    self._hits.add(key)
                else:
                    self.clean.add(key)
            self._known.add(key)

    def extras(self, doc: dict[str, Any], keys: list[str]) -> None:
        """Mask, in ``doc`` (the sender's own dict), the values of ``keys``: a
        stdlib record's extra fields, the only part of its document that holds
        keys of the caller's choosing (the core fields are text). The encoder
        calls this only when a key is not known to be clean or a value is not
        plain (see :data:`PLAIN`)."""
        if not self._known.issuperset(keys):
            self._learn([key for key in keys if key not in self._known])
        hits = self._hits
        for key in keys:
            if key in hits:
                doc[key] = MASK
                continue
            value = doc[key]
            if type(value) not in _PLAIN:
                masked = self._nested(value, 1)
                if masked is not value:
                    doc[key] = masked

    def document(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` (the sender's own dict) with sensitive values masked in place;
        nested containers are replaced by masked copies, never changed. The
        usual record (known keys, none sensitive, plain values) is checked by
        set operations alone."""
        keys = doc.keys()
        if not self._known.issuperset(keys):
            self._learn(keys - self._known)
        hits = () if self._hits.isdisjoint(keys) else keys & self._hits
        for key in hits:
            doc[key] = MASK
        for value in doc.values():
            if type(value) not in _PLAIN:  # a container, perhaps: look at them all
                self._containers(doc, hits)
                break
        return doc

    def keys_of(self, docs: list[dict[str, Any]]) -> None:
        """Mask, in place, the sensitive top-level values of ``docs`` (the
        sender's own dicts): one pass in C over every key of the batch when
        all are known clean, the usual case. Nested values are
        :meth:`containers`' (the fast path looks for them in the JSON)."""
        if self.clean.issuperset(chain.from_iterable(docs)):
            return
        for doc in docs:
            keys = doc.keys()
            if not self._known.issuperset(keys):
                self._learn(keys - self._known)
            if not self._hits.isdisjoint(keys):
                for key in keys & self._hits:
                    doc[key] = MASK

    def containers(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` with the sensitive values nested in its containers masked
        (copies of those containers in place; top-level keys: :meth:`keys_of`)."""
        self._containers(doc, self._hits)
        return doc

    def _containers(self, doc: dict[str, Any], hits: Any) -> None:
        for key, value in doc.items():
            if key not in hits and type(value) not in _PLAIN:
                masked = self._nested(value, 1)
                if masked is not value:
                    doc[key] = masked

    def _nested(self, value: Any, depth: int) -> Any:
        """``value`` or, when something in it is masked, a masked copy. Never
        raises: a container that cannot be read ships as the encoder decides."""
        try:
            return self._walk(value, depth)
        except Exception:  # noqa: BLE001 - a hostile container: the encoder's to judge
            return value

    def _walk(self, value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            return value
        if isinstance(value, Mapping):
            # A dict's own items, as the encoders read them (not an override's).
            items = list(dict.items(value) if isinstance(value, dict) else value.items())
            if len(items) > MAX_ITEMS:
                return value
            out: dict[Any, Any] | None = None
            for i, (key, inner) in enumerate(items):
                if type(key) is str and self.sensitive(key):
                    new: Any = MASK
                elif type(inner) not in _PLAIN and isinstance(inner, (Mapping, list, tuple)):
                    new = self._walk(inner, depth + 1)
                else:
                    new = inner
                if out is None:
                    if new is inner:
                        continue
                    out = dict(items[:i])
                out[key] = new
            return value if out is None else out
        if isinstance(value, (list, tuple)):
            # Its own items, as the encoders read them (not an override's __iter__).
            if isinstance(value, list):
                inners = list(list.__iter__(value))
            else:
                inners = list(tuple.__iter__(value))
            if len(inners) > MAX_ITEMS:
                return value
            changed = False
            copy = []
            for inner in inners:
                new = (
                    self._walk(inner, depth + 1)
                    if type(inner) not in _PLAIN and isinstance(inner, (Mapping, list, tuple))
                    else inner
                )
                changed = changed or new is not inner
                copy.append(new)
            return copy if changed else value
        return value
