"""PowerDesk billing core: tariffs, bills, readings, payments and work orders.

This package is the bottom layer. It imports no other PowerDesk package and no web
framework, so a utility can run it from batch jobs, the agent's tools or a notebook alike.
"""
