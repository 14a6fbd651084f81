"""Per-product posture components for the leadership overview, always all of them.

One row per product: contract present and valid, active owner, classification coverage,
lineage coverage, latest check pass rate, SLO compliance (30 days), consent coverage and bias
status (the latest bias audit and model-card results of the models the product owns).
Catalog facts come from one SQL query; each product's latest run from the runs' stored totals
(catalog.check_totals); SLOs from checks.slo (one query); consent from checks.consent's stored
results; lineage coverage from the cached lineage match (dataset -> OpenLineage match). No
per-product queries; the independent reads run side by side (overview()), so it stays fast
at 100k products.

It lives in checks/ because SLO compliance and consent coverage are computed here; catalog/
never imports checks/.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt

import duckdb
import numpy as np
import pandas as pd

from catalog import check_totals, lineage, product_summary
from catalog.status import FAILING, SEVERITY, severity_sql, status_of_severity_sql
from checks import consent_reports, slo

COMPONENTS = ("contract_present", "contract_valid", "has_owner", "classification_coverage",
              "lineage_coverage", "check_pass_rate", "slo_compliance", "consent_coverage", "bias_status")
MODEL_KINDS = ("fairness", "model_card")  # the results that make a product's bias status
_MODEL_KINDS_SQL = "(" + ", ".join(f"'{k}'" for k in MODEL_KINDS) + ")"

# {totals}: check_totals.totals_sql(), put in by _catalog_facts
_CATALOG_SQL = f"""
    WITH contract AS (  -- every stored revision passed JSON Schema validation at ingest (catalog.odcs)
        SELECT product_id, count(DISTINCT contract_id) AS contracts FROM contracts GROUP BY product_id),
    owner AS (  -- the same rule as the policy checks/policies/product-has-owner.sql
        SELECT product_id, count(*) FILTER (WHERE active) AS active_owners FROM owners GROUP BY product_id),
    classified AS (  -- the same rule as checks/policies/column-has-classification.sql (catalog.product_summary)
        SELECT product_id, columns, classified_columns AS classified FROM {{summary}}),
    totals AS ({{totals}}),  -- catalog.check_totals: each run's counts per product
    newest AS ({check_totals.newest_sql()}),
    checked AS (  -- the newest run of each product
        SELECT product_id, checks, passed, failed + errors AS failing, errors, failed, warnings,
               nullif(array_to_string(failing_kinds, ', '), '') AS failing_kinds, contract_broken,
               finished_at AS checked_at
        FROM totals SEMI JOIN newest USING (product_id, run_id)),
    model_home AS (  -- a model's results count under the product the model belongs to (models.product_id)
        SELECT model_id, product_id FROM models WHERE product_id IS NOT NULL),
    model_results AS (
        SELECT coalesce(h.product_id, l.product_id) AS product_id, l.status
        FROM check_results l SEMI JOIN newest USING (product_id, run_id)
        LEFT JOIN model_home h ON h.model_id = l.diagnostics->>'$.model'
        WHERE l.kind IN {_MODEL_KINDS_SQL}),
    bias AS (
        SELECT product_id, {status_of_severity_sql(f"max({severity_sql()})")} AS bias_status
        FROM model_results WHERE status <> 'skipped' GROUP BY product_id)
    SELECT p.product_id, p.name, d.name AS domain, p.status AS lifecycle,
           coalesce(c.contracts, 0) > 0 AS contract_present,
           -- valid: accepted at ingest, and the latest check run could still parse it
           coalesce(c.contracts, 0) > 0 AND NOT coalesce(k.contract_broken, false) AS contract_valid,
           coalesce(o.active_owners, 0) > 0 AS has_owner,
           CASE WHEN cl.columns > 0 THEN cl.classified / cl.columns END AS classification_coverage,
           CASE WHEN k.checks > 0 THEN k.passed / k.checks END AS check_pass_rate,
           b.bias_status,
           coalesce(k.failing, 0) AS failing_checks, coalesce(k.errors, 0) AS errors,
           coalesce(k.failed, 0) AS failed, coalesce(k.warnings, 0) AS warnings, k.failing_kinds, k.checked_at
    FROM products p LEFT JOIN domains d USING (domain_id)
    LEFT JOIN contract c USING (product_id) LEFT JOIN owner o USING (product_id)
    LEFT JOIN classified cl USING (product_id) LEFT JOIN checked k USING (product_id)
    LEFT JOIN bias b USING (product_id)"""


def lineage_coverage(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """product_id, datasets, datasets_in_lineage, lineage_coverage (share of the product's
    contract datasets that OpenLineage events name). From the lineage match (cached per change
    of the catalog or lineage), not the graph: the overview is the app's first page. Counted
    in SQL (in pandas it cost ~0.2 s of CPU at 100k products)."""
    pairs = sorted(lineage.load_match(con).named_pairs)
    # Joined on the two id columns: a node id string made for each of 100k datasets cost ~0.1 s of
    # CPU. Each product's datasets counted once, in its catalog summary (catalog.product_summary).
    return con.execute(f"""
        WITH named AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS product_id, unnest(?::VARCHAR[]) AS dataset),
        hit AS (
            SELECT n.product_id, count(*) AS datasets_in_lineage FROM named n
            SEMI JOIN datasets d ON d.product_id = n.product_id AND d.dataset = n.dataset GROUP BY n.product_id)
        SELECT s.product_id, CAST(s.datasets AS BIGINT) AS datasets,
               coalesce(h.datasets_in_lineage, 0) AS datasets_in_lineage,
               coalesce(h.datasets_in_lineage, 0) / s.datasets AS lineage_coverage
        FROM {product_summary.summary_sql(con)} s LEFT JOIN hit h USING (product_id)
        WHERE s.datasets > 0 ORDER BY s.product_id""",  # noqa: S608 - a table name from catalog.product_summary
                       [[p for p, _ in pairs], [d for _, d in pairs]]).df()


def overview(con: duckdb.DuckDBPyConnection, *, days: int = 35,
             now: dt.datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores(components()), trend()) for the overview, the SLO observations read once for both.

    The three big reads (SLO observations, the trend's per-run counts, the catalog facts over
    the latest runs' totals) are independent: they run in threads, each on a cursor of its own
    on the same database, while this thread computes lineage and consent coverage (mostly
    pandas, which holds the GIL; DuckDB releases it while it works). At 100k products the first
    render waits for the slowest read, not the sum."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # The cursors are made here, before this thread uses `con` again: never two threads on one connection.
    with contextlib.closing(con.cursor()) as slo_cur, contextlib.closing(con.cursor()) as trend_cur, \
            contextlib.closing(con.cursor()) as facts_cur, \
            concurrent.futures.ThreadPoolExecutor(max_workers=3, thread_name_prefix="posture") as pool:
        checks_job = pool.submit(_trend_checks, trend_cur, days=days, now=now)
        facts_job = pool.submit(_catalog_sql_facts, facts_cur)
        # The lineage match, which the SLO observations and lineage coverage both need, once,
        # here, before either asks for it (~0.8 s of CPU at 100k products after a store change).
        lineage.load_match(con)
        slo_job = pool.submit(_slo_reads, slo_cur, now=now, days=days)
        lineage_covered, consent_covered = lineage_coverage(con), consent_reports.coverage_by_product(con)
        facts = _with_coverage(facts_job.result(), lineage_covered, consent_covered)
        (per_product, daily), checks = slo_job.result(), checks_job.result()
    return (scores(_with_slos(con, facts, now=now, observed=None, slos=per_product)),
            _trend_with_slos(con, checks, days=days, now=now, observed=None, daily=daily))


def _slo_reads(con: duckdb.DuckDBPyConnection, *, now: dt.datetime, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The overview's SLO side in one thread: (each product's compliance over 30 days, each
    day's and domain's share of good observations over `days`), from one read of the
    observations. Its pandas work then overlaps the other reads instead of following them."""
    observed = slo.observations(con, now=now, days=max(days, slo.BUDGET_WINDOW), arrow=True)
    return slo.product_compliance(con, now=now, frame=observed), slo.daily_share(con, observed, now=now, days=days)


