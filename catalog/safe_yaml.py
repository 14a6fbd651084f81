"""Loading untrusted YAML without hanging or crashing: nesting, alias expansion and cycles
bounded before anything walks the document, dates kept as strings (the ODCS JSON Schemas
expect strings), and a fast builder for documents of plain maps, lists and scalars.

catalog.odcs.load_yaml reads contracts (and model-card front matter) through it.
"""

from __future__ import annotations

from typing import Any

import yaml

from catalog.yaml_tree import MemoisedScalarTags, NotBuilt, build_from_events, build_unshared


class YamlRefused(ValueError):
    """A YAML structure over the limits (nesting, alias expansion) or cyclic; the message
    names the line and the limit."""


# libyaml when present: the pure-Python parser took ~0.15 s per official example.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Beyond these, a document is refused before it is built (see _check_structure).
MAX_YAML_DEPTH = 64
MAX_ALIAS_EXPANSION = 100_000


class StringDatesLoader(MemoisedScalarTags, _SafeLoader):
    """SafeLoader that keeps `2022-10-03` a string: the JSON Schemas expect strings."""


class _PureStringDatesLoader(yaml.SafeLoader):
    """The pure-Python twin of StringDatesLoader: its scanner streams lazily, whereas some
    libyaml builds refuse a deep document before yielding its first event (PyYAML 6.0.4)."""


StringDatesLoader.yaml_implicit_resolvers = _PureStringDatesLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _check_structure(text: str, loader: type = StringDatesLoader) -> None:
    """Stream the YAML events (no tree is built) and refuse what would blow up later.

    - nesting deeper than MAX_YAML_DEPTH: PyYAML composes recursively (RecursionError) and
      libyaml's composer overflows the C stack (segfault at ~50k levels);
    - aliases that expand the document by more than MAX_ALIAS_EXPANSION nodes (billion
      laughs): cheap to load as a shared graph, exponential for the validator that walks it;
    - an alias to an enclosing node: a cyclic document, which no JSON Schema walk ends.
    The event stream is lazy, so a bomb is stopped after a few hundred events.
    """
    sizes: dict[str, int] = {}  # anchor -> expanded node count of its node
    open_frames: list[tuple[str | None, int]] = []  # (anchor, expanded count at start)
    expanded = distinct = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            open_frames.append((event.anchor, expanded))
            expanded += 1
            distinct += 1
            if len(open_frames) > MAX_YAML_DEPTH:
                raise YamlRefused(f"YAML nested deeper than {MAX_YAML_DEPTH} levels "
                                    f"(line {event.start_mark.line + 1}): refused")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start = open_frames.pop()
            if anchor:
                sizes[anchor] = expanded - start
        elif isinstance(event, yaml.ScalarEvent):
            expanded += 1
            distinct += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_frames):
                raise YamlRefused(f"YAML alias *{event.anchor} refers to a node that contains it "
                                    f"(line {event.start_mark.line + 1}): cyclic documents are refused")
            expanded += sizes.get(event.anchor, 1)  # an undefined alias is reported by the composer
            if expanded - distinct > MAX_ALIAS_EXPANSION:
                raise YamlRefused(f"YAML aliases expand the document by more than {MAX_ALIAS_EXPANSION} "
                                    f"nodes (line {event.start_mark.line + 1}): refused as an alias bomb")


# Below this many YAML indicator characters a document cannot nest deep enough to overflow
# libyaml's recursive composer (~50k levels), so it is composed first and its structure
# checked on the node graph; above it the event stream is checked before anything is built.
SAFE_COMPOSE_INDICATORS = 10_000


def _checked_events(text: str) -> None:
    try:
        _check_structure(text)
    except yaml.YAMLError:
        # The fast scanner may refuse a structure (e.g. deep nesting) in its own words before
        # our guard sees an event; the lazy pure-Python scan names the cause in ours, and
        # text that is simply not YAML still raises the scanner's error.
        _check_structure(text, _PureStringDatesLoader)
        raise


