"""Identity on NATS: the provider configuration's change announcements (C1)."""
