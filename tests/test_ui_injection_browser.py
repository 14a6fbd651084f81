"""Browser: nothing a user, a contract, a policy, a lineage event or a URL supplies is rendered
as markup (issue 8, item 4).

A link, an image, a `<script>`, an `<img onerror>` and a bare URL are injected through the
query parameters (`/checks?product=`, `/catalog?product=`, `/lineage?node=`) and through stored
text (product name, domain, purpose, usage, limitations; a policy's title and description and
the check reason it produces; lineage job and dataset names). Headless Chromium opens each page;
every request is watched and the DOM of every frame searched: no element may link to or load
from the injected host, no injected script may run, and no request may leave for it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from catalog import access, lineage
from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import runner
from tests.browser_support import ARTIFACTS, chromium_page, require_chromium, streamlit_server
from tests.fixtures.lineage import mesh
from tests.test_checks_engine_fixtures import build_mesh, fixture_text, orders_frame

EVIL = "evil.example"


def payload(field: str) -> str:
    """Every kind of markup at once, each pointing at the injected host under `field`."""
    return (f"[Session expired](https://{EVIL}/{field}/login) ![t](https://{EVIL}/{field}/p.png) "
            f"<script>window.__pwned='{field}'</script> "
            f"<img src=x onerror=\"window.__pwned='{field}'\"> https://{EVIL}/{field}/bare")


POLICY = f"""-- id: injected-title
-- title: {payload('policy-title')}
-- severity: warning
-- description: {payload('policy-description')}
-- applies_to: all
SELECT p.product_id, p.product_id AS target, p.name AS reason FROM products AS p
"""

# Every element that would link to or load from the injected host, or run injected code.
DOM_PROBE = f"""() => {{
  const hits = [...document.querySelectorAll('[href*="{EVIL}"], [src*="{EVIL}"], [*|href*="{EVIL}"], '
                                             + '[srcset*="{EVIL}"], [onerror], [onload]')]
    .map(e => e.outerHTML.slice(0, 160));
  // An injected <script> holds the payload's own code; the lineage drawing's script holds the
  // names as JSON strings with < and > escaped (\\u003c), which is data, so a script counts when
  // its text is the payload's code or carries the payload's tag unescaped.
  const scripts = [...document.querySelectorAll('script')]
    .filter(s => s.textContent.trim().startsWith('window.__pwned') || s.textContent.includes('<script>window.__pwned'))
    .map(s => s.outerHTML.slice(0, 160));
  return {{hits, scripts, pwned: window.__pwned ?? null}};
}}"""


@pytest.fixture(scope="module")
def hostile_mesh(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("hostile")
    q = json.dumps
    text = fixture_text("shop.yaml", **{
        "dataProduct: Shop Orders": (f"dataProduct: {q(payload('name'))}\ndescription:\n"
                                     f"  purpose: {q(payload('purpose'))}\n  usage: {q(payload('usage'))}\n"
                                     f"  limitations: {q(payload('limitations'))}"),
        "domain: Shop": f"domain: {q(payload('domain'))}",
    })
    db = build_mesh(tmp, {"shop": text}, {"orders": orders_frame()})
    policies = tmp / "policies"
    policies.mkdir()
    (policies / "injected.sql").write_text(POLICY)
    env = {"MESHGOV_DB": str(db), "MESHGOV_DATA_DIR": str(tmp), "MESHGOV_POLICY_DIR": str(policies)}
    job = f"job {payload('job')}"
    events = [mesh.run_event(job, [mesh.dataset(("file", f"/in/{payload('dataset')}"))],
                             [mesh.dataset(("file", "/out/clean"))])]
    with connect(db) as con:
        product_id = con.execute("SELECT product_id FROM products").fetchone()[0]
        report = ingest_paths(con, [mesh.write_events(tmp, events)], actor="tests")
        assert not report.rejected, report.rejected
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the runner reads the data roots and the policy pack from here
    try:
        runner.run_checks(str(db), user=access.demo_user("admin"))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    with connect(db) as con:
        reasons = con.execute("SELECT reason FROM check_results WHERE reason LIKE '%evil.example%'").fetchall()
        graph = lineage.load_graph(con)
    job_id = next(n for n, attrs in graph.flow.nodes(data=True) if attrs.get("kind") == "job")
    assert reasons, "the injected policy must put the product name into a stored check reason"
    return {**env, "product_id": product_id, "job_id": job_id}


def _inspect(page) -> list[str]:
    problems = []
    for frame in page.frames:
        try:
            found = frame.evaluate(DOM_PROBE)
        except Exception:  # noqa: BLE001 - a frame that navigated away has nothing left to probe
            continue
        if found["hits"] or found["scripts"] or found["pwned"]:
            problems.append(f"{frame.url[:80]}: {found}")
    return problems


@pytest.mark.browser
def test_injected_markup_stays_text_on_every_page(hostile_mesh):
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    product = hostile_mesh["product_id"]
    reflected = payload("query")
    visits = [
        ("/", "Not compliant"),
        (f"/catalog?product={quote(product)}", "window.__pwned='usage'"),
        (f"/catalog?product={quote(reflected)}", "in the catalog"),
        (f"/checks?product={quote(product)}", "Inspect a result"),
        (f"/checks?product={quote(reflected)}", "Unknown product in the link"),
        (f"/lineage?node={quote(reflected)}", "Deep link"),
        ("/lineage?node=" + quote(hostile_mesh["job_id"]), "window.__pwned='job'"),
    ]
    env = {k: v for k, v in hostile_mesh.items() if k.startswith("MESHGOV_")}
    empty_secrets = Path(hostile_mesh["MESHGOV_DB"]).parent / "no-auth.toml"
    empty_secrets.write_text("# no [auth]: demo mode\n")
    leaked: list[str] = []
    problems: dict[str, list[str]] = {}
    with streamlit_server(env=env, extra_args=["--secrets.files", str(empty_secrets)]) as url, \
            chromium_page() as page:
        def watch(route):
            if (urlsplit(route.request.url).hostname or "").endswith(EVIL):
                leaked.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        page.set_default_timeout(60_000)
        page.context.route("**/*", watch)
        for path, ready in visits:
            page.goto(url + path)
            page.get_by_text(ready, exact=False).first.wait_for(timeout=60_000)
            if path.startswith("/checks?product=" + quote(product)):
                page.get_by_text("Policies", exact=True).first.click()
                page.get_by_text("window.__pwned='policy-title'", exact=False).first.click()
            time.sleep(2.0)  # let images, iframes and plotly settle
            found = _inspect(page)
            if found:
                problems[path] = found
            name = path.strip("/").split("?")[0] or "overview"
            if path.startswith(f"/checks?product={quote(reflected)}"):
                page.screenshot(path=str(ARTIFACTS / "injection-checks-reflected.png"), full_page=True)
            elif path == f"/catalog?product={quote(product)}":
                page.screenshot(path=str(ARTIFACTS / "injection-catalog-stored.png"), full_page=True)
            elif path.startswith("/lineage?node=job"):
                page.screenshot(path=str(ARTIFACTS / f"injection-{name}-stored.png"))

        # The reflected link of the issue: shown as its text, inside the warning, not a link.
        page.goto(url + "/checks?product=" + quote("[x](https://evil.example)"))
        warning = page.get_by_text("Unknown product in the link", exact=False).first
        warning.wait_for(timeout=60_000)
        warning_text = warning.inner_text().replace("\u2060", "")  # the joiner inside URLs
        links_in_alerts = page.locator('[data-testid="stAlert"] a').count()
    assert not leaked, f"requests left for the injected host: {leaked}"
    assert not problems, f"injected markup became elements or ran: {json.dumps(problems, indent=1)}"
    assert "[x](https://evil.example)" in warning_text, f"the link text is shown as text: {warning_text!r}"
    assert links_in_alerts == 0, "no link inside the app's own warning box"
