"""Hugging Face model cards: parse (YAML front matter + Markdown sections) and store every
revision. Reading models back for the pages and the checks is catalog.model_queries.

Parsing is a plain split: the `---` front matter through the same guarded YAML loader as
contracts (catalog.odcs.load_yaml: deep or huge structures refused in our words, dates kept
as text), the body split at Markdown headings. `huggingface_hub` is not a dependency; measured
with 2.4.0 in a scratch folder (2026-12-01, a heavily loaded machine, so absolute numbers are
high): importing `ModelCard` added 3.5-4.6 s on top of the catalog's own imports, and it
parsed a card in ~18 ms vs ~6 ms here. It also raises on 5 of the 11 fixtures (the three
templates, list metadata, a model-index result without a dataset) where meshgov needs a
reason per file, and it knows nothing of the governance sections checked here.

Acceptance: a card whose metadata is not YAML, not a mapping, an unfilled template
(`{{ card_data }}`), or that is a dataset card is rejected with the reason; no metadata,
CRLF line endings, an eval result without a dataset, a huge model-index (first
MAX_EVAL_RESULTS kept) are accepted with warnings. Same transaction and versioning rules as
contracts: an identical re-ingest is a no-op, a changed card a new revision, raw text and
hash kept.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from catalog import audit, odcs
from catalog.store import transaction

MAX_CARD_BYTES = 2_000_000
MAX_EVAL_RESULTS = 500
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^---[ \t]*$\n?", re.S | re.M)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
PLACEHOLDER = re.compile(r"\{\{.*?\}\}|^\{card_data\}$", re.M | re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_NOT_FILLED = re.compile(r"\[?More Information Needed\]?|\[optional\]", re.I)
# Governance sections a card must fill: key -> (label, heading pattern).
REQUIRED_SECTIONS: dict[str, tuple[str, re.Pattern]] = {
    "intended_use": ("intended use", re.compile(r"intended use|^uses?$|direct use|intended purpose", re.I)),
    "limitations": ("limitations", re.compile(r"limita", re.I)),
    "bias_risks": ("bias and risks", re.compile(r"bias|risk|fairness|ethic", re.I)),
    "training_data": ("training data", re.compile(r"training data|training details|^training$|train\w* (data|set)", re.I)),
    "license": ("license", re.compile(r"licen[cs]e", re.I)),
}
_DATASET_CARD_KEYS = {"task_categories", "task_ids", "size_categories", "annotations_creators",
                      "language_creators", "multilinguality", "source_datasets", "pretty_name", "configs",
                      "dataset_info"}
_MODEL_KEYS = {"model_name", "model-index", "pipeline_tag", "base_model", "library_name", "model_id"}


class CardError(ValueError):
    """The file is not an acceptable model card; the message names its fault."""


@dataclass
class Section:
    level: int
    title: str
    text: str
    filled: bool


@dataclass
class ParsedCard:
    model_id: str
    name: str
    version: str | None
    owner: str | None
    status: str
    license: str | None
    pipeline_tag: str | None
    base_model: str | None
    tags: list[str]
    datasets: list[str]
    outputs: list[str]
    predictions: dict[str, Any] | None
    metadata: dict[str, Any]
    sections: list[Section]
    missing: list[str]
    eval_results: list[dict[str, Any]]
    body: str
    warnings: list[str] = field(default_factory=list)


def has_front_matter(path: Path) -> bool:
    """Whether a .md file starts like a card (used when scanning folders, so a README is skipped)."""
    try:
        with path.open("rb") as handle:
            return handle.read(5).lstrip(b"\xef\xbb\xbf").startswith(b"---")
    except OSError:
        return False


def _strings(value: Any, key: str, warnings: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        kept = [str(v) for v in value if isinstance(v, str | int | float) and not isinstance(v, bool)]
        if len(kept) != len(value):
            warnings.append(f"metadata {key}: {len(value) - len(kept)} item(s) are not plain values and were ignored")
        return kept
    warnings.append(f"metadata {key}: expected a string or a list of strings, got {type(value).__name__}; ignored")
    return []


def _one(value: Any, key: str, warnings: list[str]) -> str | None:
    values = _strings(value, key, warnings)
    if len(values) > 1:
        warnings.append(f"metadata {key}: several values, the first ({values[0]}) is used")
    return values[0] if values else None


def _filled(text: str) -> bool:
    rest = _NOT_FILLED.sub("", PLACEHOLDER.sub("", _COMMENT.sub("", text)))
    return bool(re.sub(r"[\s\-*_:|#>]+", "", rest))


def split_sections(body: str) -> list[Section]:
    """Headings in order; each section's text runs to the next heading of the same or a
    higher level (so a parent section is filled when one of its subsections is)."""
    heads = [(m.start(), m.end(), len(m.group(1)), m.group(2).strip()) for m in HEADING.finditer(body)]
    sections = []
    for i, (_start, end, level, title) in enumerate(heads):
        stop = next((h[0] for h in heads[i + 1:] if h[2] <= level), len(body))
        text = body[end:stop]
        sections.append(Section(level, title, text.strip(), _filled(text)))
    return sections


def _missing(sections: list[Section], metadata: dict[str, Any], datasets: list[str], license_: str | None) -> list[str]:
    missing = []
    for key, (_label, pattern) in REQUIRED_SECTIONS.items():
        if key == "license" and license_:
            continue
        if key == "training_data" and datasets:
            continue
        if not any(s.filled and pattern.search(s.title) for s in sections):
            missing.append(key)
    return missing


def _eval_results(index: Any, warnings: list[str]) -> list[dict[str, Any]]:
    if index is None:
        return []
    if not isinstance(index, list):
        warnings.append("metadata model-index: expected a list; evaluation results ignored")
        return []
    rows: list[dict[str, Any]] = []
    for entry in index:
        results = entry.get("results") if isinstance(entry, dict) else None
        if not isinstance(results, list):
            warnings.append("metadata model-index: an entry without a `results` list was ignored")
            continue
        for position, result in enumerate(results, 1):
            if not isinstance(result, dict):
                warnings.append(f"model-index result {position}: not a mapping; ignored")
                continue
            task = result.get("task") if isinstance(result.get("task"), dict) else {}
            dataset = result.get("dataset")
            if not isinstance(dataset, dict):
                warnings.append(f"model-index result {position}: no dataset, so its metrics name no data; ignored")
                continue
            metrics = result.get("metrics") if isinstance(result.get("metrics"), list) else []
            for metric in metrics:
                if not isinstance(metric, dict):
                    continue
                raw = metric.get("value")
                number = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) \
                    and math.isfinite(float(raw)) else None
                if len(rows) >= MAX_EVAL_RESULTS:
                    warnings.append(f"model-index has more than {MAX_EVAL_RESULTS} metric values: "
                                    "only the first are kept")
                    return rows
                rows.append({"task_type": _text(task.get("type")), "dataset_type": _text(dataset.get("type")),
                             "dataset_name": _text(dataset.get("name")), "dataset_split": _text(dataset.get("split")),
                             "metric_type": _text(metric.get("type")), "metric_name": _text(metric.get("name")),
                             "value": number, "value_text": None if raw is None else _text(raw)})
    return rows


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)[:500]


def _predictions(config: Any, warnings: list[str]) -> dict[str, Any] | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        warnings.append("meshgov.predictions: expected a mapping (product, dataset, y_pred, sensitive); ignored")
        return None
    found = {"product": _one(config.get("product"), "meshgov.predictions.product", warnings),
             "dataset": _one(config.get("dataset"), "meshgov.predictions.dataset", warnings),
             "y_true": _one(config.get("y_true"), "meshgov.predictions.y_true", warnings),
             "y_pred": _one(config.get("y_pred"), "meshgov.predictions.y_pred", warnings),
             "sensitive": _strings(config.get("sensitive"), "meshgov.predictions.sensitive", warnings)}
    absent = [k for k in ("product", "dataset", "y_pred") if not found[k]] + ([] if found["sensitive"] else ["sensitive"])
    if absent:
        warnings.append(f"meshgov.predictions: missing {', '.join(absent)}; no bias audit is configured")
        return None
    return found


def parse_card(text: str, *, source: str = "card") -> ParsedCard:
    """Parse one card; CardError (reject) with the reason, warnings for what was tolerated."""
    warnings: list[str] = []
    if len(text.encode()) > MAX_CARD_BYTES:
        raise CardError(f"card is larger than {MAX_CARD_BYTES // 1_000_000} MB: not ingested")
    if "\r" in text:
        warnings.append("CRLF line endings: read as LF (the raw text is kept as sent)")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    match = FRONT_MATTER.match(text)
    metadata: dict[str, Any] = {}
    if match is None:
        if text.startswith("---"):
            raise CardError("metadata block opened with --- is never closed")
        warnings.append("no YAML metadata (front matter): license, datasets and eval results are unknown")
        body = text
    else:
        front, body = match.group(1), text[match.end():]
        placeholder = PLACEHOLDER.search(front)
        if placeholder:
            raise CardError(f"unfilled template placeholder {placeholder.group(0).strip()[:60]!r} in the metadata: "
                            "this is a card template, not a card")
        try:
            loaded = odcs.load_yaml(front) if front.strip() else {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 2}" if mark else ""
            raise CardError(f"metadata is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
        except odcs.ContractError as exc:
            raise CardError(f"metadata refused: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise CardError(f"metadata must be a mapping of keys (model_name, license, ...), found a "
                            f"{type(loaded).__name__}")
        metadata = {str(k): v for k, v in loaded.items()}
    if metadata and _DATASET_CARD_KEYS & set(metadata) and not _MODEL_KEYS & set(metadata):
        raise CardError("this is a Hugging Face dataset card (metadata "
                        f"{', '.join(sorted(_DATASET_CARD_KEYS & set(metadata)))}), not a model card")
    if re.match(r"\s*#\s*Dataset Card\b", body) and not _MODEL_KEYS & set(metadata):
        raise CardError("this is a Hugging Face dataset card (title 'Dataset Card ...'), not a model card")
    placeholders = PLACEHOLDER.findall(body)
    if placeholders:
        warnings.append(f"{len(placeholders)} unfilled template placeholder(s) in the text, e.g. "
                        f"{placeholders[0].strip()[:60]!r}")
    sections = split_sections(body)
    index = metadata.get("model-index")
    index_name = index[0].get("name") if isinstance(index, list) and index and isinstance(index[0], dict) else None
    title = next((s.title for s in sections if s.level == 1), None)
    title = re.sub(r"^model card for\s+", "", title, flags=re.I) if title else None
    extension = metadata.get("meshgov") if isinstance(metadata.get("meshgov"), dict) else {}
    name = (_one(metadata.get("model_name"), "model_name", warnings) or _one(metadata.get("model_id"), "model_id", warnings)
            or (index_name if isinstance(index_name, str) else None) or title
            or Path(source).stem)
    if PLACEHOLDER.search(name):
        raise CardError(f"the model's name is an unfilled template placeholder ({name[:60]!r})")
    license_ = _one(metadata.get("license"), "license", warnings)
    datasets = _strings(metadata.get("datasets"), "datasets", warnings)
    card = ParsedCard(
        model_id=odcs.slug(name), name=name[:200],
        version=_one(metadata.get("version", metadata.get("model_version")), "version", warnings),
        owner=_one(extension.get("owner", metadata.get("owner")), "owner", warnings),
        status=_one(extension.get("status", metadata.get("status")), "status", warnings) or "active",
        license=license_, pipeline_tag=_one(metadata.get("pipeline_tag"), "pipeline_tag", warnings),
        base_model=_one(metadata.get("base_model"), "base_model", warnings),
        tags=_strings(metadata.get("tags"), "tags", warnings), datasets=datasets,
        outputs=_strings(extension.get("outputs"), "meshgov.outputs", warnings),
        predictions=_predictions(extension.get("predictions"), warnings),
        metadata=json.loads(json.dumps(metadata, default=str)), sections=sections,
        missing=[], eval_results=_eval_results(index, warnings), body=body, warnings=warnings)
    card.missing = _missing(sections, metadata, datasets, license_)
    return card


def home_product(card: ParsedCard) -> str | None:
    """The product a model belongs to: where its predictions go, else its first output."""
    if card.predictions:
        return card.predictions["product"]
    return card.outputs[0] if card.outputs else None


# --- store ---------------------------------------------------------------------------------------


@dataclass
class CardOutcome:
    model_id: str
    version: str | None
    revision: int
    unchanged: bool
    warnings: list[str]


def store_card(con: duckdb.DuckDBPyConnection, text: str, *, source: str, actor) -> CardOutcome:
    """Parse and store one card in one transaction (CardError without writing on fault)."""
    card = parse_card(text, source=source)
    content_hash = hashlib.sha256(text.encode()).hexdigest()
    return audit.retry_write(con, lambda: _store(con, card, text=text, source=source, actor=actor,
                                                 content_hash=content_hash))


def _store(con, card: ParsedCard, *, text: str, source: str, actor, content_hash: str) -> CardOutcome:
    now = datetime.now(UTC).replace(tzinfo=None)
    email = getattr(actor, "email", actor)
    with transaction(con):
        latest = con.execute("SELECT revision, content_hash FROM model_cards WHERE model_id = ? "
                             "ORDER BY revision DESC LIMIT 1", [card.model_id]).fetchone()
        if latest and latest[1] == content_hash:
            return CardOutcome(card.model_id, card.version, latest[0], True, card.warnings)
        revision = latest[0] + 1 if latest else 1
        con.execute("INSERT INTO model_cards (model_id, revision, version, raw_text, content_hash, metadata, "
                    "sections, missing, warnings, source_file, ingested_at, ingested_by) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [card.model_id, revision, card.version, text, content_hash, json.dumps(card.metadata),
                     json.dumps([{"level": s.level, "title": s.title, "filled": s.filled} for s in card.sections]),
                     card.missing, card.warnings, source, now, email])
        con.execute(
            """INSERT INTO models (model_id, name, version, owner, status, license, pipeline_tag, base_model,
                                  tags, predictions, product_id, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (model_id) DO UPDATE SET name = excluded.name, version = excluded.version,
                 owner = excluded.owner, status = excluded.status, license = excluded.license,
                 pipeline_tag = excluded.pipeline_tag, base_model = excluded.base_model, tags = excluded.tags,
                 predictions = excluded.predictions, product_id = excluded.product_id,
                 updated_at = excluded.updated_at""",
            [card.model_id, card.name, card.version, card.owner, card.status, card.license, card.pipeline_tag,
             card.base_model, card.tags, json.dumps(card.predictions) if card.predictions else None,
             home_product(card), now, now])
        con.execute("DELETE FROM model_products WHERE model_id = ?", [card.model_id])
        links = {(d, "training") for d in card.datasets} | {(o, "output") for o in card.outputs}
        if card.predictions:
            links.add((card.predictions["product"], "output"))
        for product_id, relation in sorted(links):
            con.execute("INSERT INTO model_products (model_id, product_id, relation, source) VALUES (?, ?, ?, 'card')",
                        [card.model_id, product_id, relation])
        con.execute("DELETE FROM model_eval_results WHERE model_id = ?", [card.model_id])
        if card.eval_results:
            import pandas as pd

            frame = pd.DataFrame(card.eval_results).assign(model_id=card.model_id, revision=revision)
            con.register("new_eval_results", frame)
            try:
                con.execute("INSERT INTO model_eval_results BY NAME SELECT * FROM new_eval_results")
            finally:
                con.unregister("new_eval_results")
        audit.record(con, actor=actor, action="ingest", target=f"model:{card.model_id}",
                     before={"revision": latest[0], "content_hash": latest[1]} if latest else None,
                     after={"revision": revision, "version": card.version, "content_hash": content_hash,
                            "file": source})
    return CardOutcome(card.model_id, card.version, revision, False, card.warnings)
