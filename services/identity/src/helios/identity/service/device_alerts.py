"""Unknown-device alerts (S4): a sign-in from a device never seen for the user mails them when,
where and with which browser, with a link to review their sessions.

What a "device" is: the browser family (browser and operating system, without versions, so an
update is not a new device) plus the client's IP network (/24 for IPv4, /64 for IPv6), hashed
with the user id into `device_fingerprint`. The remembered-device token of A9 is not used: the
sign-in observers are not given it, and a browser that never ticked "remember me" must still be
recognised. City and country come from the call context, i.e. only from a trusted proxy.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid

from helios.identity.domain.model import Session, SignInMethod, User
from helios.identity.domain.sign_in_records import DeviceNovelty, DeviceSighting
from helios.identity.ports import Clock, IdentityTransaction
from helios.identity.service.account_mail import AccountMail
from helios.kernel.changes import Change
from helios.kernel.context import CallContext

__all__ = [
    "ALERT_SUBJECT",
    "KNOWN_DEVICES_PER_USER",
    "DeviceAlerts",
    "browser_family",
    "device_fingerprint",
]

ALERT_SUBJECT = "New sign-in to your Helios account"
KNOWN_DEVICES_PER_USER = 50
"""Devices remembered per user; the least recently seen beyond this are forgotten."""
SESSIONS_PAGE = "account/sessions"
"""Where the alert sends the user to review (and revoke) their sessions."""

# (token in the user agent, name); the first match wins, so more specific tokens come first
# (Edge and Opera also say Chrome; Chrome also says Safari; Android also says Linux).
_BROWSERS = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("FxiOS/", "Firefox"),
    ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)
_PRODUCT = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,39}")


def browser_family(user_agent: str) -> str:
    """'Firefox on Linux', 'Chrome on Android', a non-browser client's product name ('curl'),
    or 'an unknown browser'; never version numbers or free text from the header."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "")
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    if not browser:
        product = _PRODUCT.match(user_agent)
        browser = product.group(0) if product and product.group(0) != "Mozilla" else ""
    if not browser:
        return "an unknown browser"
    return f"{browser} on {system}" if system else browser


def _network(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def device_fingerprint(user_id: uuid.UUID, ctx: CallContext) -> str:
    """The id of the device of this call for this user: a digest of the user, the browser
    family and the IP network (32 hex characters; the same device of two users differs)."""
    material = f"{user_id}|{browser_family(ctx.user_agent)}|{_network(ctx.ip)}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _place(ctx: CallContext) -> str:
    known = ", ".join(part for part in (ctx.city, ctx.country) if part)
    address = f"IP address {ctx.ip}" if ctx.ip else "no IP address"
    return f"{known} ({address})" if known else f"an unknown location ({address})"


class DeviceAlerts:
    """A SignInObserver: records the device of every opened session and, when the user had
    other devices but never this one, queues the alert mail (sent only if the sign-in commits).
    The first sign-in of an account and impersonation sessions never alert."""

    def __init__(
        self,
        clock: Clock,
        account_mail: AccountMail,
        keep_per_user: int = KNOWN_DEVICES_PER_USER,
    ) -> None:
        self._clock = clock
        self._mail = account_mail
        self._keep = keep_per_user

    async def opened(
        self, tx: IdentityTransaction, user: User, session: Session, ctx: CallContext
    ) -> None:
        if session.impersonator_id is not None:
            return
        device_id = device_fingerprint(user.id, ctx)
        browser = browser_family(ctx.user_agent)
        novelty = await tx.see_device(
            DeviceSighting(
                user_id=user.id,
                device_id=device_id,
                browser=browser,
                at=session.created_at,
                ip=ctx.ip,
                city=ctx.city,
                country=ctx.country,
            ),
            self._keep,
        )
        if novelty is not DeviceNovelty.NEW:
            return
        when = session.created_at.strftime("%Y-%m-%d %H:%M UTC")
        review = f"{self._mail.public_url.rstrip('/')}/{SESSIONS_PAGE}"
        await tx.enqueue_mail(
            self._mail.platform_org_id,
            user.email,
            ALERT_SUBJECT,
            f"Your Helios account {user.email} was just signed in to from a device it had not "
            "been used from before.\n\n"
            f"When: {when}\n"
            f"Where: {_place(ctx)}\n"
            f"Browser: {browser}\n\n"
            "If this was you, there is nothing to do.\n"
            "If it was not, review your sessions and sign out the ones you do not recognise, "
            f"then change your password:\n\n{review}\n",
        )
        await tx.record(
            Change(
                action="identity.user.newDeviceAlert",
                resource_type="identity.user",
                resource_id=str(user.id),
                actor_id=str(user.id),
                diff={
                    "device_id": device_id,
                    "browser": browser,
                    "city": ctx.city,
                    "country": ctx.country,
                    "session_id": str(session.id),
                },
            ),
            ctx,
        )

    async def failed(
        self,
        tx: IdentityTransaction,
        user: User | None,
        method: SignInMethod,
        reason: str,
        ctx: CallContext,
    ) -> None:
        """Failed attempts neither alert nor make a device known."""
