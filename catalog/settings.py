"""Where things live: the DB file, the ODCS schemas, the sample data folder."""

from __future__ import annotations

import os
import tomllib
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


def settings_file() -> Path:
    """`MESHGOV_SETTINGS`, else `config/meshgov.toml` in the project (optional file)."""
    env = os.environ.get("MESHGOV_SETTINGS")
    return Path(env) if env else PROJECT_ROOT / "config" / "meshgov.toml"


class SettingsError(ValueError):
    """The settings file is unreadable or a value has the wrong shape (message says which)."""


def _settings() -> dict:
    path = settings_file()
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read the settings: {exc}") from exc


def data_roots(store: Path | None = None) -> tuple[list[Path], str]:
    """(folders meshgov may read data files from, where that list came from).

    First of: `MESHGOV_DATA_ROOTS` (folders separated by the OS path separator), `roots`
    in the `[data]` table of the settings file, else the folder holding the store in use
    (`data/` by default), which is where `seed` writes the demo data. Relative roots in the
    settings file are relative to that file's folder.
    """
    env = os.environ.get("MESHGOV_DATA_ROOTS", "")
    if env.strip():
        return [Path(r).expanduser() for r in env.split(os.pathsep) if r.strip()], "MESHGOV_DATA_ROOTS"
    path = settings_file()
    data = _settings().get("data", {})
    if "roots" in data:
        roots = data["roots"]
        if isinstance(roots, str):
            roots = [roots]
        if not isinstance(roots, list) or not all(isinstance(r, str) and r.strip() for r in roots):
            raise SettingsError(f"{path}: [data] roots must be a list of folder paths, got {roots!r}")
        return [(path.parent / Path(r).expanduser()) for r in roots], f"[data] roots in {path}"
    folder = (store or default_db_path()).parent
    return [folder], "default: the folder of the store; widen with MESHGOV_DATA_ROOTS or [data] roots"
