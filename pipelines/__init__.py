"""The pipelines: deliveries into bronze, bronze into silver, silver into gold.

``ingest`` is the bronze boundary (reading deliveries, pseudonymising, quarantining bad input),
``transform`` the silver and gold logic; both are plain Polars, testable without Dagster.
``defs`` wraps them as Dagster assets, checks, sensors and schedules, and ``definitions`` is the
entry point the UI and ``gjh build`` load.
"""
