"""Smart analysis (智能数据分析, T/CI 1281 §6.1 d, §6.2 b, §8.5 d, §8.6 c): the billing core computes, the agent explains.

* `history` — daily kWh (and TOU, reactive, demand) per customer from the readings, as arrays;
* `forecast` — the month's kWh with an interval (seasonal baseline + month so far), vectorised;
* `month` — this month so far (`compute_bill` on the partial period) and the forecast bill;
* `anomalies` — days / weeks far above the customer's own pattern, zero days, backwards readings;
* `advice` — energy-saving items whose savings are what-if bills from `compute_bill`;
* `market` — agency / market customers' month cost forecast and deviation warning;
* `policy.yaml` — every threshold, versioned.

Numbers here that are not money (kWh statistics) may be floats; every amount comes from
`compute_bill`, and every kWh a bill is computed on is a `Decimal`.
"""
