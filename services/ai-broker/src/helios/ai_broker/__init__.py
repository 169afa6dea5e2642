"""Helios AI broker: delegated AI sessions, action registry and confirmations."""
