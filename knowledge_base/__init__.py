"""PowerDesk knowledge_base layer."""
