"""Voice of the customer and CX indicators (guide §8.4, §8.8–§8.11; T/CI 1281 §5.2a/c/d).

topics: high-frequency issues in a period's customer messages; needs: the needs loop (every
request not served at once, with its deadline and state); report: the periodic satisfaction
report (Markdown / HTML with inline SVG charts); indicators: the guide's four kinds of CX
indicators (交互 / 感知 / 行为 / 结果) computed from the records, defined in indicators.yaml.
"""
