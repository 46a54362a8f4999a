"""The cluster's second one-shot step (compose service `provision`): the streams and consumers.

As `kizuki provision` does for a server of one's own, with the admin credential, but without making
keys (the `keys` step did) and waiting for the cluster: its nodes start together and JetStream answers
only once they have elected a meta leader. The services wait for this step to have succeeded.
"""

from __future__ import annotations

import asyncio
import sys
import time

from kizuki.permissions import ADMINISTRATOR
from kizuki.provision import provision_bus
from shared.settings import Settings, load_settings

WAIT_SECONDS = 120.0


def replicas(settings: Settings) -> tuple[int, ...]:
    """The copies of each stream to ask for (KIZUKI_NATS_REPLICAS), where the code takes that setting;
    code without it declares one copy of each."""
    wanted = getattr(settings, "nats_replicas", None)
    return () if wanted is None else (int(wanted),)


async def main() -> None:
    settings = load_settings()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            await provision_bus(settings.bus_url, settings.bus_user(ADMINISTRATOR), *replicas(settings))
        except Exception as error:  # the cluster not there yet: any error, until the deadline
            if time.monotonic() > deadline:
                sys.exit(f"provision: {settings.bus_url} not ready after {WAIT_SECONDS:g} s: {error!r}")
            print(f"provision: not yet ({type(error).__name__}: {error}); trying again", flush=True)
            await asyncio.sleep(2)
            continue
        break
    print(f"provision: the streams and every consumer are declared on {settings.bus_url}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
