"""One compiled check, many engines: DuckDB SQL (what checks.compiler writes) -> the SQL of
the engine that holds the data, through sqlglot, plus what each engine answers exactly.

The compiler keeps writing one form (DuckDB's). Here sqlglot transpiles it, and a few tree
rewrites cover what sqlglot leaves to the target and the target does not accept:
- PostgreSQL 15 has no `GROUP BY ALL` and wants an alias on every derived table;
- Spark's `unix_timestamp` drops the fraction of a second that DuckDB's `epoch` keeps, so
  freshness ages would differ by up to a second: it reads microseconds instead.

A query an engine cannot answer the same way (a cast that would fail instead of giving
NULL, a regex construct its regex flavour reads differently) is refused with the reason
(`unsupported`), and the check ends `skipped` rather than measuring something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

SOURCE_DIALECT = "duckdb"


@dataclass(frozen=True)
class Capabilities:
    """What an engine answers exactly. Declared per engine; `unsupported` reads it."""

    engine: str
    dialect: str                     # sqlglot dialect name
    regex_flavour: str               # re2 | posix-are | java
    exact_distinct: bool             # count(DISTINCT) / GROUP BY counts are exact, not sketches
    try_cast: bool                   # a failed cast can give NULL instead of failing the query
    metadata_null_counts: bool       # null counts / min / max answered from file statistics
    read_only_rules: str             # how contract `type: sql` rules are kept read-only


CAPABILITIES: dict[str, Capabilities] = {
    "duckdb": Capabilities("duckdb", "duckdb", "re2", exact_distinct=True, try_cast=True,
                           metadata_null_counts=True,
                           read_only_rules="separate locked-down in-memory DuckDB (checks.sandbox)"),
    "postgres": Capabilities("postgres", "postgres", "posix-are", exact_distinct=True, try_cast=False,
                             metadata_null_counts=False,
                             read_only_rules="read-only transaction, statement_timeout, one SELECT"),
    "spark": Capabilities("spark", "spark", "java", exact_distinct=True, try_cast=True,
                          metadata_null_counts=False,
                          read_only_rules="one SELECT over the dataset's temporary view, job cancelled "
                                          "at the timeout"),
}

# Regex constructs that RE2 (DuckDB, where contract patterns are written and tested) reads
# differently from the target's flavour, or that the target rejects. Anything else in the
# common subset (classes, anchors, quantifiers, groups, \d \w \s) matches the same strings.
_REGEX_TRAPS: dict[str, list[tuple[str, str]]] = {
    "posix-are": [
        (r"\\[bB]", r"\b means backspace in PostgreSQL (its word boundary is \y)"),
        (r"\\[AzZ]", r"\A / \z are not PostgreSQL anchors the way RE2 reads them"),
        (r"\\[pP]\{?", r"Unicode classes (\p{...}) are not supported by PostgreSQL regexes"),
        (r"\(\?P?<", "named groups are not supported by PostgreSQL regexes"),
        (r"\\Q|\\E", r"\Q...\E quoting is not supported by PostgreSQL regexes"),
        (r"\\x\{", r"\x{...} escapes are not supported by PostgreSQL regexes"),
    ],
    "java": [
        (r"\[\[:|\[:[a-z]+:\]", "POSIX classes like [[:alpha:]] are not supported by Java regexes"),
        (r"\(\?P<", "(?P<name>...) groups are written (?<name>...) in Java regexes"),
        (r"\\[pP][A-Za-z]", r"\pL-style classes are read differently by Java regexes"),
    ],
    "re2": [],
}


def regex_problem(pattern: str, flavour: str) -> str | None:
    for trap, why in _REGEX_TRAPS.get(flavour, []):
        if re.search(trap, pattern):
            return f"pattern {pattern!r}: {why}"
    return None


def unsupported(duck_sql: str, engine: str) -> str | None:
    """Why `engine` cannot answer this compiled query exactly as DuckDB would, or None."""
    caps = CAPABILITIES[engine]
    if engine == "duckdb":
        return None
    try:
        tree = sqlglot.parse_one(duck_sql, read=SOURCE_DIALECT)
    except sqlglot.errors.ParseError as exc:
        return f"the compiled query does not parse for transpiling: {str(exc).splitlines()[0]}"
    if not caps.try_cast and tree.find(exp.TryCast):
        return (f"{engine} has no TRY_CAST: reading this text column as timestamps would fail on the "
                "first value that is not one instead of ignoring it")
    for node in tree.find_all(exp.RegexpLike):
        pattern = node.expression
        if isinstance(pattern, exp.Literal):
            problem = regex_problem(pattern.this, caps.regex_flavour)
            if problem:
                return problem
    return None


def _expand_group_by_all(tree: exp.Expression) -> exp.Expression:
    """GROUP BY ALL -> GROUP BY every projection without an aggregate (DuckDB's meaning)."""
    for select in tree.find_all(exp.Select):
        group = select.args.get("group")
        if group is None or not group.args.get("all"):
            continue
        keys = [p.unalias().copy() for p in select.expressions if not p.find(exp.AggFunc)]
        select.set("group", exp.Group(expressions=keys) if keys else None)
    return tree


def _alias_derived_tables(tree: exp.Expression) -> exp.Expression:
    for index, subquery in enumerate(list(tree.find_all(exp.Subquery))):
        if not subquery.alias and isinstance(subquery.parent, exp.From | exp.Join):
            subquery.set("alias", exp.TableAlias(this=exp.to_identifier(f"_q{index}")))
    return tree


def _spark_epoch_micros(tree: exp.Expression) -> exp.Expression:
    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.TimeToUnix):
            as_instant = exp.cast(node.this, exp.DataType.build("TIMESTAMP", dialect="spark"))
            micros = exp.Anonymous(this="unix_micros", expressions=[as_instant])
            return exp.Div(this=micros, expression=exp.Literal.number("1000000.0"))
        return node

    return tree.transform(rewrite)


_REWRITES = {
    "postgres": (_expand_group_by_all, _alias_derived_tables),
    "spark": (_spark_epoch_micros,),
}


def transpile(duck_sql: str, engine: str) -> str:
    """DuckDB SQL -> `engine`'s SQL (unchanged for DuckDB). Raises ValueError when sqlglot
    cannot read or write it."""
    if engine == "duckdb":
        return duck_sql
    caps = CAPABILITIES[engine]
    try:
        tree = sqlglot.parse_one(duck_sql, read=SOURCE_DIALECT)
        for rewrite in _REWRITES.get(engine, ()):
            tree = rewrite(tree)
        return tree.sql(dialect=caps.dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)
    except (sqlglot.errors.ParseError, sqlglot.errors.UnsupportedError) as exc:
        raise ValueError(f"cannot write this check in {engine} SQL: {str(exc).splitlines()[0]}") from None
