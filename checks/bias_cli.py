"""`python -m checks bias`: a bias audit of one predictions file (CSV or Parquet).

    python -m checks bias --data FILE --y-true COL --y-pred COL --sensitive COL[,COL]
                          [--threshold dp_ratio=0.8[,eo_difference=0.1]] [--min-group-size N]
                          [--model NAME] [--json]

Thresholds default to the fairness policy (`fairness.toml` in the policy folders; without
one, demographic parity ratio >= 0.8); `--threshold` replaces them. Exit 0 when every
threshold holds, 1 when one is breached (or a policy metric is undefined), 2 for bad input:
a missing column, a non-binary label, an empty file, with a message naming it.
"""

from __future__ import annotations

import argparse
import json
import sys

from checks import fairness

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def add_parser(sub) -> argparse.ArgumentParser:
    bias = sub.add_parser("bias", help="bias audit of a predictions file: metrics by group, disparities, thresholds",
                          description="Exit 0 when every fairness threshold holds, 1 when one is breached, "
                                      "2 for bad input (missing column, non-binary label, empty file).")
    bias.add_argument("--data", required=True, metavar="FILE", help="predictions as .csv or .parquet")
    bias.add_argument("--y-true", required=True, metavar="COL", help="observed outcome column (0/1 or boolean)")
    bias.add_argument("--y-pred", required=True, metavar="COL", help="predicted label column (0/1 or boolean)")
    bias.add_argument("--sensitive", required=True, metavar="COL[,COL]",
                      help="sensitive feature column(s); two give intersectional groups")
    bias.add_argument("--threshold", metavar="NAME=VALUE[,...]",
                      help=f"policy thresholds ({', '.join(fairness.THRESHOLD_KEYS)}); default from the "
                           "fairness policy, else dp_ratio=0.8")
    bias.add_argument("--min-group-size", type=int, metavar="N",
                      help=f"groups with fewer rows are reported but not scored (default from the policy, "
                           f"else {fairness.DEFAULT_MIN_GROUP_SIZE})")
    bias.add_argument("--model", help="model whose thresholds to take from the fairness policy")
    bias.add_argument("--json", action="store_true", help="print the report as JSON")
    return bias


def run(args) -> int:
    try:
        policy = fairness.load_policy(args.model)
        if args.threshold is not None:
            policy = fairness.FairnessPolicy(fairness.parse_thresholds(args.threshold), policy.min_group_size,
                                             "--threshold")
        min_size = policy.min_group_size if args.min_group_size is None else args.min_group_size
        if min_size < 1:
            raise fairness.BiasInputError("--min-group-size must be at least 1")
        sensitive = [c.strip() for c in args.sensitive.split(",") if c.strip()]
        report = fairness.audit_file(args.data, y_true=args.y_true, y_pred=args.y_pred,
                                     sensitive=sensitive, min_group_size=min_size)
    except fairness.BiasInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    document = fairness.to_json(report, policy)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(_text(report, document, policy))
    return EXIT_OK if document["status"] == "passed" else EXIT_FINDINGS


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _text(report: fairness.BiasReport, document: dict, policy: fairness.FairnessPolicy) -> str:
    columns = ("count", *fairness.METRICS)
    labels = [fairness.group_label(row["group"]) + ("" if row["scored"] else " (not scored)")
              for row in document["by_group"]]
    width = min(max([len("overall"), *map(len, labels)]) + 2, 80)
    lines = [f"{'group':<{width}}" + " ".join(f"{c:>14}" for c in columns)]
    for label, row in zip(labels, document["by_group"], strict=True):
        lines.append(f"{label[:width - 2]:<{width}}" + " ".join(f"{_fmt(row[c]):>14}" for c in columns))
    lines.append(f"{'overall':<{width}}" + " ".join(f"{_fmt(document['overall'][c]):>14}" for c in columns))
    lines.append("")
    lines += [f"{name}: {_fmt(value)}" for name, value in document["disparities"].items()]
    lines.append("")
    lines.append(fairness.summary_sentence(report, policy))
    lines.append(f"{document['status'].upper()}: {document['reason']}")
    return "\n".join(lines)
