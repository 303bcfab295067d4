"""Leaderboard tables and significance tests, built only from the results store."""

# defaults of ``harness leaderboard`` and ``harness sweep``; kept here, away from pandas and scipy, so the
# CLI can name them without importing the builder
DEFAULT_RESAMPLES = 10000
DEFAULT_ALPHA = 0.05
