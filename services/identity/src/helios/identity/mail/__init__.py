"""Outbound mail: the background sender that DKIM-signs queued messages and relays them by SMTP."""

from helios.identity.mail.dkim_keys import DKIM_KEY_NAME, KeyvaultDkimKeys
from helios.identity.mail.sender import MailSender, SmtpRelay

__all__ = ["DKIM_KEY_NAME", "KeyvaultDkimKeys", "MailSender", "SmtpRelay"]
