"""The consent history of the seed mesh, and the contract declarations that point at it.

`customer-consent` holds the current decision per customer and purpose (`consent`); this
module adds the change history behind it (`consent_events`: who decided what, when, through
which system) and the custom properties that tell meshgov which dataset holds consent and
which purposes each personalised output needs (read by checks.consent).

The history agrees with the current decisions (the last event of a customer and purpose is
the `consent` row, at its `updated_at`) and with the outputs: everyone in the recommendations
and the consenting audience held their consents since signup, so the only violations are the
planted ones, the ~70 audience members without AI-recommendation consent (SCENARIO.md,
defect 5). About half of those opted in at signup and withdrew later: their sends after the
withdrawal are the "consent withdrawn before a later send" findings; the others never opted in.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from sample_data.contracts import Column, Dataset

SEED_STREAM = 21
SOURCE_SYSTEMS_LATER = ("preference_center", "crm_import", "support_ticket", "unsubscribe_link")
LATE_OPT_IN_SHARE = 0.25      # of the current opt-ins outside every output: declined at signup first
EARLY_OPT_IN_SHARE = 0.5      # of the current refusals: opted in at signup, withdrew later

CONSENT_EVENTS = Dataset(
    "consent_events", "Every consent decision as the CRM recorded it: the history behind the "
    "current decisions.", "One row per decision",
    (
        Column("event_id", "string", "VARCHAR", "Id of the decision record.", "internal", required=True,
               unique=True, key_position=1),
        Column("user_id", "string", "VARCHAR", "The customer, as user_id in customer-profiles.",
               "internal", required=True),
        Column("purpose", "string", "VARCHAR", "Processing purpose the decision applies to.", "public",
               required=True),
        Column("decision", "string", "VARCHAR", "granted or withdrawn.", "internal", required=True),
        Column("decided_at", "timestamp", "TIMESTAMP", "When the customer decided (UTC).", "internal",
               required=True),
        Column("source_system", "string", "VARCHAR", "System that captured the decision.", "internal",
               required=True),
    ),
)

# customProperties of the consent product: where consent records are and what each column means.
SOURCE_PROPERTY = ("meshgov.consent.source", {
    "dataset": "consent_events", "userKey": "user_id", "purpose": "purpose", "decision": "decision",
    "decidedAt": "decided_at", "sourceSystem": "source_system"})


def requires(*outputs: tuple[str, tuple[str, ...], str, str]) -> tuple[str, list[dict]]:
    """customProperty of a personalised output: (dataset, purposes, user key, time of use) each."""
    return ("meshgov.consent.requires", [
        {"dataset": dataset, "purposes": list(purposes), "userKey": user_key, "usedAt": used_at}
        for dataset, purposes, user_key, used_at in outputs])


def add_history(tables: dict[str, dict[str, pa.Table]]) -> None:
    """Add `consent_events` to the consent product of `tables` (data.build's result)."""
    tables["customer-consent"]["consent_events"] = events(tables)


_EVENTS_SQL = """
    WITH uses AS (
        SELECT user_id, min(used_at) AS first_use FROM (
            SELECT user_id, generated_at AS used_at FROM recommendations UNION ALL
            SELECT user_id, snapshot_at FROM audience UNION ALL
            SELECT user_id, sent_at FROM sends) GROUP BY user_id),
    decided AS (
        SELECT c.user_id, c.purpose, c.granted, c.updated_at, c.draw, c.later_system,
               CASE WHEN c.granted THEN CASE WHEN uses.user_id IS NOT NULL OR c.draw >= $late THEN 'granted'
                                             ELSE 'withdrawn' END
                    -- in the audience without consent at snapshot time: never opted in
                    WHEN a.user_id IS NOT NULL AND c.updated_at > (SELECT min(snapshot_at) FROM audience)
                         THEN 'withdrawn'
                    WHEN c.draw < $early THEN 'granted' ELSE 'withdrawn' END AS first_decision,
               -- used before the account existed (the newest signup vs the recommendation batch):
               -- the opt-in came with the newsletter sign-up form, before the account
               CASE WHEN c.granted AND uses.first_use < u.signup_at THEN uses.first_use - INTERVAL 1 HOUR
                    ELSE u.signup_at END AS first_at,
               CASE WHEN c.granted AND uses.first_use < u.signup_at THEN 'landing_page'
                    ELSE 'web_signup' END AS first_source
        FROM current_consent c JOIN users u USING (user_id)
        LEFT JOIN uses USING (user_id)
        LEFT JOIN (SELECT DISTINCT user_id FROM audience) a USING (user_id)),
    history AS (
        SELECT user_id, purpose, first_decision AS decision, first_at AS decided_at, first_source AS source_system
        FROM decided WHERE updated_at - first_at > INTERVAL 60 SECOND
        UNION ALL
        SELECT user_id, purpose, CASE WHEN granted THEN 'granted' ELSE 'withdrawn' END, updated_at,
               CASE WHEN updated_at - first_at > INTERVAL 60 SECOND THEN later_system ELSE 'web_signup' END
        FROM decided)
    SELECT printf('cev-%06d', row_number() OVER (ORDER BY decided_at, user_id, purpose)) AS event_id,
           user_id, purpose, decision, decided_at, source_system
    FROM history ORDER BY decided_at, user_id, purpose"""


def events(tables: dict[str, dict[str, pa.Table]]) -> pa.Table:
    rng = np.random.default_rng([20261122, SEED_STREAM])
    current = tables["customer-consent"]["consent"]
    current = current.append_column("draw", pa.array(rng.random(current.num_rows))).append_column(
        "later_system", pa.array(rng.choice(SOURCE_SYSTEMS_LATER, current.num_rows), pa.string()))
    con = duckdb.connect()
    try:
        for name, table in {"current_consent": current, "users": tables["customer-profiles"]["users"],
                            "audience": tables["newsletter-sends"]["audience"],
                            "sends": tables["newsletter-sends"]["sends"],
                            "recommendations": tables["product-recommendations"]["recommendations"]}.items():
            con.register(name, table)
        found = con.sql(_EVENTS_SQL, params={"late": LATE_OPT_IN_SHARE, "early": EARLY_OPT_IN_SHARE}).to_arrow_table()
    finally:
        con.close()
    return found.cast(pa.schema([("event_id", pa.string()), ("user_id", pa.string()), ("purpose", pa.string()),
                                 ("decision", pa.string()), ("decided_at", pa.timestamp("us")),
                                 ("source_system", pa.string())]))
