"""PowerDesk tools layer."""
