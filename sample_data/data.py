"""The rows of the seed mesh, generated with a fixed seed relative to an anchor hour.

Every timestamp is an offset back from `anchor` (the current UTC hour when seeding), so the
fresh products are fresh whenever the demo is seeded and the stale one is always ~9 days
old. Each product draws from its own random stream, so changing one product's generator
leaves the others' rows untouched. Products are derived from each other the way the story
goes: consent decides who is segmented, recommended and mailed; orders feed the RFM
features; sends feed the interactions.

Why one module past 400 lines: the products derive from each other in story order
(consent -> segments -> recommendations -> newsletter -> interactions) with one random
stream each; one file keeps that chain readable top to bottom.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa

from sample_data import vocab

SEED = 20261122
MINUTE, HOUR, DAY = 60, 3600, 86400

# Planted-defect parameters (see SCENARIO.md); the contracts' thresholds sit on the other side.
PREMIUM_SELECTION_RATE = {"female": 0.22, "male": 0.45, "non_binary": 0.30}
SKU_NULL_SHARE = 0.15
NON_CONSENTING_AUDIENCE_SHARE = 0.03
ORDERS_NEWEST_AGE_SECONDS = 9 * DAY + 3 * HOUR

N_USERS = 5_000
N_ORDERS = 20_000
N_PRODUCTS = 200
N_CAMPAIGNS = 12
RECOMMENDATIONS_PER_USER = 5
CONSENT_RATES = {"ai_recommendations": 0.72, "newsletter": 0.68, "analytics": 0.84}

TS = pa.timestamp("us")  # naive, UTC by convention (as the store keeps its own times)
MONEY = pa.decimal128(12, 2)
PRICE = pa.decimal128(10, 2)


def _rng(stream: int) -> np.random.Generator:
    return np.random.default_rng([SEED, stream])


@dataclass
class Clock:
    """Turns 'seconds before the anchor' into UTC timestamps."""

    anchor: datetime

    def timestamps(self, seconds_before) -> pa.Array:
        base = np.datetime64(self.anchor.replace(tzinfo=None), "us")
        micros = (np.asarray(seconds_before, dtype=np.float64) * 1e6).astype(np.int64)
        return pa.array(base - micros.astype("timedelta64[us]"), type=TS)

    def days_before(self, days) -> pa.Array:
        today = np.datetime64(self.anchor.date(), "D")
        return pa.array(today - np.asarray(days, dtype=np.int64).astype("timedelta64[D]"), type=pa.date32())


def recent_offsets(rng: np.random.Generator, n: int, newest: float, oldest: float) -> np.ndarray:
    """n offsets in [newest, oldest] seconds, one exactly at `newest`: the dataset's newest
    row then has a known age, so freshness never depends on the luck of the draw."""
    offsets = rng.uniform(newest, oldest, n)
    offsets[rng.integers(n)] = newest
    return offsets


def _money(cents: np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.array([Decimal(int(c)).scaleb(-2) for c in cents], type=type_)


@dataclass
class Users:
    table: pa.Table
    ids: np.ndarray
    emails: np.ndarray
    genders: np.ndarray
    countries: np.ndarray
    age_bands: np.ndarray
    signup_offsets: np.ndarray


def users(clock: Clock) -> Users:
    rng = _rng(1)
    n = N_USERS
    ids = np.array([f"u-{i:05d}" for i in range(1, n + 1)])
    genders = rng.choice(vocab.GENDERS, n, p=[0.49, 0.48, 0.03])
    female_names = rng.choice(vocab.FEMALE_FIRST_NAMES, n)
    male_names = rng.choice(vocab.MALE_FIRST_NAMES, n)
    non_binary_pick = rng.random(n) < 0.5
    first = np.where((genders == "female") | ((genders == "non_binary") & non_binary_pick),
                     female_names, male_names)
    last = rng.choice(vocab.LAST_NAMES, n)
    ages_days = rng.integers(18 * 365 + 5, 80 * 365, n)
    birth_years = [(clock.anchor - timedelta(days=int(d))).year for d in ages_days]
    emails = _emails(rng, first, last, birth_years)
    country_codes = list(vocab.COUNTRIES)
    weights = np.array([vocab.COUNTRIES[c][0] for c in country_codes])
    countries = rng.choice(country_codes, n, p=weights / weights.sum())
    phones = [f"{vocab.COUNTRIES[c][1]} {rng.integers(1_000_000, 9_999_999)}" for c in countries]
    phone_missing = rng.random(n) < 0.07  # phone is optional at signup
    signup_offsets = recent_offsets(rng, n, newest=40 * MINUTE, oldest=1100 * DAY)
    table = pa.table({
        "user_id": pa.array(ids, pa.string()),
        "email": pa.array(emails, pa.string()),
        "full_name": pa.array([f"{f} {la}" for f, la in zip(first, last, strict=True)], pa.string()),
        "birth_date": clock.days_before(ages_days),
        "phone": pa.array([None if m else p for p, m in zip(phones, phone_missing, strict=True)], pa.string()),
        "country": pa.array(countries, pa.string()),
        "signup_at": clock.timestamps(signup_offsets),
    })
    return Users(table, ids, np.array(emails), genders, countries,
                 _age_bands(ages_days / 365.25), signup_offsets)


def _emails(rng: np.random.Generator, first, last, birth_years) -> list[str]:
    """first.last[yy]@domain, made unique the way mail providers do: by a number suffix."""
    seen: set[str] = set()
    emails = []
    for f, la, year in zip(first, last, birth_years, strict=True):
        local = f"{f}.{la}".lower().replace(" ", "")
        if rng.random() < 0.4:
            local += f"{year % 100:02d}"
        domain = vocab.EMAIL_DOMAINS[rng.integers(len(vocab.EMAIL_DOMAINS))]
        candidate, k = f"{local}@{domain}", 1
        while candidate in seen:
            k += 1
            candidate = f"{local}{k}@{domain}"
        seen.add(candidate)
        emails.append(candidate)
    return emails


def _age_bands(ages: np.ndarray) -> np.ndarray:
    edges = np.array([25, 35, 45, 55, 65])
    return np.array(vocab.AGE_BANDS)[np.searchsorted(edges, ages, side="right")]


@dataclass
class Consent:
    table: pa.Table
    granted: dict[str, np.ndarray]  # purpose -> bool per user (index as Users.ids)


def consent(clock: Clock, people: Users) -> Consent:
    rng = _rng(2)
    n = len(people.ids)
    granted = {p: rng.random(n) < rate for p, rate in CONSENT_RATES.items()}
    # A consent is updated some time between signup and now.
    updated = {p: rng.uniform(25 * MINUTE, np.maximum(people.signup_offsets, 26 * MINUTE))
               for p in vocab.CONSENT_PURPOSES}
    updated["newsletter"][rng.integers(n)] = 25 * MINUTE
    purposes = list(vocab.CONSENT_PURPOSES)
    table = pa.table({
        "user_id": pa.array(np.repeat(people.ids, len(purposes)), pa.string()),
        "purpose": pa.array(np.tile(purposes, n), pa.string()),
        "granted": pa.array(np.stack([granted[p] for p in purposes], axis=1).ravel(), pa.bool_()),
        "updated_at": clock.timestamps(np.stack([updated[p] for p in purposes], axis=1).ravel()),
    })
    return Consent(table, granted)


@dataclass
class Catalogue:
    table: pa.Table
    skus: np.ndarray
    price_cents: np.ndarray


def products(clock: Clock) -> Catalogue:
    rng = _rng(3)
    categories = list(vocab.PRODUCT_ITEMS)
    combos = [(a, m, item, cat) for cat in categories for item in vocab.PRODUCT_ITEMS[cat]
              for a in vocab.PRODUCT_ADJECTIVES for m in vocab.PRODUCT_MATERIALS]
    picked = rng.choice(len(combos), N_PRODUCTS, replace=False)
    rows = [combos[i] for i in picked]
    base_price = {"apparel": 2500, "home": 1800, "outdoor": 3500, "electronics": 5900, "beauty": 900}
    price_cents = np.array([int(base_price[r[3]] * rng.uniform(0.5, 2.5)) // 10 * 10 + 9 for r in rows])
    skus = np.array([f"SKU-{10001 + i}" for i in range(N_PRODUCTS)])
    table = pa.table({
        "sku": pa.array(skus, pa.string()),
        "product_name": pa.array([f"{a} {m} {item}" for a, m, item, _ in rows], pa.string()),
        "category": pa.array([r[3] for r in rows], pa.string()),
        "price": _money(price_cents, PRICE),
        "updated_at": clock.timestamps(recent_offsets(rng, N_PRODUCTS, 55 * MINUTE, 60 * DAY)),
    })
    return Catalogue(table, skus, price_cents)


@dataclass
class Orders:
    table: pa.Table
    user_index: np.ndarray
    offsets: np.ndarray
    amount_cents: np.ndarray


def orders(clock: Clock, people: Users, catalogue: Catalogue) -> Orders:
    """A year of orders that stops ~9 days before the anchor: the planted stale product."""
    rng = _rng(4)
    newest, oldest = ORDERS_NEWEST_AGE_SECONDS, 365 * DAY
    eligible = np.flatnonzero(people.signup_offsets > newest + HOUR)  # signed up before the gap
    activity = rng.gamma(2.0, 1.0, len(eligible))
    user_index = rng.choice(eligible, N_ORDERS, p=activity / activity.sum())
    latest_possible = np.minimum(people.signup_offsets[user_index], oldest)
    offsets = rng.uniform(newest, latest_possible)
    offsets[rng.integers(N_ORDERS)] = newest
    order = np.argsort(-offsets, kind="stable")  # ids ascend with time
    user_index, offsets = user_index[order], offsets[order]
    sku_index = rng.choice(len(catalogue.skus), N_ORDERS)
    quantity = rng.choice([1, 1, 1, 1, 2, 2, 3, 4], N_ORDERS)
    amount_cents = quantity * catalogue.price_cents[sku_index]
    currency = [vocab.COUNTRIES[c][2] for c in people.countries[user_index]]
    table = pa.table({
        "order_id": pa.array([f"ord-{i:06d}" for i in range(1, N_ORDERS + 1)], pa.string()),
        "user_id": pa.array(people.ids[user_index], pa.string()),
        "sku": pa.array(catalogue.skus[sku_index], pa.string()),
        "quantity": pa.array(quantity, pa.int32()),
        "amount": _money(amount_cents, MONEY),
        "currency": pa.array(currency, pa.string()),
        "ordered_at": clock.timestamps(offsets),
    })
    return Orders(table, user_index, offsets, amount_cents)


@dataclass
class Segments:
    features: pa.Table
    assignments: pa.Table
    predictions: pa.Table
    user_index: np.ndarray
    segment_of: np.ndarray


def segments(clock: Clock, people: Users, consents: Consent, history: Orders) -> Segments:
    """RFM features, segments and the premium-selection model, for users consenting to analytics."""
    rng = _rng(5)
    members = np.flatnonzero(consents.granted["analytics"])
    n_users = len(people.ids)
    frequency = np.bincount(history.user_index, minlength=n_users)
    monetary = np.bincount(history.user_index, weights=history.amount_cents, minlength=n_users)
    last_order = np.full(n_users, np.inf)
    np.minimum.at(last_order, history.user_index, history.offsets)
    recency = np.where(np.isfinite(last_order), np.floor(last_order / DAY), -1).astype(np.int64)

    freq, rec = frequency[members], recency[members]
    segment_of = np.select(
        [freq == 0, (rec <= 30) & (freq >= 6), freq >= 4, rec <= 60, rec <= 180],
        ["no_orders", "champions", "loyal", "potential", "at_risk"], default="dormant")
    ids = people.ids[members]
    genders, bands = people.genders[members], people.age_bands[members]
    features = pa.table({
        "user_id": pa.array(ids, pa.string()),
        "recency_days": pa.array([None if r < 0 else int(r) for r in rec], pa.int32()),
        "frequency": pa.array(freq, pa.int32()),
        "monetary": _money(monetary[members].astype(np.int64), MONEY),
        "country": pa.array(people.countries[members], pa.string()),
        "age_band": pa.array(bands, pa.string()),
        "gender": pa.array(genders, pa.string()),
    })
    assignments = pa.table({
        "user_id": pa.array(ids, pa.string()),
        "segment_id": pa.array(segment_of, pa.string()),
        "model_version": pa.array(np.full(len(ids), "rfm-segmenter-2.3.0"), pa.string()),
        "assigned_at": clock.timestamps(2 * HOUR + rng.uniform(0, 10 * MINUTE, len(ids))),
    })
    selected, score = _premium_selection(rng, genders)
    predictions = pa.table({
        "user_id": pa.array(ids, pa.string()),
        "gender": pa.array(genders, pa.string()),
        "age_band": pa.array(bands, pa.string()),
        "selected_for_premium": pa.array(selected, pa.bool_()),
        "score": pa.array(np.round(score, 4), pa.float64()),
        "predicted_at": clock.timestamps(HOUR + rng.uniform(0, 10 * MINUTE, len(ids))),
    })
    return Segments(features, assignments, predictions, members, segment_of)


def _premium_selection(rng: np.random.Generator, genders: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Selection = score >= 0.5, with exactly the planted rate per gender (the bias defect)."""
    selected = np.zeros(len(genders), dtype=bool)
    for gender, rate in PREMIUM_SELECTION_RATE.items():
        group = np.flatnonzero(genders == gender)
        chosen = rng.choice(group, round(rate * len(group)), replace=False)
        selected[chosen] = True
    score = np.where(selected, rng.uniform(0.5, 1.0, len(genders)), rng.uniform(0.0, 0.5, len(genders)))
    return selected, score


