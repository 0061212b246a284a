"""The lakehouse: what every table is, and the one way to read and write it.

Nothing here knows Dagster or Streamlit. ``catalog`` is the declarative spec of every table,
``delta`` the one Delta IO module, ``read`` the one read path (DuckDB and Polars), ``pseudonym``
and ``identity`` the boundary for personal data.
"""
