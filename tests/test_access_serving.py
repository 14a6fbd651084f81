"""Local demo mode answers only local names: the `Host` check against DNS rebinding, and
`python -m catalog serve-check` reading the listen address the way Streamlit does."""

from __future__ import annotations

import pytest

from catalog import serving
from catalog.cli import main as catalog_main


@pytest.mark.parametrize(("header", "name"), [
    ("127.0.0.1:8501", "127.0.0.1"), ("localhost:8501", "localhost"), ("[::1]:8501", "::1"),
    ("localhost", "localhost"), ("::1", "::1"), ("localhost.:80", "localhost"),
    ("attacker.example:8501", "attacker.example"), ("", ""),
])
def test_host_name_drops_the_port(header, name):
    assert serving.host_name(header) == name, f"Host: {header!r}"


@pytest.mark.parametrize("header", ["127.0.0.1:8501", "localhost:8501", "[::1]:8501", "127.0.0.2",
                                    "LOCALHOST:8501"])
def test_loopback_hosts_are_served(header):
    assert serving.unsafe_host_reason(header) is None, f"{header!r} names this machine"


@pytest.mark.parametrize("header", ["attacker.example:8501", "attacker.example", "127.0.0.1.nip.io:8501",
                                    "0.0.0.0:8501", "192.168.1.20:8501", "localhost.attacker.example",
                                    "", None, "[::]:8501"])
def test_other_hosts_are_refused_naming_the_host(header):
    reason = serving.unsafe_host_reason(header)
    assert reason and "answers only requests addressed to this machine" in reason, \
        f"Host {header!r} must be refused (DNS rebinding): {reason}"
    assert (header or "(none)") in reason, "the refusal names the Host it saw"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder and an empty home: the config files serve-check reads by default."""
    home = tmp_path / "home"
    (home / ".streamlit").mkdir(parents=True)
    (tmp_path / "proj" / ".streamlit").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path / "proj")
    monkeypatch.delenv("STREAMLIT_SERVER_ADDRESS", raising=False)
    return tmp_path


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_serve_check_reads_the_project_config_then_the_users(project, capsys):
    _write(project / "proj/.streamlit/config.toml", '[server]\naddress = "127.0.0.1"\n')
    _write(project / "home/.streamlit/config.toml", '[server]\naddress = "0.0.0.0"\n')
    assert catalog_main(["serve-check"]) == 0, "the project's file wins over the user's"
    assert "ok: demo mode on loopback 127.0.0.1" in capsys.readouterr().out
    (project / "proj/.streamlit/config.toml").unlink()
    assert catalog_main(["serve-check"]) == 1, "then the user's file: 0.0.0.0 is refused"


def test_serve_check_honours_streamlit_server_address_like_streamlit(project, monkeypatch, capsys):
    _write(project / "proj/.streamlit/config.toml", '[server]\naddress = "127.0.0.1"\n')
    monkeypatch.setenv("STREAMLIT_SERVER_ADDRESS", "0.0.0.0")
    assert catalog_main(["serve-check"]) == 1, \
        "streamlit listens on $STREAMLIT_SERVER_ADDRESS over config.toml; so must the check"
    assert "refuses to serve on 0.0.0.0" in capsys.readouterr().err
    assert catalog_main(["serve-check", "--address", "127.0.0.1"]) == 0, "the flag wins over the env"


def test_serve_check_follows_env_indirection_and_refuses_no_address(project, monkeypatch):
    _write(project / "proj/.streamlit/config.toml", '[server]\naddress = "env:BIND_TO"\n')
    monkeypatch.setenv("BIND_TO", "0.0.0.0")
    assert catalog_main(["serve-check"]) == 1, "streamlit resolves env:NAME in config.toml"
    monkeypatch.setenv("BIND_TO", "::1")
    assert catalog_main(["serve-check"]) == 0
    _write(project / "proj/.streamlit/config.toml", '[server]\nport = 8501\n')
    assert catalog_main(["serve-check"]) == 1, "no address at all: streamlit listens everywhere"


@pytest.mark.parametrize("text", ['[server\naddress = "127.0.0.1"\n', 'server = 3\n',
                                  '[server]\naddress = 127\n', b'\xff\xfe'.decode("latin-1")])
def test_serve_check_says_which_config_file_is_broken(project, capsys, text):
    path = _write(project / "proj/.streamlit/config.toml", text)
    assert catalog_main(["serve-check"]) == 2, "a config file that cannot be read is a usage error"
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err, f"name the file, no traceback: {err}"
