"""Identity's use cases: accounts, sign-in, sessions, orgs and the areas built on them."""
