"""Inline XHTML (an Atom text construct of type "xhtml") back to markup, the string the fast path has
always produced: each child of the wrapping div as libxml2 writes an element cut out of its document —
its own namespace declarations, then the one its name needs, then every other declaration in scope on
its ancestors (nearest first), prefixes as written, ``<br/>`` for an empty element.

ElementTree keeps neither prefixes nor declarations; ``xmlread.parse_with_namespaces`` records them, and
a prefix is recovered from the URI when exactly one prefix in scope maps to it. Whatever this cannot
write as libxml2 would is ``Unsure``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from daemon.intake.xmlread import Namespaces, Unsure

__all__ = ["serialize"]

_XML_NS = "http://www.w3.org/XML/1998/namespace"
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)


def _scope(el: ET.Element, spaces: Namespaces) -> dict[str, str]:
    """Prefix -> URI in scope at ``el`` ("" is the default namespace)."""
    chain: list[list[tuple[str, str]]] = []
    node: ET.Element | None = el
    while node is not None:
        own, node = spaces[id(node)]
        chain.append(own)
    scope: dict[str, str] = {}
    for own in reversed(chain):
        scope.update(own)
    return scope


def _prefix(uri: str, scope: dict[str, str], *, attribute: bool) -> str:
    if attribute and uri == _XML_NS:
        return "xml"
    found = [p for p, u in scope.items() if u == uri and (p or not attribute)]
    if len(found) != 1:
        raise Unsure("inline XHTML with a namespace bound to no prefix or to several")
    return found[0]


def _qname(tag: str, scope: dict[str, str], *, attribute: bool = False) -> tuple[str, str | None, str]:
    """(qualified name, prefix or None when unqualified, URI)."""
    if tag[:1] != "{":
        if not attribute and scope.get(""):
            raise Unsure("inline XHTML element in no namespace under a default one")
        return tag, None, ""
    uri, _, local = tag[1:].partition("}")
    prefix = _prefix(uri, scope, attribute=attribute)
    return (f"{prefix}:{local}" if prefix else local), prefix, uri


def _declarations(pairs: list[tuple[str, str]]) -> str:
    out = []
    for prefix, uri in pairs:
        if not uri:
            raise Unsure("inline XHTML undeclaring a namespace")
        out.append(f' xmlns{":" + prefix if prefix else ""}="{uri.translate(_ATTR)}"')
    return "".join(out)


def _write(el: ET.Element, scope: dict[str, str], declared: list[tuple[str, str]], spaces: Namespaces) -> str:
    name, _, _ = _qname(el.tag, scope)
    attributes = "".join(f' {_qname(k, scope, attribute=True)[0]}="{v.translate(_ATTR)}"' for k, v in el.items())
    head = f"<{name}{_declarations(declared)}{attributes}"
    inner = (el.text or "").translate(_TEXT) + "".join(_child(c, scope, spaces) for c in el)
    return f"{head}>{inner}</{name}>" if inner else f"{head}/>"


def _child(el: ET.Element, outer: dict[str, str], spaces: Namespaces) -> str:
    own = spaces[id(el)][0]
    scope = {**outer, **dict(own)} if own else outer
    return _write(el, scope, own, spaces) + (el.tail or "").translate(_TEXT)


def serialize(el: ET.Element, spaces: Namespaces) -> str:
    """``el`` and its tail as lxml's ``tostring(el, encoding=str, with_tail=True)`` wrote them."""
    own, parent = spaces[id(el)]
    scope = _scope(el, spaces)
    declared = list(own)
    prefixes = {p for p, _ in declared}

    def need(prefix: str | None, uri: str) -> None:
        if prefix is not None and prefix not in prefixes and uri != _XML_NS:
            declared.append((prefix, uri))
            prefixes.add(prefix)

    need(*_qname(el.tag, scope)[1:])
    for key in el.keys():  # noqa: SIM118 (the attribute names, in document order)
        need(*_qname(key, scope, attribute=True)[1:])
    node = parent
    while node is not None:  # every other declaration in scope, from the nearest ancestor outwards
        for prefix, uri in spaces[id(node)][0]:
            need(prefix, uri)
        node = spaces[id(node)][1]
    return _write(el, scope, declared, spaces) + (el.tail or "").translate(_TEXT)
