"""Helios keyvault: key hierarchy, envelope encryption, signing and secrets."""
