"""The errors warroom raises on purpose; each carries a message that is safe to show a user."""

from __future__ import annotations


class WarroomError(Exception):
    """Base of the errors warroom raises deliberately."""


class UserError(WarroomError):
    """Something the person asked for cannot be done; `user_message` says why."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class UsageError(UserError):
    """A malformed command; `usage` shows the right form."""

    def __init__(self, user_message: str, *, usage: str) -> None:
        super().__init__(user_message)
        self.usage = usage


class NotFoundError(UserError):
    """The incident or thing named does not exist."""


class NotInWarRoomError(UserError):
    """A command that needs a war room was used elsewhere."""


class PermissionDeniedError(UserError):
    """The person may not do this; the message says who may."""


class InvalidTransitionError(UserError):
    """The incident cannot move to the asked-for state from where it is."""


class ExternalServiceError(WarroomError):
    """Slack or another service failed in a way the user cannot fix."""


class ConfigurationError(WarroomError):
    """Settings or the YAML file are wrong; the message names what."""


class StorageUnavailableError(WarroomError):
    """The database cannot be reached or is locked; the caller may retry later."""
