"""PowerDesk agent layer."""
