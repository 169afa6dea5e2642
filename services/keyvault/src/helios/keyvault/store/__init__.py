"""Keyvault's persistence: keys, versions with sealed material, migrations."""
