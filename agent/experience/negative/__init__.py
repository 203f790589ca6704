"""Negative customer experience (guide §7.4): detect it, apologise, record its cause, offer a remedy, report."""
