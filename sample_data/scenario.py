"""The eight products of the seed mesh and what their contracts promise.

Customer -> AI/ML -> Marketing -> back to Customer, plus Commerce. Every rule here passes on
the generated data except the planted defects (SCENARIO.md lists them):
- user-segments: the premium selection's gender disparity, found by the bias audit of the
  premium-propensity model (sample_data.models; no longer a hand-written SQL rule),
- product-recommendations: `recommendations_product_sku_nulls` (null spike) and the
  1.0.0 -> 1.1.0 breaking change (see RECOMMENDATIONS_V1),
- newsletter-sends: consent (checks.consent: non-consenting users in the audience and sends),
- newsletter-interactions: `recipient_email` classified internal without a pii tag,
- commerce-orders: the `latency` SLA on orders.ordered_at (stale).
"""

from __future__ import annotations

from dataclasses import replace

from sample_data import consent, vocab
from sample_data.contracts import (
    Column,
    Dataset,
    Product,
    duplicates,
    key,
    no_missing,
    null_share_below,
    pattern,
    pii,
    rows_above,
    rows_between,
    sql,
    valid_values,
)

TS = "TIMESTAMP"  # UTC, without zone: fetching TIMESTAMPTZ into Python needs pytz
EMAIL_PATTERN = r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"
COUNTRY_CODES = tuple(vocab.COUNTRIES)


def _user_ref(description: str = "The customer, as user_id in customer-profiles.") -> Column:
    return Column("user_id", "string", "VARCHAR", description, "internal", required=True)


def _timestamp(name: str, description: str) -> Column:
    return Column(name, "timestamp", TS, description, "internal", required=True)


def _country(rule_id: str) -> Column:
    return Column("country", "string", "VARCHAR", "ISO 3166-1 alpha-2 country of residence.",
                  "internal", required=True, quality=(valid_values(rule_id, COUNTRY_CODES),))


USERS = Dataset(
    "users", "One row per registered customer: identity and contact details.",
    "One row per customer account",
    (
        key("users", "user_id", "Pseudonymous customer id used across the mesh.",
            quality=(pattern("users_user_id_format", r"^u-[0-9]{5}$", "Ids look like u-00042."),)),
        pii("email", "string", "VARCHAR", "Login and contact email address.", required=True,
            unique=True, string_format="email",
            quality=(pattern("users_email_format", EMAIL_PATTERN, "A syntactically valid email."),
                     duplicates("users_email_unique"))),
        pii("full_name", "string", "VARCHAR", "First and last name as entered at signup.",
            required=True, quality=(no_missing("users_full_name_present"),)),
        pii("birth_date", "date", "DATE", "Date of birth; customers are adults.", required=True),
        pii("phone", "string", "VARCHAR", "Mobile number in international format; optional at signup.",
            quality=(null_share_below("users_phone_completeness", 15,
                                      "Most customers give a phone number."),)),
        _country("users_country_valid"),
        _timestamp("signup_at", "When the account was created (UTC)."),
    ),
    timestamp="signup_at",
    quality=(rows_above("users_row_count", 1000),),
)

CONSENT = Dataset(
    "consent", "Current consent decision per customer and processing purpose.",
    "One row per customer and purpose",
    (
        Column("user_id", "string", "VARCHAR", "The customer, as user_id in customer-profiles.",
               "internal", required=True, key_position=1),
        Column("purpose", "string", "VARCHAR", "Processing purpose the decision applies to.",
               "public", required=True, key_position=2,
               quality=(valid_values("consent_purpose_valid", vocab.CONSENT_PURPOSES),)),
        Column("granted", "boolean", "BOOLEAN", "True when the customer opted in to the purpose.",
               "internal", required=True),
        _timestamp("updated_at", "When the customer last changed this decision (UTC)."),
    ),
    timestamp="updated_at",
    quality=(
        rows_above("consent_row_count", 1000),
        sql("consent_one_decision_per_purpose",
            "SELECT count(*) FROM (SELECT user_id, purpose FROM consent "
            "GROUP BY user_id, purpose HAVING count(*) > 1)",
            "One current decision per customer and purpose.", dimension="uniqueness", mustBe=0),
    ),
)

