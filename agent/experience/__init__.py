"""Customer-experience management (the 供电服务 customer-experience guide §5, §7.4, §8, §11).

Who the customer is (classes, tags, portraits), service that differs by class, negative
experiences and their remedies, and the voice of the customer (topics, the needs loop, the
satisfaction report, the four kinds of CX indicators). It reads the records the product already
keeps — customers, bills, readings and payments (billing_core), tickets and audit events (tools),
conversations and turns (agent) — so it lives in the agent layer, the lowest one that sees them all.
"""
