"""What every app shares: sign-in, the access layer's session, i18n, theme, layout, shared views
and the image rendering (``render``)."""
