"""Limits on one lineage file and one event, and the reasons that name them.

Other modules read them as `limits.NAME` at call time, so a limit set here (or patched by a
test) holds everywhere."""

from __future__ import annotations

# Limits on what one producer may send (events are user input). Beyond them an event is
# quarantined, or a file rejected, with a reason naming the limit — before the expensive
# work: an unbounded event of 200,000 inputs (8 MB) took 112 s and 4.8 GB, column lineage
# of 20,000 x 20 fields (21 MB) passed 6 GB. Real producers stay far below them (the largest
# real event in ../shared/fixtures is a few KB). Documented in the README.
MAX_FILE_BYTES = 256 * 1024 * 1024        # one lineage file (NDJSON is read one event at a time)
MAX_EVENT_BYTES = 4 * 1024 * 1024         # one event's JSON text
MAX_EVENT_DATASETS = 2_000                # inputs, and outputs, of one event (each)
MAX_COLUMN_LINEAGE_FIELDS = 10_000        # input fields named in one event's column lineage
MAX_QUARANTINE_RAW_BYTES = 64 * 1024      # raw text kept of an event quarantined for its size


def file_too_big(size: int) -> str:
    return (f"file of {size:,} bytes is larger than the limit of {MAX_FILE_BYTES:,} bytes per lineage "
            "file (MAX_FILE_BYTES); split it into smaller files")


def event_too_big(size: int) -> str:
    return (f"event of {size:,} bytes is larger than the limit of {MAX_EVENT_BYTES:,} bytes per event "
            "(MAX_EVENT_BYTES)")


def quarantine_text(raw: str) -> str:
    if len(raw) > MAX_QUARANTINE_RAW_BYTES:  # an event refused for its size is not kept whole
        raw = raw[:MAX_QUARANTINE_RAW_BYTES] + f"\n… [truncated: {len(raw):,} characters in all]"
    return raw
