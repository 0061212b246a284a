"""What every app shares: sign-in, the access layer's session, i18n, theme and layout."""
