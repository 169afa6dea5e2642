"""`seed-demo`: a demo org with an admin, and a platform operator account, whose one-time
passwords are printed once (local run)."""

from __future__ import annotations

import json
import secrets

from helios.identity.settings import IdentitySettings
from helios.identity.store import tables
from helios.identity.wiring import build_service
from helios.kernel.context import CallContext
from helios.kernel.errors import AlreadyExistsError
from helios.kernel.runtime import ServiceRuntime

__all__ = ["DEMO_ADMIN_EMAIL", "DEMO_ORG_SLUG", "DEMO_ROOT_EMAIL", "seed_demo"]

DEMO_ORG_SLUG = "demo"
DEMO_ADMIN_EMAIL = "admin@demo.helios.test"
DEMO_ROOT_EMAIL = "root@demo.helios.test"


async def seed_demo(settings: IdentitySettings) -> int:
    """Create the demo admin and org, and the platform operator account (authz's `seed-root`
    makes it the root), and print `{"email", "password", "org", "root": {"email", "password",
    "user_id"}}` as JSON on stdout; exits 1 (printing nothing secret) if they exist already."""
    runtime = ServiceRuntime.build("identity", settings, tables.outbox)
    services = build_service(settings, runtime)
    ctx = CallContext(caller="identity-seed")
    password = secrets.token_urlsafe(18)
    root_password = secrets.token_urlsafe(18)
    try:
        user = await services.accounts.sign_up(DEMO_ADMIN_EMAIL, password, "Demo admin", ctx, None)
        org = await services.orgs.create_org(DEMO_ORG_SLUG, "Demo org", user.id, ctx, None)
        root = await services.accounts.sign_up(
            DEMO_ROOT_EMAIL, root_password, "Platform operator", ctx, None
        )
    except AlreadyExistsError as exc:
        print(json.dumps({"error": exc.message}))
        return 1
    finally:
        await runtime.close()
    operator = {"email": root.email, "password": root_password, "user_id": str(root.id)}
    print(
        json.dumps({"email": user.email, "password": password, "org": org.slug, "root": operator})
    )
    return 0
