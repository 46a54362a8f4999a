"""`kizuki rebuild SERVICE`: a service's store, lost or broken without a backup, made again from the
record alone.

Only escalation's store can be rebuilt: ``NOT_REBUILT`` says why each other one is not. The rebuild is
escalation's own code, run as a process of its own (as ``kizuki run`` runs each service), so that the
command imports no service.
"""

from __future__ import annotations

import subprocess
import sys

REBUILT = {"escalation": "services.escalation.rebuild_command"}
# Why each other store is not rebuilt from the record: what it holds that the record does not.
NOT_REBUILT = {
    "intake": "the fingerprint of each registration (which tells an Idempotency-Key sent again from one "
    "used for another complaint) and the register of every message each channel received, with why "
    "some were refused",
    "notifier": "each recipient's contact details and the text of each notification, which the record "
    "never carries, and the bookkeeping of delivery attempts still to be made",
    "followup": "the notes of each callback call, the patient's comments, and the callback rules and "
    "calendar each callback keeps",
    "console": "nothing the record lacks (its read model is folded from the record), but its consumer "
    "would have to read the record again from the start, which this command does not do",
}


def rebuild_store(service: str) -> int:
    """Rebuild the service's store with the settings of this environment; the rebuild says what it did
    or why it could not. Returns its exit status."""
    if service not in REBUILT:
        refusal = f"{service}'s store cannot be rebuilt from the record: it holds {NOT_REBUILT[service]}"
        print(f"kizuki: {refusal}", file=sys.stderr)
        return 1
    return subprocess.run([sys.executable, "-m", REBUILT[service]], check=False).returncode
