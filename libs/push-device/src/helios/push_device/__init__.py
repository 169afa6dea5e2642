"""Helios push 2FA reference device: an Ed25519 key that approves or denies sign-ins.

    device = Device.generate()
    client = GatewayDevice(device, httpx.AsyncClient(base_url=gateway, cookies=user_session))
    await client.register("Ada's phone")      # once, signed in as the user
    for challenge in await client.pending():  # signed by the device: no session needed
        await client.approve(challenge)       # or client.deny(challenge)

The byte strings the device signs are specified in protocol.py.
"""

from helios.push_device.device import Device, NotRegisteredError
from helios.push_device.gateway import GatewayDevice, GatewayError
from helios.push_device.protocol import list_message, respond_message

__all__ = [
    "Device",
    "GatewayDevice",
    "GatewayError",
    "NotRegisteredError",
    "list_message",
    "respond_message",
]
