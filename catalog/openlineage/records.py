"""The shapes of a judged OpenLineage event (RunEvent, JobEvent, DatasetEvent) and the
error whose message is the reason an event is quarantined."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

RUN_STATES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
TERMINAL_STATES = ("COMPLETE", "ABORT", "FAIL")


class EventError(Exception):
    """Why an event is quarantined (the message is the reason shown to the user)."""


@dataclass
class Dataset:
    namespace: str
    name: str
    facets: dict[str, Any]
    input_facets: dict[str, Any]
    output_facets: dict[str, Any]


@dataclass
class Event:
    kind: Literal["run", "job", "dataset"]
    event_type: str | None
    event_time: datetime          # naive UTC
    run_id: str | None
    job_namespace: str | None
    job_name: str | None
    run_facets: dict[str, Any]
    job_facets: dict[str, Any]
    inputs: list[Dataset]
    outputs: list[Dataset]
    dataset: Dataset | None
    producer: str | None
    schema_url: str | None
    warnings: list[str] = field(default_factory=list)


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
