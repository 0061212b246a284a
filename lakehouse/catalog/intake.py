"""What the pipelines keep beside the delivered rows on the way in: the ledger of every delivered
file, the records rejected on the way in (parsing into bronze or conforming into silver), and
the direct identifiers split off at the boundary, encrypted.

These tables get the structural checks only (``lakehouse.quality``): keys and required fields."""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import citizen, column
from lakehouse.schema import Table

INTAKE: Final = (
    Table(
        "bronze.deliveries",
        "The ingestion ledger: every delivered file the pipelines saw, and what became of it.",
        (
            column("source", "text", "delivering source (claims, centre/gait, ...)", required=True),
            column("delivery_id", "text", "the delivery folder", required=True),
            column("file", "text", "file path relative to the drop folder", required=True),
            column("sha256", "text", "SHA-256 of the file's bytes", required=True),
            column("period", "text", "the delivery's period", required=True),
            column("delivered_at", "timestamp", "when the source sent it", required=True),
            column("rows_declared", "int", "data rows the manifest declares"),
            column("rows_read", "int", "data lines found in the file"),
            column("rows_accepted", "int", "rows written to bronze"),
            column("rows_quarantined", "int", "rows (or the whole file) quarantined"),
            column(
                "status",
                "text",
                "ingested | duplicate | rejected | skipped (a table the platform does not read: "
                "recorded, not failed)",
                required=True,
            ),
            column("duplicate_of", "text", "the earlier file with the same bytes"),
        ),
        key=("source", "delivery_id", "file"),
    ),
    Table(
        "quarantine.records",
        "Every rejected record or file with its reason; payloads carry citizen keys, never "
        "registration numbers.",
        (
            column("stage", "text", "bronze (parsing) or silver (conforming)", required=True),
            column("source", "text", "delivering source", required=True),
            column("table", "text", "the table the record was meant for", required=True),
            column("period", "text", "the pipeline partition that quarantined it", required=True),
            column("delivery_id", "text", "the delivery folder", required=True),
            column("file", "text", "file path relative to the drop folder", required=True),
            column("line", "int", "1-based line; null when the whole file is quarantined"),
            column("record_key", "text", "the record's own key, where it has one"),
            column("reason", "text", "reason code", required=True),
            column("message", "text", "what is wrong, in words", required=True),
            column("payload", "text", "the raw record, pseudonymised"),
            column(
                "rows",
                "int",
                "rows this record stands for (the file's rows for a file)",
                required=True,
            ),
        ),
        partition_by=("stage",),
    ),
    Table(
        "vault.identities",
        "Direct identifiers, encrypted (Fernet); only the access layer decrypts them, for the "
        "person themselves.",
        (
            citizen(),
            column("name_enc", "text", "name, encrypted", required=True, personal="encrypted"),
            column(
                "birth_date_enc",
                "text",
                "birth date, encrypted",
                required=True,
                personal="encrypted",
            ),
            column(
                "address_enc",
                "text",
                "road address, encrypted",
                required=True,
                personal="encrypted",
            ),
            column("key_id", "text", "which encryption key", required=True),
        ),
        key=("citizen_key",),
    ),
)
