"""Scoring jobs: pure numeric cores with thin database readers and writers."""
