"""Automated retraining: triggers (drift, feedback patterns, schedules), guards, and what happens to a winner."""
