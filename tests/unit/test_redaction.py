"""The redaction pass for external audiences, on realistic incident text."""

from __future__ import annotations

import dataclasses

import pytest

from bot.domain.redaction import Redacted, is_external, redact
from bot.domain.vocabulary import Role

pytestmark = pytest.mark.unit

ROLES = {"U024BE7LH": Role.INCIDENT_COMMANDER, "U07SAFETY": Role.AI_SAFETY_LEAD}


# --- realistic paragraphs ------------------------------------------------------------------


def test_a_quoted_support_ticket_loses_the_customers_contact_details() -> None:
    ticket = (
        'Ticket #4821 from jane.doe+billing@example.co.uk: "Your assistant told me my order '
        "was refunded. Call me on +44 20 7946 0958 or my office (415) 555-0132 before 5pm. "
        'I logged in from 203.0.113.42 on 2024-06-12."'
    )
    result = redact(ticket)
    assert result.text == (
        'Ticket #4821 from [email]: "Your assistant told me my order '
        "was refunded. Call me on [phone] or my office [phone] before 5pm. "
        'I logged in from [ip address] on 2024-06-12."'
    )
    assert result.counts == {"email": 1, "phone": 2, "ip_address": 1}


def test_a_log_excerpt_loses_its_api_key_token_and_client_address() -> None:
    log = (
        "2024-06-12T10:31:07.412Z ERROR gateway request_id=3f8e2c1a-9b7d-4e6f-8a5b-1c2d3e4f5a6b "
        "client_ip=198.51.100.7 model=support-bot-v2 latency_ms=1200 status=503\n"
        "2024-06-12T10:31:07.415Z DEBUG headers={'Authorization': "
        "'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1g'}\n"
        "2024-06-12T10:31:07.501Z WARN upstream rejected OPENAI_API_KEY=sk-proj-abcDEF1234567890"
        "ghiJKLmno from 2001:db8:85a3::8a2e:370:7334"
    )
    result = redact(log)
    assert result.text == (
        "2024-06-12T10:31:07.412Z ERROR gateway request_id=3f8e2c1a-9b7d-4e6f-8a5b-1c2d3e4f5a6b "
        "client_ip=[ip address] model=support-bot-v2 latency_ms=1200 status=503\n"
        "2024-06-12T10:31:07.415Z DEBUG headers={'Authorization': 'Bearer [secret]'}\n"
        "2024-06-12T10:31:07.501Z WARN upstream rejected OPENAI_API_KEY=[secret] "
        "from [ip address]"
    )
    assert result.counts == {"secret": 2, "ip_address": 2}


def test_a_slack_thread_names_roles_instead_of_people() -> None:
    thread = (
        "<@U024BE7LH|alice> confirmed the jailbreak in sev1 incident #12. <@U07SAFETY> pulled "
        "the prompt, <@U0NEWBIE> is paging the vendor at <mailto:oncall@vendor.io|oncall@vendor.io>"
        " or <tel:+14155550132|+1 415 555 0132>. Dashboard: "
        "<https://grafana.example.com/d/ab12/llm?from=now-1h|latency>; raw logs: "
        "<https://logs.example.com/q?id=77&token=a1b2c3d4e5|here>."
    )
    result = redact(thread, role_of=ROLES)
    assert result.text == (
        "the Incident commander confirmed the jailbreak in sev1 incident #12. the AI safety lead "
        "pulled the prompt, a responder is paging the vendor at [email] or [phone]. Dashboard: "
        "<https://grafana.example.com/d/ab12/llm?from=now-1h|latency>; raw logs: [secret link]."
    )
    assert result.counts == {"mention": 3, "email": 1, "phone": 1, "secret": 1}


