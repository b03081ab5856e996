"""`nsa watch`: the live Textual dashboard. Textual is imported only by the app modules,
never by the pure helpers (downsample, braille, series) which tests use without a screen."""
