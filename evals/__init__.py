"""PowerDesk evals layer."""
