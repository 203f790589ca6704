"""The monthly billing cycle: read → compute → verify → issue (T/CI 1281 §7)."""
