"""Silver and gold: typed, conformed, corrected, and shaped for the apps (plain Polars)."""
