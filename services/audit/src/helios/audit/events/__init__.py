"""Audit's stream consumers."""