def components(con: duckdb.DuckDBPyConnection, *, now: dt.datetime | None = None,
               observed: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per product with every posture component (NULL = not applicable / not measured:
    no columns, never checked, no SLO observations, no consent requirement). `observed`: the SLO
    observations at `now` over at least 30 days, when already read."""
    return _with_slos(con, _catalog_facts(con), now=now, observed=observed)


def _catalog_facts(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(catalog facts with lineage coverage, consent coverage): the reads of components() but the SLOs."""
    return _with_coverage(_catalog_sql_facts(con), lineage_coverage(con), consent_reports.coverage_by_product(con))


def _catalog_sql_facts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    found = con.execute(_CATALOG_SQL.replace("{totals}", check_totals.totals_sql(con, by="product"))
                        .replace("{summary}", product_summary.summary_sql(con))).df()
    # Ordered by product id here, not by an ORDER BY: DuckDB sorting the whole wide row cost
    # ~0.18 s of CPU at 100k products, sorting the frame by its id ~0.07 s.
    return found.sort_values("product_id", kind="stable", ignore_index=True)


def _with_coverage(found: pd.DataFrame, lineage_covered: pd.DataFrame,
                   consent_covered: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (found.merge(lineage_covered[["product_id", "lineage_coverage"]], on="product_id", how="left"),
            consent_covered)


def _with_slos(con: duckdb.DuckDBPyConnection, facts: tuple[pd.DataFrame, pd.DataFrame], *,
               now: dt.datetime | None, observed: pd.DataFrame | None,
               slos: pd.DataFrame | None = None) -> pd.DataFrame:
    """The facts with each product's SLO compliance (`slos`: slo.product_compliance, when
    already computed) and consent coverage."""
    found, covered = facts
    if slos is None:
        slos = slo.product_compliance(con, now=now, frame=observed)
    found = found.merge(slos.rename(columns={"slos_missed": "slos_missed", "breaching_now": "slo_breaching"}),
                        on="product_id", how="left")
    if covered.empty:
        found["consent_coverage"] = pd.Series([None] * len(found), dtype="float64")
        found["consent_violating_users"] = pd.Series([None] * len(found), dtype="float64")
    else:
        per_product = covered.groupby("product_id").agg(consent_coverage=("coverage", "min"),
                                                        consent_violating_users=("violating_users", "max"))
        found = found.merge(per_product.reset_index(), on="product_id", how="left")
    return found[["product_id", "name", "domain", "lifecycle", *COMPONENTS, "failing_checks", "errors", "failed",
                  "warnings", "failing_kinds", "checked_at", "slos", "slos_missed", "slo_breaching",
                  "consent_violating_users"]]


def trend(con: duckdb.DuckDBPyConnection, *, days: int = 90, now: dt.datetime | None = None,
          observed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per day and domain, from each product's last complete run of that day: products checked,
    products failing, check pass rate; plus the day's share of good SLO observations. For the
    overview's trend over time (one query over the results, one over SLO observations, unless
    `observed` holds them: at `now`, over at least `days` days)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return _trend_with_slos(con, _trend_checks(con, days=days, now=now), days=days, now=now, observed=observed)


def _trend_checks(con: duckdb.DuckDBPyConnection, *, days: int, now: dt.datetime) -> pd.DataFrame:
    """trend()'s per day and domain check counts (its query over the results)."""
    # From each run's stored totals (catalog.check_totals): ranking or grouping every result
    # row took ~0.4-2 s of CPU at 1.6M stored results.
    totals = check_totals.totals_sql(con, by="product")
    return con.execute(f"""
        WITH runs AS (SELECT run_id, started_at FROM check_runs WHERE state = 'complete' AND started_at >= ?),
        per_run AS (
            SELECT t.product_id, t.run_id, t.checks, t.passed, t.failed + t.errors > 0 AS failing
            FROM ({totals}) t SEMI JOIN runs r USING (run_id) WHERE t.product_id IS NOT NULL),
        per_product AS (  -- each product's newest run of the day (a row_number() window cost ~0.4 s at 100k)
            SELECT pr.product_id, CAST(r.started_at AS DATE) AS day,
                   arg_max({{'checks': pr.checks, 'passed': pr.passed, 'failing': pr.failing}},
                           (r.started_at, r.run_id)) AS newest
            FROM per_run pr JOIN runs r USING (run_id) GROUP BY ALL)
        SELECT pp.day, d.name AS domain, count(*) AS products_checked,
               count(*) FILTER (WHERE pp.newest.failing) AS products_failing,
               sum(pp.newest.passed) / nullif(sum(pp.newest.checks), 0) AS check_pass_rate
        FROM per_product pp JOIN products p USING (product_id) LEFT JOIN domains d USING (domain_id)
        GROUP BY ALL ORDER BY pp.day, domain""", [now - dt.timedelta(days=days)]).df()  # noqa: S608


def _trend_with_slos(con: duckdb.DuckDBPyConnection, checks: pd.DataFrame, *, days: int, now: dt.datetime,
                     observed: pd.DataFrame | None, daily: pd.DataFrame | None = None) -> pd.DataFrame:
    """trend()'s check counts with the day's share of good SLO observations beside them
    (`daily`: slo.daily_share, when already computed)."""
    if daily is None:
        if observed is None:
            observed = slo.observations(con, now=now, days=days)
        daily = slo.daily_share(con, observed, now=now, days=days)
    if daily.empty or checks.empty:
        checks["slo_compliance"] = pd.Series(dtype="float64")
        return checks
    checks["day"] = pd.to_datetime(checks["day"])
    return checks.merge(daily, on=["day", "domain"], how="left")


# --- the score: each component 0-100 side by side, the score their mean --------------------------

# part -> (column label, what 100 means). Explained on the overview as written here.
SCORE_PARTS: dict[str, tuple[str, str]] = {
    "contract": ("Contract", "100 when a contract is stored and still parses, else 0"),
    "owner": ("Owner", "100 when an active owner is named, else 0"),
    "classification": ("Classified", "share of the product's columns with a classification"),
    "lineage": ("Lineage", "share of the product's datasets that lineage events name"),
    "checks": ("Checks pass", "share of the latest checks that passed (skipped ones not counted)"),
    "slo": ("SLOs", "the worst SLO's share of good observations over 30 days"),
    "consent": ("Consent", "share of users in a personalised output with a valid consent (only where required)"),
    "bias": ("Bias", "latest bias audit and model-card checks of its models: passed 100, warning 50, "
                     "failed or error 0 (only products with models)"),
}
_BIAS_POINTS = {"passed": 100.0, "warning": 50.0, "failed": 0.0, "error": 0.0}
assert set(_BIAS_POINTS) | {"skipped"} == set(SEVERITY), "every status has its bias points (skipped: no score)"


def scores(found: pd.DataFrame) -> pd.DataFrame:
    """`found` (from components) plus score_<part> columns, each 0-100 or NaN where the part does
    not apply or was never measured, and `score`: the mean of the parts that apply."""
    scored = found.copy()
    scored["score_contract"] = (scored["contract_present"].astype(bool) & scored["contract_valid"].astype(bool)) * 100.0
    scored["score_owner"] = scored["has_owner"].astype(bool) * 100.0
    for part, column in (("classification", "classification_coverage"), ("lineage", "lineage_coverage"),
                         ("checks", "check_pass_rate"), ("slo", "slo_compliance"), ("consent", "consent_coverage")):
        scored[f"score_{part}"] = pd.to_numeric(scored[column], errors="coerce").astype("float64") * 100
    scored["score_bias"] = scored["bias_status"].map(_BIAS_POINTS).astype("float64")
    parts = [f"score_{p}" for p in SCORE_PARTS]
    scored["score"] = scored[parts].mean(axis=1, skipna=True)
    scored["complete"] = (scored["contract_valid"].astype(bool) & scored["has_owner"].astype(bool)
                          & (scored["score_classification"] >= 100) & (scored["score_lineage"] >= 100))
    scored["open_violations"] = scored["failed"] + scored["errors"] + scored["warnings"]
    scored["problems"] = problems(scored)
    return scored


def problems(scored: pd.DataFrame) -> list[str]:
    """What is wrong with each product, in words someone who does not write code can act on.
    Column-wise: each finding is tested on every row at once and worded once per distinct value,
    kept as a code per row; each distinct combination of findings is then joined once (a loop
    over 100k rows testing each finding took ~2.5 s of CPU; appending the words row by row with
    numpy's element-wise string addition ~0.2 s)."""
    rows_total = len(scored)
    codes: list[np.ndarray] = []  # per finding: 0 where it does not hold, else 1 + its wording's index
    wordings: list[list[str]] = []

    def number(column: str) -> np.ndarray:
        return pd.to_numeric(scored[column], errors="coerce").astype("float64").to_numpy()

    def worded(text, *columns: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(a wording index per row of `columns`, the wordings): `text(*values)` formatted once
        per distinct combination (f-strings over 100k numpy scalars cost ~0.1 s each)."""
        frame = pd.DataFrame(dict(enumerate(columns)))
        index = frame.groupby(list(frame.columns), dropna=False, sort=False).ngroup().to_numpy()
        distinct = frame.drop_duplicates()
        return index, [text(*values) for values in distinct.itertuples(index=False)]

    def add(mask, words) -> None:
        """`words` (a string, or a function of the row positions where `mask` holds giving a
        wording index per row and the wordings) for the rows where `mask` holds."""
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        code = np.zeros(rows_total, dtype=np.int64)
        if isinstance(words, str):
            code[rows], texts = 1, [words]
        elif rows.size:
            index, texts = words(rows)
            code[rows] = index + 1
        else:
            texts = []
        codes.append(code)
        wordings.append(texts)

    present = scored["contract_present"].astype(bool).to_numpy()
    add(~present, "no contract")
    add(present & ~scored["contract_valid"].astype(bool).to_numpy(), "contract no longer valid")
    add(~scored["has_owner"].astype(bool).to_numpy(), "no active owner")
    violating = number("consent_violating_users")
    add(np.nan_to_num(violating) > 0, lambda rows: worded(lambda n: f"{int(n):,} users without a valid consent", violating[rows]))
    breaching = scored["slo_breaching"].fillna(False).astype(bool).to_numpy()
    missed, slos = number("slos_missed"), number("slos")
    add(breaching, lambda rows: worded(lambda m, n: "SLO breached now" + (
        f" ({int(m)} of {int(n)} SLOs below target)" if not np.isnan(n) and m != 0 else ""), missed[rows], slos[rows]))
    add(~breaching & ~np.isnan(missed) & (missed != 0),
        lambda rows: worded(lambda m, n: f"{int(m)} of {int(n)} SLOs below target over 30 days", missed[rows], slos[rows]))
    bias = scored["bias_status"].to_numpy(dtype=object)
    add(scored["bias_status"].isin(FAILING).to_numpy(), lambda rows: worded(lambda b: f"bias or model-card check {b}", bias[rows]))
    failing = (scored["failed"].astype(int) + scored["errors"].astype(int)).to_numpy()
    kinds = scored["failing_kinds"].to_numpy(dtype=object)
    add(failing > 0, lambda rows: worded(lambda n, k: f"{n} failing check{'s' if n != 1 else ''} ({k})",
                                         failing[rows], kinds[rows]))
    warnings = scored["warnings"].astype(int).to_numpy()
    add(warnings != 0, lambda rows: worded(lambda n: f"{n} warning{'s' if n != 1 else ''}", warnings[rows]))
    classified, lineage_share = number("score_classification"), number("score_lineage")
    add(classified < 100, lambda rows: worded(lambda v: f"{v:.0f} % of columns classified", classified[rows]))
    add(lineage_share < 100, lambda rows: worded(lambda v: f"lineage covers {v:.0f} % of datasets", lineage_share[rows]))
    add(scored["checked_at"].isna().to_numpy(), "never checked")
    if not rows_total:
        return []
    # The findings' codes as one number per row (mixed radix; renumbered densely whenever the
    # next finding could overflow 64 bits), each distinct number joined once, from its first row.
    key, bound = np.zeros(rows_total, dtype=np.int64), 1
    for code, texts in zip(codes, wordings, strict=True):
        size = len(texts) + 1
        if bound * size >= 2 ** 62:
            key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
            bound = int(key.max()) + 1
        key, bound = key * size + code, bound * size
    _, first, which = np.unique(key, return_index=True, return_inverse=True)
    joined = ["; ".join(texts[code[row] - 1] for code, texts in zip(codes, wordings, strict=True) if code[row])
              for row in first.tolist()]
    return np.asarray(joined, dtype=object)[which.reshape(-1)].tolist()


def domain_scores(scored: pd.DataFrame) -> pd.DataFrame:
    """Per domain: products, the mean product score, the mean of each part, products with an open
    violation; worst score first."""
    parts = [f"score_{p}" for p in SCORE_PARTS]
    frame = scored.assign(domain=scored["domain"].fillna("(no domain)"),
                          violating=scored["open_violations"] > 0)
    found = frame.groupby("domain").agg(products=("product_id", "size"), score=("score", "mean"),
                                        violating=("violating", "sum"), **{p: (p, "mean") for p in parts})
    return found.reset_index().sort_values(["score", "domain"], kind="stable").reset_index(drop=True)
