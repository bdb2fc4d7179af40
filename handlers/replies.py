"""Turn warroom's errors into Slack replies: usage and refusals ephemeral, unknowns with an id."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bot.errors import ExternalServiceError, UsageError, UserError
from bot.services.workflow import IncidentWorkflow

log = logging.getLogger("warroom.handlers")

Reply = Callable[..., Any]


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