def recommendations(clock: Clock, people: Users, consents: Consent, segs: Segments,
                    catalogue: Catalogue) -> pa.Table:
    """Top-5 products per user who consented to AI recommendations (and so was segmented).
    ~15% of product_sku values are null: the planted null spike."""
    rng = _rng(6)
    in_segments = consents.granted["ai_recommendations"][segs.user_index]
    users_idx = segs.user_index[in_segments]
    segment_of = segs.segment_of[in_segments]
    k = RECOMMENDATIONS_PER_USER
    n_rows = len(users_idx) * k
    picks = np.argsort(rng.random((len(users_idx), len(catalogue.skus))), axis=1)[:, :k]
    skus = catalogue.skus[picks].ravel().astype(object)
    skus[rng.choice(n_rows, round(SKU_NULL_SHARE * n_rows), replace=False)] = None
    scores = -np.sort(-rng.uniform(0.05, 0.99, (len(users_idx), k)), axis=1)
    batch = 90 * MINUTE + rng.uniform(0, 15 * MINUTE, len(users_idx))
    return pa.table({
        "user_id": pa.array(np.repeat(people.ids[users_idx], k), pa.string()),
        "product_sku": pa.array(skus, pa.string()),
        "rank": pa.array(np.tile(np.arange(1, k + 1), len(users_idx)), pa.int32()),
        "score": pa.array(np.round(scores.ravel(), 4), pa.float64()),
        "segment_id": pa.array(np.repeat(segment_of, k), pa.string()),
        "generated_at": clock.timestamps(np.repeat(batch, k)),
    })


