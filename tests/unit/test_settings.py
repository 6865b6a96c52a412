import pytest

from streams.errors import ConfigError
from streams.settings import ENV_VARS, SETTINGS, Settings


def test_every_setting_has_one_env_var_and_a_doc() -> None:
    names = [s.env for s in SETTINGS]
    assert len(names) == len(set(names)) == len(ENV_VARS)
    assert all(s.env.startswith("TOUCHPOINT_") and s.doc for s in SETTINGS)


def test_defaults_parse_and_derive_topic_names() -> None:
    settings = Settings.from_env({})
    assert settings.partitions == 6
    assert settings.at_risk_topic == "cx.at-risk"
    assert settings.dlq_topic == "cx.touchpoints.dlq"


def test_environment_overrides_defaults_and_moves_every_topic() -> None:
    settings = Settings.from_env({"TOUCHPOINT_TOPIC_PREFIX": "shop", "TOUCHPOINT_PARTITIONS": "3"})
    assert settings.partitions == 3
    assert settings.touchpoints_topic == "shop.touchpoints"
    assert settings.scores_topic == "shop.scores"


def test_bad_value_names_the_variable_and_what_it_means() -> None:
    with pytest.raises(ConfigError, match="TOUCHPOINT_PARTITIONS='zero' is invalid"):
        Settings.from_env({"TOUCHPOINT_PARTITIONS": "zero"})
    with pytest.raises(ConfigError, match="TOUCHPOINT_STORE"):
        Settings.from_env({"TOUCHPOINT_STORE": "postgres://"})


def test_secrets_never_appear_in_repr() -> None:
    settings = Settings.from_env(
        {
            "TOUCHPOINT_API_KEYS": "crm:very-secret-key:*",
            "TOUCHPOINT_REDIS_URL": "redis://:hunter2@redis:6379/0",
        }
    )
    text = repr(settings) + str(settings)
    assert "very-secret-key" not in text and "hunter2" not in text
    assert "api_keys='***'" in text
    assert settings.api_keys == "crm:very-secret-key:*"


def test_replace_rejects_unknown_settings() -> None:
    settings = Settings.from_env({})
    assert settings.replace(batch_size=10).batch_size == 10
    with pytest.raises(ConfigError, match="unknown settings: nope"):
        settings.replace(nope=1)


def test_a_bad_redis_url_fails_at_load_without_showing_the_password() -> None:
    for url, why in (
        ("127.0.0.1:6379", "scheme"),
        ("redis://:hunter2@redis:port/0", "port"),
        ("redis://", "no host"),
    ):
        with pytest.raises(ConfigError, match=why) as caught:
            Settings.from_env({"TOUCHPOINT_REDIS_URL": url})
        assert "hunter2" not in str(caught.value)
        assert "TOUCHPOINT_REDIS_URL=(secret)" in str(caught.value)
    assert Settings.from_env({"TOUCHPOINT_REDIS_URL": "rediss://:pw@cache:6380/1"}).redis_url