GENDER = pii("gender", "string", "VARCHAR", "Self-declared gender; a protected attribute.",
             required=True, tags=("sensitive-attribute",),
             quality=(valid_values("features_gender_valid", vocab.GENDERS),))
AGE_BAND = Column("age_band", "string", "VARCHAR", "Age band derived from the date of birth.",
                  "confidential", required=True, tags=("sensitive-attribute",),
                  quality=(valid_values("features_age_band_valid", vocab.AGE_BANDS),))

FEATURES = Dataset(
    "features", "RFM features per customer who consented to analytics.",
    "One row per customer with analytics consent",
    (
        key("features", "user_id", "The customer, as user_id in customer-profiles."),
        Column("recency_days", "integer", "INTEGER", "Days since the last order; empty without orders.",
               "internal",
               quality=(null_share_below("features_recency_completeness", 20,
                                         "Most segmented customers have ordered."),)),
        Column("frequency", "integer", "INTEGER", "Number of orders in the last year.", "internal",
               required=True),
        Column("monetary", "number", "DECIMAL(12,2)", "Order value in the last year.", "confidential",
               required=True),
        _country("features_country_valid"),
        AGE_BAND,
        GENDER,
    ),
    quality=(
        rows_above("features_row_count", 1000),
        sql("features_non_negative",
            "SELECT count(*) FROM features WHERE frequency < 0 OR monetary < 0 OR recency_days < 0",
            "Counts, amounts and ages of orders are never negative.", mustBe=0),
    ),
)

SEGMENT_ASSIGNMENTS = Dataset(
    "segment_assignments", "Segment per customer from the nightly RFM segmentation model.",
    "One row per segmented customer",
    (
        key("segment_assignments", "user_id", "The customer, as user_id in customer-profiles."),
        Column("segment_id", "string", "VARCHAR", "Named RFM segment.", "internal", required=True,
               quality=(valid_values("segment_assignments_segment_valid", vocab.SEGMENTS),)),
        Column("model_version", "string", "VARCHAR", "Version of the segmentation model.", "internal",
               required=True),
        _timestamp("assigned_at", "When the model assigned the segment (UTC)."),
    ),
    timestamp="assigned_at",
)

PREDICTIONS = Dataset(
    "predictions", "Premium-offer selection by the propensity model, with the protected "
    "attributes kept for fairness monitoring.",
    "One row per segmented customer",
    (
        key("predictions", "user_id", "The customer, as user_id in customer-profiles."),
        replace(GENDER, quality=()),
        replace(AGE_BAND, quality=()),
        Column("selected_for_premium", "boolean", "BOOLEAN", "True when the model selects the "
               "customer for the premium offer (score >= 0.5).", "confidential", required=True),
        Column("score", "number", "DOUBLE", "Propensity score between 0 and 1.", "confidential",
               required=True),
        _timestamp("predicted_at", "When the prediction was made (UTC)."),
    ),
    timestamp="predicted_at",
    quality=(
        sql("predictions_score_range",
            "SELECT count(*) FROM predictions WHERE score < 0 OR score > 1",
            "Scores are probabilities.", mustBe=0),
    ),
)