@dataclass
class Newsletter:
    sends: pa.Table
    audience: pa.Table
    interactions: pa.Table


def newsletter(clock: Clock, people: Users, consents: Consent) -> Newsletter:
    """Weekly personalised newsletters to an audience snapshot, and what recipients did.

    The audience should hold only users who consented to AI recommendations; ~3% did not
    (the planted consent defect). Their flags are copied from the consent records as-is.
    """
    rng = _rng(7)
    send_offsets = np.array([2 * DAY + 7 * DAY * (N_CAMPAIGNS - 1 - i) for i in range(N_CAMPAIGNS)])
    eligible = consents.granted["newsletter"] & (people.signup_offsets > send_offsets.max() + DAY)
    consenting = np.flatnonzero(eligible & consents.granted["ai_recommendations"])
    refusing = np.flatnonzero(eligible & ~consents.granted["ai_recommendations"])
    n_leak = round(NON_CONSENTING_AUDIENCE_SHARE / (1 - NON_CONSENTING_AUDIENCE_SHARE) * len(consenting))
    members = np.sort(np.concatenate([consenting, rng.choice(refusing, n_leak, replace=False)]))
    snapshot_offset = send_offsets.min() + HOUR
    audience = pa.table({
        "user_id": pa.array(people.ids[members], pa.string()),
        "consent_ai_recommendations": pa.array(consents.granted["ai_recommendations"][members], pa.bool_()),
        "consent_newsletter": pa.array(consents.granted["newsletter"][members], pa.bool_()),
        "snapshot_at": clock.timestamps(np.full(len(members), snapshot_offset)),
    })

    recipient = np.tile(members, N_CAMPAIGNS)
    campaign = np.repeat(np.arange(N_CAMPAIGNS), len(members))
    sent_offset = send_offsets[campaign] - rng.uniform(0, 30 * MINUTE, len(recipient))
    n_sends = len(recipient)
    sends = pa.table({
        "send_id": pa.array([f"snd-{i:06d}" for i in range(1, n_sends + 1)], pa.string()),
        "user_id": pa.array(people.ids[recipient], pa.string()),
        "email": pa.array(people.emails[recipient], pa.string()),
        "campaign_id": pa.array([f"cmp-{101 + c:04d}" for c in campaign], pa.string()),
        "sent_at": clock.timestamps(sent_offset),
    })
    return Newsletter(sends, audience, _interactions(clock, rng, people, recipient, sent_offset))


