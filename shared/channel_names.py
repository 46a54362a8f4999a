"""The name of a channel system that publishes on the bus (``[intake.bus_channels]`` of the policy).

It is one subject token (``submissions.<name>``), a file name (its credential) and part of a bus
user's name, so nothing else fits: lowercase letters, digits and single hyphens. Apart from the bus
module, so that reading the policy loads no messaging library.
"""

from __future__ import annotations

import re

CHANNEL_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_CHANNEL_NAME = 40


def check_channel_name(channel: str) -> None:
    if len(channel) > MAX_CHANNEL_NAME or not CHANNEL_NAME.match(channel):
        raise ValueError(
            f"a channel's name is lowercase letters, digits and single hyphens, at most "
            f"{MAX_CHANNEL_NAME} characters (e.g. call-centre), not {channel!r}"
        )
