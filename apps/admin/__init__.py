"""The admin app."""
