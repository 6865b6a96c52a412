from streams.agents.app import faust_settings
from streams.settings import Settings


def test_worker_advertises_the_configured_web_host_for_table_routing() -> None:
    settings = Settings.from_env({"TOUCHPOINT_WORKER_WEB_HOST": "10.1.2.3"})
    assert faust_settings(settings)["web_host"] == "10.1.2.3"
    assert "web_host" not in faust_settings(Settings.from_env({}))


def test_faust_table_pages_are_off_and_processing_is_at_least_once() -> None:
    config = faust_settings(Settings.from_env({}))
    assert config["web_tables_enabled"] is False
    assert config["processing_guarantee"] == "at_least_once"
