"""What every meshgov command line shares: the parser that answers usage errors in one line
(exit 2, never a traceback), bounded number types, and the --db option."""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2
MAX_TIMEOUT_S = 24 * 3600.0  # a timer beyond this overflows or never fires in any useful sense


class Parser(argparse.ArgumentParser):
    """argparse that prints the usage and one `error:` line, then exits 2."""

    def error(self, message: str) -> None:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def bounded_int(low: int, high: int):
    """An argparse type: a whole number in [low, high], else a one-line usage error (exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {text}")
        return value
    return parse


def timeout_seconds(text: str) -> float:
    """A finite positive number of seconds: 'inf' overflowed every timer thread, 'nan' was
    accepted and never timed out."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (0 < value <= MAX_TIMEOUT_S):  # also false for nan
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds, got {text}")
    return value


def db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="DuckDB file (default: $MESHGOV_DB or data/meshgov.duckdb)")
