"""PowerDesk tools layer: the billing tools the agent calls, authorized by a verified principal.

Start at `tools.registry` (the list of tools and `call_tool`), `tools.context` (who a call runs
for) and `tools/README.md`. Imports only `billing_core` and `knowledge_base`.
"""
