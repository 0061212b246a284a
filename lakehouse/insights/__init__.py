"""Insights for a citizen: explainable, sourced, never a diagnosis."""