def _recommendations(*, version_1: bool) -> Dataset:
    """1.0.0 had integer segment codes and a campaign hint; 1.1.0 (the data) has named
    segments and no hint: a breaking change published as a minor version."""
    segment = (Column("segment_id", "integer", "BIGINT", "Numeric code of the customer's segment.",
                      "internal", required=True) if version_1 else
               Column("segment_id", "string", "VARCHAR", "Named segment of the customer.", "internal",
                      required=True,
                      quality=(valid_values("recommendations_segment_valid", vocab.SEGMENTS),)))
    hint = (Column("campaign_hint", "string", "VARCHAR", "Suggested campaign for the recommendation.",
                   "internal"),) if version_1 else ()
    return Dataset(
        "recommendations", "Top-5 product recommendations per customer who consented to AI "
        "recommendations.", "One row per customer and rank",
        (
            Column("user_id", "string", "VARCHAR", "The customer, as user_id in customer-profiles.",
                   "internal", required=True, key_position=1),
            Column("product_sku", "string", "VARCHAR", "Recommended product, as sku in "
                   "commerce-products.", "public",
                   quality=(null_share_below("recommendations_product_sku_nulls", 1,
                                             "Fewer than 1% of recommendations lack a product."),)),
            Column("rank", "integer", "INTEGER", "Position in the customer's list, 1 is best.",
                   "internal", required=True, key_position=2),
            Column("score", "number", "DOUBLE", "Relevance score between 0 and 1.", "internal",
                   required=True),
            segment,
            *hint,
            _timestamp("generated_at", "When the recommendation batch ran (UTC)."),
        ),
        timestamp="generated_at",
        quality=(
            rows_above("recommendations_row_count", 1000),
            sql("recommendations_rank_range",
                "SELECT count(*) FROM recommendations WHERE rank < 1 OR rank > 5",
                "Ranks run from 1 to 5.", mustBe=0),
            sql("recommendations_one_item_per_rank",
                "SELECT count(*) FROM (SELECT user_id, rank FROM recommendations "
                "GROUP BY user_id, rank HAVING count(*) > 1)",
                "One recommendation per customer and rank.", dimension="uniqueness", mustBe=0),
            sql("recommendations_mean_score",
                "SELECT avg(score) FROM recommendations",
                "The mean relevance score is a probability.", mustBeBetween=[0, 1]),
        ),
    )


SENDS = Dataset(
    "sends", "Every personalised newsletter email sent.", "One row per email sent",
    (
        key("sends", "send_id", "Id of the email sent.",
            quality=(pattern("sends_send_id_format", r"^snd-[0-9]{6}$", "Ids look like snd-000042."),)),
        _user_ref(),
        pii("email", "string", "VARCHAR", "Address the newsletter was sent to.", required=True,
            string_format="email",
            quality=(pattern("sends_email_format", EMAIL_PATTERN, "A syntactically valid email."),)),
        Column("campaign_id", "string", "VARCHAR", "Weekly newsletter campaign.", "public", required=True,
               quality=(pattern("sends_campaign_id_format", r"^cmp-[0-9]{4}$", "Ids look like cmp-0101."),)),
        _timestamp("sent_at", "When the email left the mail service (UTC)."),
    ),
    timestamp="sent_at", latency_days=7, frequency_days=7,
    quality=(rows_above("sends_row_count", 1000),),
)

AUDIENCE = Dataset(
    "audience", "Audience of the personalised newsletter with the CRM consent flags copied "
    "in when the audience was built.", "One row per audience member",
    (
        key("audience", "user_id", "The customer, as user_id in customer-profiles."),
        Column("consent_ai_recommendations", "boolean", "BOOLEAN", "Consent to AI recommendations "
               "at snapshot time.", "internal", required=True),
        Column("consent_newsletter", "boolean", "BOOLEAN", "Consent to the newsletter at snapshot time.",
               "internal", required=True),
        _timestamp("snapshot_at", "When the audience was built (UTC)."),
    ),
    timestamp="snapshot_at", latency_days=7, frequency_days=7,
    # Consent is checked against the CRM's history by the consent check kind (checks.consent),
    # declared in the contract's customProperties (NEWSLETTER_CONSENT), not by SQL on these flags.
)

NEWSLETTER_CONSENT = consent.requires(
    ("audience", ("ai_recommendations", "newsletter"), "user_id", "snapshot_at"),
    ("sends", ("ai_recommendations", "newsletter"), "user_id", "sent_at"))

