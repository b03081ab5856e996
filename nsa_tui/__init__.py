"""nsa_tui: the terminal tools (`nsa launch`, `watch`, `status`, ...). Never imports torch."""