def load(text: str) -> Any:
    """Parse YAML safely; YamlRefused for structures that would hang or crash later,
    yaml.YAMLError for text that is not YAML."""
    small = sum(text.count(c) for c in "[{-:?") <= SAFE_COMPOSE_INDICATORS
    if not small:
        _checked_events(text)
    if small and "&" not in text:  # no anchor, so no alias: see catalog.yaml_tree
        built = _built_from_events(text)
        if built is not _UNBUILT:
            return built
    loader = StringDatesLoader(text)
    try:
        try:
            node = loader.get_single_node()  # composed by libyaml
        except yaml.YAMLError:
            if small:
                _checked_events(text)  # a structure libyaml refuses in its own words is named in ours
            raise
        if node is None:
            return None
        if small and "&" not in text:  # no anchor, so no alias: see catalog.yaml_tree
            try:
                return build_unshared(loader, node, MAX_YAML_DEPTH)
            except NotBuilt:
                pass  # the checked path below builds it or words the refusal
        if small and not _plain_structure(node):
            _checked_events(text)  # words the refusal (line, anchor) as the event check does
            raise YamlRefused("YAML structure refused (nesting, aliases or cycles over the limits)")
        try:
            return _build(loader, node, {})
        except _NotPlain:
            return loader.construct_document(node)
    finally:
        loader.dispose()


_UNBUILT = object()


def _built_from_events(text: str) -> Any:
    """The document built from the parser's events (yaml_tree.build_from_events), or _UNBUILT:
    then the composing path builds it or raises, in the very words it always did (any
    exception here, a parser error included, only sends the text down that path)."""
    loader = StringDatesLoader(text)
    try:
        return build_from_events(loader, MAX_YAML_DEPTH)
    except Exception:  # noqa: BLE001 - see above: the composing path decides
        return _UNBUILT
    finally:
        loader.dispose()


def _plain_structure(root) -> bool:
    """What _check_structure checks, on the composed node graph (one walk, no second parse):
    nesting within MAX_YAML_DEPTH, aliases expanding by at most MAX_ALIAS_EXPANSION nodes,
    no node inside itself. An alias is the very node it names, so sizes are memoised."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node, depth: int) -> int | None:
        key = id(node)
        if key in on_path:
            return None  # a cycle
        if key in sizes:
            return sizes[key]
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            return 1
        if depth > MAX_YAML_DEPTH:
            return None
        on_path.add(key)
        total = 1
        children = (c for pair in node.value for c in pair) if isinstance(node, yaml.MappingNode) else node.value
        for child in children:
            got = size(child, depth + 1)
            if got is None:
                return None
            total += got
            if total > MAX_ALIAS_EXPANSION + len(sizes) + 1:
                return None
        on_path.discard(key)
        sizes[key] = total
        return total

    expanded = size(root, 1)
    return expanded is not None and expanded - len(sizes) <= MAX_ALIAS_EXPANSION


class _NotPlain(Exception):
    """A node _build leaves to PyYAML's constructor (explicit tags, merge keys, odd keys)."""


_TAG = "tag:yaml.org,2002:"
_SCALAR_CONSTRUCTORS = {f"{_TAG}int": "construct_yaml_int", f"{_TAG}float": "construct_yaml_float",
                        f"{_TAG}bool": "construct_yaml_bool", f"{_TAG}null": "construct_yaml_null"}


def _build(loader, node, built: dict) -> Any:
    """The Python value of a composed document made of plain maps, lists and scalars, as
    SafeConstructor makes it (same scalar rules, an alias the same object, the last of
    duplicate keys wins) without its per-node generator machinery: about half the load time
    of a contract. Anything else raises _NotPlain and PyYAML's constructor makes it."""
    done = built.get(id(node))
    if done is not None:
        return done
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        if tag == f"{_TAG}str":
            return node.value
        method = _SCALAR_CONSTRUCTORS.get(tag)
        if method is None:
            raise _NotPlain(tag)
        value = getattr(loader, method)(node)
    elif isinstance(node, yaml.MappingNode) and tag == f"{_TAG}map":
        value = built[id(node)] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == f"{_TAG}merge":
                raise _NotPlain("key")
            value[_build(loader, key_node, built)] = _build(loader, value_node, built)
        return value
    elif isinstance(node, yaml.SequenceNode) and tag == f"{_TAG}seq":
        value = built[id(node)] = []
        value.extend(_build(loader, item, built) for item in node.value)
        return value
    else:
        raise _NotPlain(tag)
    built[id(node)] = value
    return value
