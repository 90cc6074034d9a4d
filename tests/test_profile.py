"""The production profile: the shipped profiles load, and each bad value is refused by name."""

import tomllib

import pytest
from click.testing import CliRunner

from workbench import profile
from workbench.cli import main
from workbench.profile import ProfileError


def test_default_profile_holds_the_plans_targets():
    p = profile.load()
    assert (p.name, p.engine, p.file) == ("default", "postgres", "profiles/default.toml")
    assert (p.slo.p50_ms, p.slo.p99_ms, p.slo.rate_rps, p.slo.memory_mb) == (50, 200, 1000, 500)
    assert (p.slo.db_p99_ms, p.slo.error_percent, p.slo.cpu_percent) == (100, 0.1, 30)
    assert p.network.source  # a stated round trip has a stated source
    assert sum(p.traffic.shares().values()) == pytest.approx(1)
    assert p.data.source() == "synthetic"
    assert "round trip 0.5 ms" in p.describe()


def test_every_shipped_profile_loads_and_names_itself():
    for path in profile.PROFILES.glob("*.toml"):
        p = profile.load(path)
        assert p.name == path.stem


def test_cross_zone_differs_in_round_trip_and_pages_only():
    default = tomllib.loads(profile.DEFAULT.read_text())
    cross = tomllib.loads((profile.PROFILES / "cross_zone.toml").read_text())
    changed = {
        k
        for k in default.keys() | cross.keys()
        if k not in ("name", "description") and default.get(k) != cross.get(k)
    }
    assert changed == {"network", "pages"}
    assert profile.load("cross_zone").network.rtt_ms == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo = 1", "Unknown key 'foo' in the profile: expected one of name, description, engine"),
        ("[network]\nrtt = 2", "Unknown key 'network.rtt' in the profile: did you mean 'network.rtt_ms'?"),
        ('[network]\nrtt_ms = "2ms"', "write a number of milliseconds (the unit is in the key's name)"),
        ("[network]\nrtt_ms = true", "'network.rtt_ms' = True in the profile: write a number"),
        (
            "[network]\nrtt_ms = -1",
            "'network.rtt_ms' = -1.0 in the profile 'default': a round trip is between",
        ),
        (
            "[pages]\nrecent_sessions = 0",
            "'pages.recent_sessions' = 0 in the profile 'default': a page holds",
        ),
        (
            "[pages]\nrecent_sessions = 2.5",
            "'pages.recent_sessions' = 2.5 in the profile: write a whole number",
        ),
        ('engine = "postgress"', "'engine' = 'postgress' in the profile 'default': expected one of postgres"),
        (
            "[traffic.weights]\nrecnt = 1",
            "'traffic.weights.recnt' = 1.0 in the profile 'default': endpoints are",
        ),
        ("[traffic.weights]\nrecent = -1", "weights are >= 0 with a positive sum"),
        ("[traffic]\nhot_share = 1.5", "'traffic.hot_share' = 1.5 in the profile 'default': a share between"),
        (
            "[slo]\np50_ms = 300",
            "'slo.p50_ms' = 300.0 in the profile 'default': P50 cannot exceed P99 (200 ms)",
        ),
        ("[slo]\nerror_percent = 0", "'slo.error_percent' = 0.0 in the profile 'default': a target above 0"),
        ('[data]\nscale = "huge"', "'data.scale' = 'huge' in the profile 'default': expected one of tiny"),
        ('[data]\npath = "d"\nurl = "postgresql://h/db"', "give data.path or data.url, not both"),
        ('[data]\nurl = "localhost/db"', "a database URL such as postgresql://user@host/db"),
        ("network = 2", "'network' in the profile must be a table ([network]), not 2"),
        ("[network\nrtt_ms = 2", "is not valid TOML"),
    ],
)
def test_a_bad_value_is_named_with_its_fix(text, message):
    with pytest.raises(ProfileError) as e:
        profile.loads(text)
    assert message in str(e.value)


def test_a_missing_profile_lists_the_shipped_ones(tmp_path):
    with pytest.raises(
        ProfileError, match="Profile 'nope' not found: give a TOML file or one of cross_zone, default"
    ):
        profile.load("nope")


def test_the_environment_chooses_the_profile(monkeypatch):
    monkeypatch.setenv(profile.PROFILE_ENV, "cross_zone")
    assert profile.load().name == "cross_zone"


def test_a_bad_profile_stops_the_report_before_any_notebook(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text('[network]\nrtt_ms = "2 ms"\n')
    result = CliRunner().invoke(main, ["report", "--profile", "bad.toml", "--out", "out"])
    assert result.exit_code == 1
    assert "Error: 'network.rtt_ms' = '2 ms' in the profile: write a number of milliseconds" in result.output
    assert not (tmp_path / "out").exists()  # nothing ran