INTERACTIONS = Dataset(
    "interactions", "Opens, clicks and conversions of newsletter emails, fed back to the "
    "Customer domain.", "One row per tracked event",
    (
        key("interactions", "event_id", "Id of the tracking event.",
            quality=(pattern("interactions_event_id_format", r"^evt-[0-9]{6}$", "Ids look like evt-000042."),)),
        Column("send_id", "string", "VARCHAR", "The email, as send_id in newsletter-sends.", "internal",
               required=True, quality=(no_missing("interactions_send_id_present"),)),
        _user_ref(),
        Column("event_type", "string", "VARCHAR", "What the recipient did.", "public", required=True,
               quality=(valid_values("interactions_event_type_valid", vocab.EVENT_TYPES),)),
        _timestamp("event_at", "When the event was tracked (UTC)."),
        # Planted defect: an email address, neither tagged pii nor classified as personal.
        Column("recipient_email", "string", "VARCHAR", "Delivery address reported by the mail "
               "service's tracking pixel.", "internal", required=True,
               quality=(pattern("interactions_recipient_email_format", EMAIL_PATTERN,
                                "A syntactically valid address."),)),
    ),
    timestamp="event_at",
    quality=(rows_above("interactions_row_count", 10000),),
)

ORDERS = Dataset(
    "orders", "Web-shop orders.", "One row per order",
    (
        key("orders", "order_id", "Id of the order.",
            quality=(pattern("orders_order_id_format", r"^ord-[0-9]{6}$", "Ids look like ord-000042."),)),
        _user_ref(),
        Column("sku", "string", "VARCHAR", "Ordered product, as sku in commerce-products.", "public",
               required=True),
        Column("quantity", "integer", "INTEGER", "Units ordered.", "internal", required=True),
        Column("amount", "number", "DECIMAL(12,2)", "Order value in the order currency.", "confidential",
               required=True),
        Column("currency", "string", "VARCHAR", "ISO 4217 currency of the amount.", "public",
               required=True, quality=(valid_values("orders_currency_valid", vocab.CURRENCIES),)),
        _timestamp("ordered_at", "When the order was placed (UTC)."),
    ),
    timestamp="ordered_at",
    quality=(
        rows_above("orders_row_count", 10000),
        sql("orders_positive_quantity", "SELECT count(*) FROM orders WHERE quantity < 1",
            "At least one unit per order.", mustBe=0),
        sql("orders_non_negative_amount", "SELECT count(*) FROM orders WHERE amount < 0",
            "Order values are never negative.", mustBe=0),
    ),
)

PRODUCTS = Dataset(
    "products", "The product catalogue with list prices.", "One row per product",
    (
        key("products", "sku", "Stock keeping unit.", classification="public",
            quality=(pattern("products_sku_format", r"^SKU-[0-9]{5}$", "SKUs look like SKU-10042."),)),
        Column("product_name", "string", "VARCHAR", "Display name in the shop.", "public", required=True,
               quality=(no_missing("products_name_present"),)),
        Column("category", "string", "VARCHAR", "Shop category.", "public", required=True,
               quality=(valid_values("products_category_valid", tuple(vocab.PRODUCT_ITEMS)),)),
        Column("price", "number", "DECIMAL(10,2)", "List price.", "public", required=True),
        _timestamp("updated_at", "When the catalogue entry last changed (UTC)."),
    ),
    timestamp="updated_at",
    quality=(
        rows_between("products_row_count", 100, 1000),
        sql("products_positive_price", "SELECT count(*) FROM products WHERE price <= 0",
            "Every product has a price.", mustBe=0),
    ),
)


