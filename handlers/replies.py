"""Turn warroom's errors into Slack replies: usage and refusals ephemeral, unknowns with an id."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from slack_bolt import Respond

from bot.errors import ExternalServiceError, UsageError, UserError
from bot.services.workflow import IncidentWorkflow

log = logging.getLogger("warroom.handlers")

Reply = Callable[..., Any]

# Where an ack function leaves work for its lazy listener: Bolt hands lazy listeners a copy
# of the context as it stood after the ack function returned.
FOLLOW_UP = "warroom_follow_up"
REPLY_LATER = "warroom_reply_later"


def keep_reply(context: dict[str, Any]) -> Reply:
    """A reply function that stores the message for the lazy listener to send."""

    def store(**message: Any) -> None:
        context[REPLY_LATER] = message

    return store


@contextmanager
def replying_to_errors(reply: Reply, workflow: IncidentWorkflow) -> Iterator[None]:
    """Answer with `reply` (an ack or a respond) when the block raises."""
    try:
        yield
    except UsageError as error:
        reply(**workflow.user_error(error.user_message, error.usage))
    except UserError as error:
        reply(**workflow.user_error(error.user_message))
    except ExternalServiceError as error:
        error_id = uuid.uuid4().hex[:8]
        log.warning("error %s: %s", error_id, error)
        reply(**workflow.user_error(f"Slack did not cooperate ({error}). Error id {error_id}."))
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("error %s", error_id)
        message = f"Something went wrong on warroom's side. Error id {error_id}."
        reply(**workflow.user_error(message))


def reply_later(workflow: IncidentWorkflow) -> Callable[..., None]:
    """The lazy listener for clicks: send the reply the ack function kept, then run the Slack
    follow-up it left (both are optional)."""

    def send(context: dict[str, Any], respond: Respond) -> None:
        if REPLY_LATER in context:
            respond(**context[REPLY_LATER], replace_original=False)
        if FOLLOW_UP in context:
            with replying_to_errors(respond, workflow):
                workflow.follow_up(context[FOLLOW_UP])

    return send
