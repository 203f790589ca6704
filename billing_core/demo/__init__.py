"""The demo utility: a seeded, reproducible town of customers, meters, readings and bills."""
