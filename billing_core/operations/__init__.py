"""Billing operations after a bill is issued: payments, bank reconciliation, dunning and late
fees, work orders, customer notifications and the T/CI 1281 KPIs. Thresholds and rates are
policy data (`policy.yaml`)."""
