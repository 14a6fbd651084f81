"""Model cards of the seed scenario: the two models the lineage shows (sample_data.lineage_events).

- premium-propensity selects customers for the premium offer; its card names the
  `user-segments` predictions as what the bias audit reads. The planted disparity (selection
  rates female 0.22, male 0.45, non-binary 0.30: sample_data.data.PREMIUM_SELECTION_RATE)
  fails the fairness policy's demographic parity ratio >= 0.8.
- rfm-segmenter's card has no bias/risks section: the planted card defect.

Cards are written as files and ingested like users' cards (`python -m catalog ingest`).
"""

from __future__ import annotations

from pathlib import Path

from sample_data.lineage_events import MODELS, OWNERS

OWNER = OWNERS["ai-ml"]

RFM_SEGMENTER = f"""---
model_name: rfm-segmenter
version: {MODELS["rfm-segmenter"]}
license: other
pipeline_tag: tabular-classification
tags:
- segmentation
- rfm
datasets:
- commerce-orders
- customer-profiles
meshgov:
  owner: "{OWNER}"
  outputs:
  - user-segments
model-index:
- name: rfm-segmenter
  results:
  - task:
      type: tabular-classification
    dataset:
      type: user-segments
      name: segment_assignments (holdout month)
      split: holdout
    metrics:
    - type: accuracy
      name: Segment stability month over month
      value: 0.91
---

# rfm-segmenter

Assigns every customer who consented to analytics to one of six RFM segments
(champions, loyal, potential, at_risk, dormant, no_orders) from recency, frequency and
monetary value of their orders.

## Intended use

Segment-based targeting of newsletters and recommendations by the Marketing domain.
Not for credit, pricing or any decision with legal effect on a customer.

## Training data

Orders of the last 365 days (`commerce-orders`) joined with the consenting customers of
`customer-profiles`; retrained nightly by `segmentation.train_and_assign`.

## Evaluation

Segment stability month over month on a holdout month: 0.91.

## Limitations

Customers without orders are all `no_orders`; the thresholds are tuned on EU customers.
"""

PREMIUM_PROPENSITY = f"""---
model_name: premium-propensity
version: {MODELS["premium-propensity"]}
license: other
pipeline_tag: tabular-classification
tags:
- propensity
- premium-offer
datasets:
- user-segments
meshgov:
  owner: "{OWNER}"
  predictions:
    product: user-segments
    dataset: predictions
    y_pred: selected_for_premium
    sensitive:
    - gender
model-index:
- name: premium-propensity
  results:
  - task:
      type: tabular-classification
    dataset:
      type: user-segments
      name: features (last quarter)
      split: validation
    metrics:
    - type: roc_auc
      value: 0.78
    - type: precision
      value: 0.41
---

# premium-propensity

Scores each segmented customer's propensity to take the premium offer; a score of 0.5 or
more selects the customer (`selected_for_premium` in `user-segments.predictions`).

## Intended use

Choosing who sees the premium offer in the newsletter. A human reviews the campaign
audience before sending.

## Training data

RFM features (`user-segments.features`) of the last quarter, with the premium-offer uptake
of earlier campaigns as the label. Gender and age band are not model inputs; they are kept
beside the predictions for fairness monitoring.

## Evaluation

ROC AUC 0.78 and precision 0.41 on the validation quarter. Observed uptake is not joined
to the predictions yet, so the bias audit measures selection rates only.

## Bias, risks and limitations

Purchase history differs by gender in the training quarter, so selection rates may too:
the bias audit compares selection rates by gender against the four-fifths rule.
Limitations: scores are not calibrated probabilities; customers without orders get the
base rate.
"""

CARDS = {"rfm-segmenter": RFM_SEGMENTER, "premium-propensity": PREMIUM_PROPENSITY}


def write_cards(out_dir: Path) -> list[Path]:
    """`<out_dir>/models/<model>.md`, one Hugging Face model card per model."""
    folder = Path(out_dir) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for model_id, text in CARDS.items():
        path = folder / f"{model_id}.md"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
