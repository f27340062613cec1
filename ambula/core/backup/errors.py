"""The exceptions a backup or restore raises: one base class and the four cases told apart."""


class BackupError(Exception):
    """A backup or restore cannot go on; the message says why and what to do."""


class NotABackupError(BackupError):
    """The file is not an Ambula backup at all."""


class WrongKeyError(BackupError):
    """The passphrase or key does not open this backup."""


class DamagedBackupError(BackupError):
    """The backup is truncated, changed or otherwise damaged."""


class TargetNotEmptyError(BackupError):
    """The installation to restore into already holds data."""