def test_ordinary_incident_text_passes_unchanged() -> None:
    text = (
        "Update 3 (2024-06-12 14:05 UTC, 2024-06-12T14:05:00Z): support-bot-v2 v1.4.2 rolled back "
        "to 1.4.1 after HTTP 503 on 12% of requests; p99 1200 ms, 503 errors in 15 minutes, "
        "costs $1,200.50. Incident #12 relates to #9. Models: claude-3-5-sonnet-20241022, "
        "gpt-4o-2024-08-06, llama-3.1-70b-instruct. Request 3f8e2c1a-9b7d-4e6f-8a5b-1c2d3e4f5a6b "
        "at 10:30:45, retry +5% slower. max_tokens=4096 temperature=0.7 top_p=0.95. Key: the "
        "model drifted. See https://status.example.com/incidents/12?ref=slack and "
        "<https://grafana.example.com/d/ab12/llm?orgId=1&from=now-6h|the dashboard>. "
        "Build 20240612, trace 1718000000000, firmware v1.2.3.4."
    )
    result = redact(text)
    assert result.text == text
    assert result.counts == {}
    assert result.total == 0


# --- each kind on its own ------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    ["jane@example.com", "jane.doe+billing@example.co.uk", "ops_team-1@mail.example.io"],
)
def test_emails_are_replaced(email: str) -> None:
    assert redact(f"write to {email}.").text == "write to [email]."


@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "+1-415-555-0132",
        "+49 (0)30 1234567",
        "+33 1 23 45 67 89",
        "+14155550132",
        "(415) 555-0132",
        "415.555.0132",
        "415-555-0132",
        "+1 (415) 555-0132",
    ],
)
def test_phone_numbers_are_replaced(phone: str) -> None:
    result = redact(f"call {phone} now")
    assert result.text == "call [phone] now"
    assert result.counts == {"phone": 1}


@pytest.mark.parametrize(
    "text",
    [
        "503 errors",
        "p99 1200 ms",
        "on 2024-06-12 at 14:05",
        "12.06.2024",
        "version 1.2.3",
        "$1,200.50",
        "+5% errors",
        "build 20240612",
    ],
)
def test_dates_times_amounts_and_short_numbers_are_not_phones(text: str) -> None:
    assert redact(text).text == text


@pytest.mark.parametrize(
    "address",
    [
        "203.0.113.42",
        "10.0.0.1",
        "255.255.255.255",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "2001:db8:85a3::8a2e:370:7334",
        "::1",
        "fe80::1%eth0",
        "::ffff:192.0.2.1",
    ],
)
def test_ip_addresses_are_replaced(address: str) -> None:
    result = redact(f"from {address}, again")
    assert result.text == "from [ip address], again"
    assert result.counts == {"ip_address": 1}


def test_an_ip_with_port_or_prefix_keeps_the_port_and_prefix() -> None:
    assert redact("10.1.2.3:8443 and 10.0.0.0/8").text == "[ip address]:8443 and [ip address]/8"


def test_a_bare_four_part_version_is_redacted_but_a_v_prefixed_one_is_kept() -> None:
    assert redact("1.2.3.4 vs v1.2.3.4").text == "[ip address] vs v1.2.3.4"


@pytest.mark.parametrize("text", ["256.1.1.1", "10:30:45", "00:1a:2b:3c:4d:5e", "1.2.3"])
def test_things_that_only_look_like_addresses_are_kept(text: str) -> None:
    assert redact(text).text == text


@pytest.mark.parametrize(
    "secret",
    [
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxp-123456789012-123456789012-abcdef123456",
        "xapp-1-A0123456789-1234567890123-abcdef0123456789",
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAY34FZKBOKMUTVV7A",
        "ghp_1234567890abcdefghijABCDEFGHIJ123456",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "sk-ant-api03-abcdefghijklmnop1234567890",
        "sk-proj-abcDEF1234567890ghiJKLmno",
        "sk-abcdefghijklmnopqrstuvwxyz123456",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_51H8abcdEFGH1234ijkl",
        "pk_live_51H8abcdEFGH1234ijkl",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1g",
        "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "dGhpc2lzYXNlY3JldDEyMzQ1Njc4OTBhYmNkZWZnaGlq",
    ],
)
def test_tokens_in_common_formats_are_replaced(secret: str) -> None:
    result = redact(f"leaked {secret} in the prompt")
    assert result.text == "leaked [secret] in the prompt"
    assert result.counts == {"secret": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2", "password=[secret]"),
        ("token: a1b2c3d4", "token: [secret]"),
        ('"api_key": "live-0f3a9"', '"api_key": "[secret]"'),
        ("x-api-key: Zm9vYmFyYmF6cXV4cXV1", "x-api-key: [secret]"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = [secret]",
        ),
        (
            "https://api.example.com/v1/chat?sig=ab12cd&model=x",
            "https://api.example.com/v1/chat?sig=[secret]&model=x",
        ),
        ("Authorization: Bearer abcdef0123456789abcdef", "Authorization: Bearer [secret]"),
    ],
)
def test_labelled_secrets_keep_their_label(text: str, expected: str) -> None:
    result = redact(text)
    assert result.text == expected
    assert result.counts == {"secret": 1}


