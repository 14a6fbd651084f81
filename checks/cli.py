"""`python -m checks`: the CI gate, on the same engine as the Checks page.

    python -m checks run [--product ID ... | --all] [--db FILE] [--json]
                         [--fail-on failed|warning] [--timeout S] [--as NAME] [--no-reuse]
    python -m checks runs [--db FILE] [--limit N]
    python -m checks bias --data FILE --y-true COL --y-pred COL --sensitive COL[,COL] [--json]

Exit codes: 0 every check passed (or was skipped), 1 a check failed or errored (or warned,
with --fail-on warning), 2 usage or engine error (unknown product, missing DB, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from catalog.cli_args import EXIT_USAGE, MAX_TIMEOUT_S, Parser, bounded_int, timeout_seconds
from catalog.settings import resolve_db_path

if TYPE_CHECKING:
    from checks import runner
    from checks.sandbox_process import SandboxWorker

# The engine (checks.runner and what it imports) is imported by main(), after `run` has
# started its sandbox process: the two starts then overlap, on different cores.

EXIT_OK, EXIT_FINDINGS = 0, 1


_Parser = Parser
_timeout_seconds = timeout_seconds


_runs_limit = bounded_int(1, 1_000_000)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m checks", description="meshgov checks: contract quality, "
                     "schema, freshness, compatibility, PII and catalog policies.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run the checks of some products (or all) and record the run",
                         description="Exit 0 when every check passes, 1 when any fails or errors "
                                     "(or warns, with --fail-on warning), 2 on usage or engine errors.")
    scope = run.add_mutually_exclusive_group(required=True)
    scope.add_argument("--product", nargs="+", action="extend", metavar="ID", dest="products",
                       help="product id(s) to check (repeatable)")
    scope.add_argument("--all", action="store_true", help="check every product in the catalog")
    run.add_argument("--db", help="DuckDB file (default: $MESHGOV_DB or data/meshgov.duckdb)")
    run.add_argument("--json", action="store_true", help="print a JSON array of results (the one result model)")
    run.add_argument("--fail-on", choices=("failed", "warning"), default="failed",
                     help="lowest status that makes the exit code 1 (default: failed; errors always do)")
    run.add_argument("--timeout", type=_timeout_seconds, default=30.0, metavar="S",
                     help=f"per-query time limit in seconds (default 30, at most {MAX_TIMEOUT_S:g})")
    run.add_argument("--as", dest="actor", help="name recorded as who triggered the run, in the run and the audit trail "
                          "(default: $MESHGOV_ACTOR or the OS user)")
    run.add_argument("--no-reuse", dest="reuse", action="store_false",
                     help="measure every check again, even on data and a contract unchanged since the last run "
                          "(by default their stored measurements are reused and marked as such)")

    runs = sub.add_parser("runs", help="list recent check runs")
    runs.add_argument("--db", help="DuckDB file (default: $MESHGOV_DB or data/meshgov.duckdb)")
    runs.add_argument("--limit", type=_runs_limit, default=20)
    runs.add_argument("--json", action="store_true")

    from checks import bias_cli  # bias audit of a predictions file

    bias_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # `run` evaluates the policy pack in a sandbox process (~1 s to start): started first, it
    # imports on the other core while this process imports the engine and parses arguments.
    worker = _start_sandbox() if argv[:1] == ["run"] else None
    try:
        return _main(argv, worker)
    finally:
        if worker is not None:
            worker.close()


def _start_sandbox() -> SandboxWorker:
    from checks.sandbox_process import SANDBOX_MEMORY, SandboxWorker

    return SandboxWorker(memory_limit=SANDBOX_MEMORY).start()


def _main(argv: list[str], worker: SandboxWorker | None) -> int:
    from catalog import access
    from catalog.store import StoreError
    from checks import runner

    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args, worker)
        if args.command == "bias":
            from checks import bias_cli

            return bias_cli.run(args)
        return _runs(args)
    except (runner.UnknownProducts, access.PermissionDenied) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: the run is recorded as incomplete", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the gate reports engine faults as exit 2, never a traceback
        print(f"engine error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(args, worker: SandboxWorker | None = None) -> int:
    from catalog import access
    from checks import runner

    db = resolve_db_path(args.db)
    if not db.exists():
        print(f"error: {db} does not exist; create it with `python -m sample_data seed --db {db}` "
              "or point --db / MESHGOV_DB at the catalog", file=sys.stderr)
        return EXIT_USAGE
    result = runner.run_checks(db, product_ids=None if args.all else args.products,
                               user=access.cli_user(args.actor), timeout_s=args.timeout,
                               reuse_unchanged=args.reuse, worker=worker)
    if args.json:
        print(json.dumps([r.to_json() for r in result.results], indent=2, default=str))
    else:
        print(summary(result))
    return exit_code(result, fail_on=args.fail_on)


def exit_code(run: runner.Run, *, fail_on: str = "failed") -> int:
    from checks.result import SEVERITY

    gate = SEVERITY["warning"] if fail_on == "warning" else SEVERITY["failed"]
    return EXIT_FINDINGS if any(SEVERITY[r.status] >= gate for r in run.results) else EXIT_OK


def summary(run: runner.Run) -> str:
    """One line per result that did not pass, then the totals."""
    order = {"error": 0, "failed": 1, "warning": 2, "skipped": 3}
    lines = []
    for result in sorted((r for r in run.results if r.status != "passed"),
                         key=lambda r: (order[r.status], r.check_id)):
        lines.append(f"{result.status.upper():<8} {result.check_id}  [{result.kind}]  {result.reason}")
    counts = run.counts()
    scope = "all products" if run.scope is None else f"{len(run.scope)} product(s)"
    totals = ", ".join(f"{counts[s]} {s}" for s in ("passed", "warning", "failed", "error", "skipped"))
    lines.append("")
    lines.append(f"run {run.run_id} ({scope}, triggered by {run.triggered_by}): "
                 f"{len(run.results)} checks — {totals}; status {run.status}")
    origins = [r.diagnostics["reused_from"]["run_id"] for r in run.results
               if isinstance((r.diagnostics or {}).get("reused_from"), dict)]
    if origins:
        lines.append(f"{len(origins)} of them reused from run{'s' if len(set(origins)) > 1 else ''} "
                     f"{', '.join(sorted(set(origins)))} (data and contract unchanged; --no-reuse measures again)")
    return "\n".join(lines)


def _runs(args) -> int:
    from catalog.store import connect
    from checks import stored_results

    db = resolve_db_path(args.db)
    if not db.exists():
        print(f"error: {db} does not exist", file=sys.stderr)
        return EXIT_USAGE
    with connect(db) as con:
        frame = stored_results.list_runs(con, args.limit)
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
    elif frame.empty:
        print("no check runs yet; start one with `python -m checks run --all`")
    else:
        for row in frame.itertuples():
            print(f"{row.run_id}  {row.started_at:%Y-%m-%d %H:%M:%S}  {row.state:<10} {row.status or '-':<8} "
                  f"{row.passed} passed, {row.failed} failed, {row.error} error  by {row.triggered_by}  [{row.scope}]")
    return EXIT_OK
