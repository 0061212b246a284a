"""The clinician app."""
