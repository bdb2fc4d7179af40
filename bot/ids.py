"""Every Slack action, block and callback id warroom uses; templates and listeners share them."""

from __future__ import annotations

from enum import StrEnum

SLASH_COMMAND = "/incident"


class ActionId(StrEnum):
    CARD_STATUS = "incident_card_status"
    CARD_SEVERITY = "incident_card_severity"
    CARD_RESOLVE = "incident_card_resolve"
    CARD_CONTAIN = "incident_card_contain"
    CONTAIN_APPROVE = "containment_approve"
    CONTAIN_REJECT = "containment_reject"
    CONTAIN_APPROVE_ALL = "containment_approve_all"
    CONTAIN_MARK_DONE = "containment_mark_done"
    CONTAIN_RETRY = "containment_retry"
    DECLARE_TITLE = "declare_title_input"
    DECLARE_DESCRIPTION = "declare_description_input"
    DECLARE_SEVERITY = "declare_severity_select"
    DECLARE_TYPE = "declare_type_select"
    DECLARE_AFFECTED = "declare_affected_input"
    DECLARE_FLAGS = "declare_flags_checkboxes"
    DECLARE_AI_ACT = "declare_ai_act_select"
    NOTIFY_SEND_NOW = "notification_send_now"
    NOTIFY_EDIT = "notification_edit"
    NOTIFY_SKIP = "notification_skip"
    NOTIFY_EDIT_TEXT = "notification_edit_text"
    NOTIFY_SKIP_REASON = "notification_skip_reason"
    CADENCE_SNOOZE = "cadence_snooze"
    CADENCE_SNOOZE_LONG = "cadence_snooze_long"
    CADENCE_DISMISS = "cadence_dismiss"
    REGULATORY_MARK_SUBMITTED = "regulatory_mark_submitted"


class BlockId(StrEnum):
    CARD_ACTIONS = "incident_card_actions"
    DECLARE_TITLE = "declare_title"
    DECLARE_DESCRIPTION = "declare_description"
    DECLARE_SEVERITY = "declare_severity"
    DECLARE_TYPE = "declare_type"
    DECLARE_AFFECTED = "declare_affected"
    DECLARE_FLAGS = "declare_flags"
    DECLARE_AI_ACT = "declare_ai_act"
    NOTIFY_DRAFT_ACTIONS = "notification_draft_actions"
    NOTIFY_EDIT_TEXT = "notification_edit_text"
    NOTIFY_SKIP_REASON = "notification_skip_reason"
    CADENCE_ACTIONS = "cadence_actions"
    REGULATORY_ACTIONS = "regulatory_actions"


class CallbackId(StrEnum):
    DECLARE_MODAL = "declare_incident_modal"
    NOTIFY_EDIT_MODAL = "notification_edit_modal"
    NOTIFY_SKIP_MODAL = "notification_skip_modal"


LET_WARROOM_DECIDE = "let_warroom_decide"
FLAG_PERSONAL_DATA = "personal_data"
FLAG_PUBLIC_FACING = "public_facing"