PRODUCTS_OF_SCENARIO: tuple[Product, ...] = (
    Product(
        "Customer Profiles", "Customer", "2.0.0",
        purpose="The golden record of every customer: identity, contact details and country.",
        usage="Join on user_id; contact customers only through the Marketing domain's products.",
        limitations="Contains direct identifiers: access needs the customer-data clearance. "
                    "Phone numbers are optional and missing for some customers.",
        tags=("customer", "golden-record", "pii", "gdpr"), datasets=(USERS,),
        retention=(5, "y"), masking="hashed",
    ),
    Product(
        "Customer Consent", "Customer", "1.2.0",
        purpose="The current consent decision of every customer per processing purpose "
                "(AI recommendations, newsletter, analytics).",
        usage="Filter every audience and model input by the purpose it serves.",
        limitations="consent holds the current decision; consent_events the history of decisions.",
        tags=("customer", "consent", "gdpr"), datasets=(CONSENT, consent.CONSENT_EVENTS), retention=(5, "y"),
        custom=(consent.SOURCE_PROPERTY,),
    ),
    Product(
        "User Segments", "AI/ML", "1.4.0",
        purpose="RFM features, customer segments and premium-offer predictions from the "
                "personalisation models.",
        usage="Segment-based targeting and recommendations; predictions drive the premium offer.",
        limitations="Only customers who consented to analytics. Gender and age band are kept "
                    "for fairness monitoring only and must not be used as model inputs.",
        tags=("ml", "segmentation", "features", "fairness", "pii"),
        datasets=(FEATURES, SEGMENT_ASSIGNMENTS, PREDICTIONS), retention=(1, "y"), masking="hashed",
    ),
    Product(
        "Product Recommendations", "Marketing", "1.1.0",
        purpose="Personalised product recommendations per customer for newsletters and the shop.",
        usage="Read the latest batch per user_id; rank 1 is the best match.",
        limitations="Only customers who consented to AI recommendations.",
        tags=("marketing", "recommendations", "personalisation"),
        datasets=(_recommendations(version_1=False),), retention=(90, "d"),
        custom=(consent.requires(("recommendations", ("ai_recommendations",), "user_id", "generated_at")),),
    ),
    Product(
        "Newsletter Sends", "Marketing", "1.0.0",
        purpose="The weekly personalised newsletter: who was in the audience and which emails went out.",
        usage="Campaign reporting and consent audits.",
        limitations="Audience consent flags are copied at snapshot time and can lag the CRM.",
        tags=("marketing", "newsletter", "email", "pii"), datasets=(SENDS, AUDIENCE),
        retention=(2, "y"), masking="hashed", custom=(NEWSLETTER_CONSENT,),
    ),
    Product(
        "Newsletter Interactions", "Marketing", "1.0.0",
        purpose="Opens, clicks and conversions of newsletter emails, fed back to the Customer domain.",
        usage="Engagement features for segmentation and campaign performance.",
        limitations="Opens are tracked by pixel and undercount privacy-protecting mail clients.",
        tags=("marketing", "newsletter", "engagement", "feedback-loop"), datasets=(INTERACTIONS,),
        retention=(2, "y"),
    ),
    Product(
        "Commerce Orders", "Commerce", "3.1.0",
        purpose="Every web-shop order, loaded daily from the order service.",
        usage="Revenue reporting and the RFM features of the AI/ML domain.",
        limitations="Amounts are in the order currency; no returns or refunds.",
        tags=("commerce", "orders", "revenue"), datasets=(ORDERS,), retention=(7, "y"),
    ),
    Product(
        "Commerce Products", "Commerce", "2.2.0",
        purpose="The product catalogue with categories and list prices.",
        usage="Join recommendations and orders on sku.",
        limitations="List prices only; promotions are not included.",
        tags=("commerce", "catalogue", "reference-data"), datasets=(PRODUCTS,), retention=(10, "y"),
    ),
)

BREAKING_CHANGE_PRODUCT = "product-recommendations"


def product(product_id: str) -> Product:
    return next(p for p in PRODUCTS_OF_SCENARIO if p.product_id == product_id)


# The revision ingested before the current one: same contract id, version 1.0.0.
RECOMMENDATIONS_V1 = replace(product(BREAKING_CHANGE_PRODUCT), version="1.0.0",
                             datasets=(_recommendations(version_1=True),))
