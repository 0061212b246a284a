"""The citizen app."""
