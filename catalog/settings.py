"""Where things live: the DB file, the ODCS schemas, the sample data folder."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"


def data_dir() -> Path:
    return Path(os.environ.get("MESHGOV_DATA_DIR", PROJECT_ROOT / "data"))


def default_db_path() -> Path:
    """`MESHGOV_DB` wins, else `data/meshgov.duckdb` in the project."""
    env = os.environ.get("MESHGOV_DB")
    return Path(env) if env else data_dir() / "meshgov.duckdb"


def resolve_db_path(cli_value: str | None) -> Path:
    return Path(cli_value) if cli_value else default_db_path()


def odcs_schema_dirs() -> list[Path]:
    """Folders searched for the official ODCS JSON Schemas, first hit wins per version.

    `MESHGOV_ODCS_SCHEMAS` lets an organisation point at its own copy of the official
    schemas; the shared fixtures hold the official v3.0.0-v3.2.0 set on these machines.
    """
    dirs = []
    if os.environ.get("MESHGOV_ODCS_SCHEMAS"):
        dirs.append(Path(os.environ["MESHGOV_ODCS_SCHEMAS"]))
    dirs.append(SHARED_FIXTURES / "odcs" / "schema")
    return dirs


def config_dir() -> Path:
    """meshgov's per-user config folder (secrets that must stay out of the DB and git, such as
    the audit key): `MESHGOV_CONFIG_DIR`, else `$XDG_CONFIG_HOME/meshgov`, else `~/.config/meshgov`."""
    if os.environ.get("MESHGOV_CONFIG_DIR"):
        return Path(os.environ["MESHGOV_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "meshgov"
