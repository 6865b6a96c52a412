"""API key parsing, presented secrets, constant-time lookup and channel permissions."""

from __future__ import annotations

import pytest

from streams.collector.auth import (
    authenticate,
    forbidden_channels,
    parse_api_keys,
    presented_secret,
)
from streams.errors import ConfigError

SPEC = "web-shop:s3cret-web:web;tills:s3cret-till:store,call_centre;crm:s3cret-crm:*"


def test_parses_names_secrets_and_channel_sets() -> None:
    keys = parse_api_keys(SPEC)
    assert [k.name for k in keys] == ["web-shop", "tills", "crm"]
    assert keys[0].channels == frozenset({"web"})
    assert keys[1].channels == frozenset({"store", "call_centre"})
    assert keys[2].all_channels


def test_tolerates_spaces_and_trailing_separators() -> None:
    keys = parse_api_keys(" a:secret-aa: web , app ;")
    assert keys[0].name == "a"
    assert keys[0].channels == frozenset({"web", "app"})


def test_secret_never_in_repr() -> None:
    (key,) = parse_api_keys("a:very-secret-value:web")
    assert "very-secret-value" not in repr(key)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty"),
        ("a:secret-aa", "3 fields"),
        ("a:secret-aa:web:extra", "3 fields"),
        (":secret-aa:web", "name"),
        ("a b:secret-aa:web", "name"),
        ("a:short:web", "at least 8"),
        ("a:secret-aa:fax", "unknown: fax"),
        ("a:secret-aa:", "none given"),
        ("a:secret-aa:web;a:secret-bb:app", "duplicate key names"),
        ("a:secret-aa:web;b:secret-aa:app", "same secret"),
    ],
)
def test_bad_specs_name_the_fault(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_api_keys(spec)


def test_config_errors_never_show_the_secret() -> None:
    with pytest.raises(ConfigError) as info:
        parse_api_keys("a:hidden-secret-1:fax")
    assert "hidden-secret-1" not in str(info.value)


def test_secret_from_x_api_key_header_first() -> None:
    headers = {"X-API-Key": " abc ", "Authorization": "Bearer other"}
    assert presented_secret(headers) == "abc"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_secret_from_bearer_authorization(scheme: str) -> None:
    assert presented_secret({"Authorization": f"{scheme} tok-123"}) == "tok-123"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}, {"X-API-Key": ""}],
)
def test_no_secret_presented(headers: dict[str, str]) -> None:
    assert presented_secret(headers) is None


def test_authenticate_finds_the_key_by_secret() -> None:
    keys = parse_api_keys(SPEC)
    found = authenticate(keys, "s3cret-till")
    assert found is not None and found.name == "tills"


@pytest.mark.parametrize("secret", [None, "", "s3cret-til", "s3cret-till ", "web-shop"])
def test_authenticate_refuses_anything_else(secret: str | None) -> None:
    assert authenticate(parse_api_keys(SPEC), secret) is None


def test_undecodable_header_bytes_are_just_a_wrong_secret() -> None:
    assert authenticate(parse_api_keys(SPEC), "s3cret-\udcff") is None


def test_forbidden_channels_lists_index_and_channel() -> None:
    web_only = parse_api_keys(SPEC)[0]
    events = [(0, "web"), (1, "store"), (2, "web"), (3, "call_centre")]
    assert forbidden_channels(web_only, events) == [
        {"index": 1, "channel": "store"},
        {"index": 3, "channel": "call_centre"},
    ]


def test_unknown_or_missing_channels_are_left_to_validation() -> None:
    web_only = parse_api_keys(SPEC)[0]
    assert forbidden_channels(web_only, [(0, "fax"), (1, None), (2, 7)]) == []


def test_wildcard_key_may_send_every_channel() -> None:
    crm = parse_api_keys(SPEC)[2]
    events = list(enumerate(["web", "app", "store", "call_centre"]))
    assert forbidden_channels(crm, events) == []


def test_only_keys_allowed_every_channel_read_scores() -> None:
    web_shop, tills, crm = parse_api_keys(SPEC)
    (full_list,) = parse_api_keys("demo:demo-secret:web,app,store,call_centre")
    assert crm.reads_scores and full_list.reads_scores
    assert not web_shop.reads_scores and not tills.reads_scores
