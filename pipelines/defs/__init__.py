"""Dagster definitions, one module per source, plus the shared partitions and resources."""
