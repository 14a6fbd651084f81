"""A lineage file's text -> its events, one at a time: one event, a JSON array of events,
or one event per line (NDJSON/JSONL). Memory follows the largest event, not the file."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

from catalog.openlineage import limits
from catalog.openlineage.records import EventError, type_name


def split_events(text: str) -> tuple[list[tuple[Any, str, str | None]], list[str]]:
    """All of a file's events at once (for small inputs and tests; ingest uses iter_events)."""
    warnings: list[str] = []
    items = list(iter_events(text, warnings))
    return items, warnings


def iter_events(text: str, warnings: list[str]) -> Iterator[tuple[Any, str, str | None]]:
    """A file's events as (decoded event, raw text, read error), one at a time; raise
    EventError when nothing is JSON. Warnings about the file are appended to `warnings`
    as they are found (complete once the iterator is exhausted)."""
    seen_constants: list[str] = []
    decoder = _decoder(seen_constants)
    stripped = text.strip()
    if not stripped:
        raise EventError("empty file: expected an OpenLineage event, a JSON array of events, or NDJSON")
    if stripped.startswith("["):
        yield from _array_events(stripped, decoder)
    elif _is_single_document(stripped, decoder):
        if len(stripped) > limits.MAX_EVENT_BYTES:
            yield None, stripped, limits.event_too_big(len(stripped.encode("utf-8", "replace")))
        else:
            document = _decode(decoder, stripped)
            if not isinstance(document, dict):
                raise EventError(f"a JSON {type_name(document)} is not an OpenLineage event or a list of events")
            yield document, stripped, None
    else:
        yield from _ndjson_events(text, decoder)
    if seen_constants:
        warnings.append(constants_warning(seen_constants))


def _decoder(seen_constants: list[str]) -> json.JSONDecoder:
    """A decoder reading NaN and Infinity as null, noting them in `seen_constants`."""
    return json.JSONDecoder(parse_constant=lambda name: seen_constants.append(name))  # None: read as null


def constants_warning(seen_constants: list[str]) -> str:
    return f"non-standard JSON values {sorted(set(seen_constants))} were read as null"


def is_ndjson(text: str) -> bool:
    """Whether iter_events reads `text` as NDJSON (one event per line), without copying it."""
    match = _FIRST_CONTENT.search(text)
    if match is None or text[match.start()] == "[":
        return False
    end = text.find("\n", match.start())
    if end < 0 or _FIRST_CONTENT.search(text, end + 1) is None:
        return False  # one line: a single document
    first = text[match.start():end]
    return len(first) > limits.MAX_EVENT_BYTES or _is_json_object(first)


_FIRST_CONTENT = re.compile(r"\S")  # str.isspace's whitespace, as str.strip in iter_events


def ndjson_part(text: str, seen_constants: list[str], *, first_line: int) -> Iterator[tuple[Any, str, str | None]]:
    """The events of consecutive whole lines of an NDJSON file, numbered from `first_line`
    (as iter_events reads them; what worker processes read, see openlineage.pool)."""
    yield from _ndjson_events(text, _decoder(seen_constants), first_line=first_line)


def _decode(decoder: json.JSONDecoder, text: str) -> Any:
    try:
        return decoder.decode(text)
    except RecursionError as exc:
        raise EventError("JSON nested too deeply to be an OpenLineage event") from exc
    except json.JSONDecodeError as exc:
        raise EventError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


def _is_single_document(text: str, decoder: json.JSONDecoder) -> bool:
    """One JSON value (an event, or a scalar to refuse) rather than NDJSON: the first line
    is not a complete JSON object on its own, or it is the only line."""
    first, _, rest = text.partition("\n")
    if not rest.strip():
        return True
    if len(first) > limits.MAX_EVENT_BYTES:
        return False  # NDJSON reading will name the limit for that line
    return not _is_json_object(first)


def _ndjson_events(text: str, decoder: json.JSONDecoder, *, first_line: int = 1) -> Iterator[tuple[Any, str, str | None]]:
    position = 0
    number = first_line - 1
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        line = text[position:end]
        position = end + 1
        number += 1
        if not line.strip():
            continue
        if len(line) > limits.MAX_EVENT_BYTES:
            yield None, line[:limits.MAX_QUARANTINE_RAW_BYTES], f"line {number}: " + limits.event_too_big(len(line.encode("utf-8", "replace")))
            continue
        try:
            yield decoder.decode(line), line, None
        except (json.JSONDecodeError, RecursionError) as line_exc:
            yield None, line, f"line {number} is not valid JSON: {getattr(line_exc, 'msg', line_exc)}"


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _array_events(text: str, decoder: json.JSONDecoder) -> Iterator[tuple[Any, str, str | None]]:
    """The elements of a JSON array one at a time, so a large array never becomes one Python
    list of every event. A first pass only finds each element's span (and refuses a file that
    is not valid JSON before anything is stored, as before); the second decodes them."""
    for start, end in list(_array_spans(text, decoder)):
        size = end - start
        if size > limits.MAX_EVENT_BYTES:
            yield None, text[start:start + limits.MAX_QUARANTINE_RAW_BYTES], limits.event_too_big(size)
            continue
        item, _ = decoder.raw_decode(text, start)
        yield item, CanonicalText(canonical(item)), None


def _array_spans(text: str, decoder: json.JSONDecoder) -> Iterator[tuple[int, int]]:
    position = _WHITESPACE.match(text, 1).end()
    if text.startswith("]", position):
        if text[position + 1:].strip():
            raise EventError("not valid JSON: text after the closing ']'")
        return
    while True:
        start = position
        try:
            _, position = decoder.raw_decode(text, start)
        except RecursionError as exc:
            raise EventError("JSON nested too deeply to be an OpenLineage event") from exc
        except json.JSONDecodeError as exc:
            raise EventError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
        yield start, position
        position = _WHITESPACE.match(text, position).end()
        if text.startswith(",", position):
            position = _WHITESPACE.match(text, position + 1).end()
            continue
        if text.startswith("]", position) and not text[position + 1:].strip():
            return
        line = text.count("\n", 0, position) + 1
        raise EventError(f"not valid JSON at line {line}: expected ',' or ']' after an array element")


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, RecursionError):
        return False


class CanonicalText(str):
    """Raw text of an event that is already its canonical form (an array element, kept as
    canonical JSON since before the split): judging reuses it instead of encoding again."""


# One encoder for every event (json.dumps with options builds one per call: ~10% of the encoding).
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def canonical(value: Any) -> str:
    """The event's canonical JSON: its key (sha256) makes an identical re-ingest a no-op."""
    return _CANONICAL.encode(value)


def key_of(raw_json: str) -> str:
    return hashlib.sha256(raw_json.encode()).hexdigest()
