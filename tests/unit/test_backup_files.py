"""Where each file of a backup goes on the machine it is restored to."""

from __future__ import annotations

from pathlib import Path

import pytest

from kizuki.backup_files import BackupRefused, config_files, destination, directories, single_files
from shared.settings import load_settings


def test_every_file_a_backup_takes_goes_back_where_the_settings_of_the_new_machine_put_it() -> None:
    settings = load_settings(
        {
            "KIZUKI_DATA_DIR": "/new/var",
            "KIZUKI_MASTER_KEY": "/keys/master.key",
            "KIZUKI_POLICY": "/etc/p.toml",
        }
    )
    for name, path in single_files(settings).items():
        assert destination(settings, name) == path
    assert destination(settings, "secrets/master.key") == Path("/keys/master.key")
    assert destination(settings, "intake/patient-keys/1234") == Path("/new/var/intake/patient-keys/1234")
    assert destination(settings, "nats/credentials/admin.nk") == Path("/new/var/nats/credentials/admin.nk")
    assert set(directories(settings)) == {"intake/patient-keys", "intake/traces", "nats/credentials"}
    # The configuration in use then is kept beside the data, never written over the one in force.
    for name in config_files(settings):
        assert destination(settings, name) == Path("/new/var") / name


def test_a_file_this_version_does_not_know_is_refused_by_name() -> None:
    with pytest.raises(BackupRefused, match=r"somewhere/else\.key"):
        destination(load_settings({"KIZUKI_DATA_DIR": "/new/var"}), "somewhere/else.key")
