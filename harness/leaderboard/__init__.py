"""Leaderboard tables and significance tests, built only from the results store."""
