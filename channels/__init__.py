"""PowerDesk channels layer."""