def test_a_pem_private_key_block_is_replaced_whole() -> None:
    text = (
        "key used by the scraper:\n-----BEGIN RSA PRIVATE KEY-----\n"
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
        "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
        "-----END RSA PRIVATE KEY-----\nrotated at 14:05."
    )
    result = redact(text)
    assert result.text == "key used by the scraper:\n[secret]\nrotated at 14:05."
    assert result.counts == {"secret": 1}


@pytest.mark.parametrize(
    "text",
    [
        "support-bot-v2",
        "claude-3-5-sonnet-20241022",
        "meta-llama-3-1-70b-instruct-finetuned-v2-2024",
        "3f8e2c1a-9b7d-4e6f-8a5b-1c2d3e4f5a6b",
        "Key: the model drifted",
        "token: expired",
        "max_tokens=4096",
        "sort_key=created_at",
        "the bearer of bad news",
        "internationalization",
    ],
)
def test_model_names_uuids_and_prose_are_not_secrets(text: str) -> None:
    assert redact(text).text == text


def test_mentions_use_role_labels_or_a_responder() -> None:
    result = redact("<@U024BE7LH> and <@U07SAFETY|bob> asked <@W0GUEST|eve>", role_of=ROLES)
    assert result.text == "the Incident commander and the AI safety lead asked a responder"
    assert result.counts == {"mention": 3}


def test_mentions_without_a_role_map_become_a_responder() -> None:
    assert redact("thanks <@U024BE7LH>!").text == "thanks a responder!"


def test_slack_mailto_and_tel_links_are_replaced_whole() -> None:
    text = "<mailto:a@b.co|a@b.co> / <tel:+442079460958|+44 20 7946 0958> / <tel:+442079460958>"
    result = redact(text)
    assert result.text == "[email] / [phone] / [phone]"
    assert result.counts == {"email": 1, "phone": 2}


@pytest.mark.parametrize(
    "param",
    ["token", "access_token", "key", "api_key", "X-Amz-Signature", "sig", "secret", "password"],
)
def test_slack_links_with_a_credential_in_the_query_are_replaced(param: str) -> None:
    text = f"see <https://files.example.com/x.csv?a=1&{param}=q9w8e7|the export>"
    result = redact(text)
    assert result.text == "see [secret link]"
    assert result.counts == {"secret": 1}


def test_slack_links_without_credentials_are_kept() -> None:
    text = "<https://status.example.com/incidents/12|status page> <https://docs.example.com/keys>"
    assert redact(text).text == text


def test_counts_add_up_across_kinds() -> None:
    result = redact("a@b.co c@d.co 10.0.0.1 +1-415-555-0132 AKIAIOSFODNN7EXAMPLE <@U1>")
    assert result.text == "[email] [email] [ip address] [phone] [secret] a responder"
    assert result.counts == {"email": 2, "ip_address": 1, "phone": 1, "secret": 1, "mention": 1}
    assert result.total == 6


def test_redacting_twice_changes_nothing_more() -> None:
    once = redact("mail jane@example.com from 10.0.0.1 with token=abc123def", role_of=ROLES)
    twice = redact(once.text)
    assert twice.text == once.text
    assert twice.counts == {}


def test_the_result_is_frozen() -> None:
    result = redact("x")
    assert result == Redacted(text="x", counts={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("audience", "external"),
    [
        ("affected_users", True),
        ("customer_support_leads", True),
        ("pr_team", True),
        ("regulatory_body", True),
        ("executives", False),
        ("engineering", False),
        ("", False),
    ],
)
def test_only_the_four_outside_audiences_are_external(audience: str, external: bool) -> None:
    assert is_external(audience) is external