def _interactions(clock: Clock, rng: np.random.Generator, people: Users,
                  recipient: np.ndarray, sent_offset: np.ndarray) -> pa.Table:
    """Opens, clicks and conversions after each send; events not yet happened are dropped.
    recipient_email carries the address: the planted unclassified PII column."""
    n = len(recipient)
    opened = rng.random(n) < 0.62
    n_opens = np.where(opened, 1 + rng.poisson(1.4, n), 0)
    send_of_open = np.repeat(np.arange(n), n_opens)
    # Most opens come within hours; a tail trickles in over the following days.
    late = rng.random(len(send_of_open)) < 0.1
    open_delay = np.where(late, rng.uniform(0, 3 * DAY, len(send_of_open)),
                          rng.exponential(6 * HOUR, len(send_of_open)))
    open_at = sent_offset[send_of_open] - open_delay
    first_open = np.r_[True, send_of_open[1:] != send_of_open[:-1]]
    clicked = first_open & (rng.random(len(send_of_open)) < 0.35)
    click_src = np.flatnonzero(clicked)
    click_at = open_at[click_src] - rng.exponential(10 * MINUTE, len(click_src))
    converted = rng.random(len(click_src)) < 0.12
    convert_at = click_at[converted] - rng.exponential(30 * MINUTE, converted.sum())

    send_index = np.concatenate([send_of_open, send_of_open[click_src], send_of_open[click_src][converted]])
    offsets = np.concatenate([open_at, click_at, convert_at])
    kinds = np.repeat(np.array(vocab.EVENT_TYPES), [len(open_at), len(click_at), len(convert_at)])
    happened = offsets > 5 * MINUTE
    send_index, offsets, kinds = send_index[happened], offsets[happened], kinds[happened]
    order = np.argsort(-offsets, kind="stable")
    send_index, offsets, kinds = send_index[order], offsets[order], kinds[order]
    users_idx = recipient[send_index]
    return pa.table({
        "event_id": pa.array([f"evt-{i:06d}" for i in range(1, len(order) + 1)], pa.string()),
        "send_id": pa.array([f"snd-{i + 1:06d}" for i in send_index], pa.string()),
        "user_id": pa.array(people.ids[users_idx], pa.string()),
        "event_type": pa.array(kinds, pa.string()),
        "event_at": clock.timestamps(offsets),
        "recipient_email": pa.array(people.emails[users_idx], pa.string()),
    })


def build(anchor: datetime) -> dict[str, dict[str, pa.Table]]:
    """product_id -> dataset name -> rows, for the eight products of the scenario."""
    clock = Clock(anchor)
    people = users(clock)
    consents = consent(clock, people)
    catalogue = products(clock)
    history = orders(clock, people, catalogue)
    segs = segments(clock, people, consents, history)
    mail = newsletter(clock, people, consents)
    return {
        "customer-profiles": {"users": people.table},
        "customer-consent": {"consent": consents.table},
        "user-segments": {"features": segs.features, "segment_assignments": segs.assignments,
                          "predictions": segs.predictions},
        "product-recommendations": {"recommendations": recommendations(clock, people, consents, segs, catalogue)},
        "newsletter-sends": {"sends": mail.sends, "audience": mail.audience},
        "newsletter-interactions": {"interactions": mail.interactions},
        "commerce-orders": {"orders": history.table},
        "commerce-products": {"products": catalogue.table},
    }
