"""Method plugins shipped with the harness (each registers through the ``tipr.methods`` entry point)."""
