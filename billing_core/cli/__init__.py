"""The billing core's Typer sub-apps (`powerdesk billing`, `powerdesk db`, `powerdesk demo`),
registered under the `powerdesk.cli` entry points in pyproject.toml."""
