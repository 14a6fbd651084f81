"""Block-style YAML text for the generator's plain documents (maps, lists, str, int, float,
bool, None), written directly instead of through PyYAML's representer.

Why: `yaml.dump` spent ~3.4 ms CPU on a 20-column contract even with the libyaml emitter,
most of it in the Python representer and its implicit-tag resolver (one regex pass per
scalar); `seed --products 10000` writes 10k of them. This writer caches each distinct
scalar's text, so a contract costs a fraction of that.

Safety of the text: a string is written plain only when it is made of word characters and
a few punctuation marks (no `:`, `#`, quotes, brackets or line breaks), has no surrounding
space, and PyYAML's own resolver (the YAML 1.1 rules, timestamps included) reads it back as
a string; every other string is double-quoted with escapes for the characters a YAML reader
would fold, drop or refuse. tests/test_sample_data_yaml_emit.py checks that the text
re-parses to the same document, with PyYAML's SafeLoader and with the catalog's loader.
"""

from __future__ import annotations

import math
import re

import yaml

_STR_TAG = "tag:yaml.org,2002:str"
# Starts with a word character, so it can open with no YAML indicator; the rest excludes
# `:` and `#` (mapping and comment indicators), quotes, brackets, braces, `*`, `&`, `!`, `|`,
# `>`, `` ` `` and line breaks. Spaces inside are fine; surrounding ones are checked apart.
_PLAIN = re.compile(r"\w[\w .,;()/@%+=?~$^-]*", re.ASCII)
_RESOLVER = yaml.resolver.Resolver()  # the YAML 1.1 implicit rules SafeLoader applies
# Characters a YAML reader would refuse (non-printable), fold (line breaks: \n, \r, NEL,
# LS, PS) or treat as a byte-order mark: written as escapes inside double quotes.
_ESCAPE = re.compile("[\\\\\"\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
# A lone surrogate has no UTF-8 form and libyaml refuses its escape: no YAML text holds it.
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMED_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\x00": "\\0"}
_MAX_CACHE = 100_000
_scalars: dict[str, str] = {}


def _escape(match: re.Match) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _string(text: str) -> str:
    done = _scalars.get(text)
    if done is not None:
        return done
    if (_PLAIN.fullmatch(text) and text[-1] != " "
            and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG):
        done = text
    elif _SURROGATE.search(text):
        raise ValueError(f"a lone surrogate cannot be written as YAML text: {text[:60]!r}")
    else:
        done = '"' + _ESCAPE.sub(_escape, text) + '"'
    if len(_scalars) >= _MAX_CACHE:
        _scalars.clear()
    _scalars[text] = done
    return done


def scalar(value) -> str:
    """The YAML text of one scalar, as PyYAML's SafeDumper would resolve it back."""
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        # YAML 1.1 floats need a dot: 1e+16 would read back as a string.
        return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text
    raise TypeError(f"cannot write a {type(value).__name__} as a YAML scalar: {value!r}")


def _lines(value, out: list[str], pad: str) -> None:
    """A non-empty map or list as block lines, each starting with `pad`."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = scalar(key)
            if len(name) > 1000:  # YAML limits implicit keys to 1024 characters
                raise ValueError(f"mapping key too long for YAML: {name[:40]}...")
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{name}:")
                # Lists go at the key's indentation (as PyYAML writes them), maps one step in.
                _lines(item, out, pad + "  " if isinstance(item, dict) else pad)
            else:
                out.append(f"{pad}{name}: {_inline(item)}")
        return
    for item in value:
        if isinstance(item, (dict, list)) and item:
            start = len(out)
            _lines(item, out, pad + "  ")
            out[start] = f"{pad}- {out[start][len(pad) + 2:]}"
        else:
            out.append(f"{pad}- {_inline(item)}")


def _inline(value) -> str:
    if isinstance(value, dict):
        return "{}"  # only empty ones come here
    if isinstance(value, list):
        return "[]"
    return scalar(value)


def dump(document: dict | list) -> str:
    """The document as block YAML text (a final newline included)."""
    if not isinstance(document, (dict, list)) or not document:
        return _inline(document) + "\n"
    out: list[str] = []
    _lines(document, out, "")
    return "\n".join(out) + "\n"
