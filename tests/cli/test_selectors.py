"""`-l SELECTOR` finds the same StatefulSets offline (`-f FILE`) as the API server does live."""

from __future__ import annotations

import pytest

from stsfix.errors import ExitCode

SETS = {
    "db": {"tier": "db", "team": "x"},
    "cache": {"tier": "cache"},
    "api": {"team": "y", "tier": "api"},
    "bare": {},
}
SELECTORS = [
    "tier=db",
    "tier==db",
    "tier!=db",
    "tier in (db,cache)",
    "tier in (db, cache)",
    "tier notin (db)",
    "team",
    "!team",
    "tier in (db),team",
    "tier notin (cache),!team",
    "app in (web)",
    "tier=",
]


def _set(name: str, labels: dict[str, str]) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
            },
        },
    }


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    from stsfix.sim.cluster import SimCluster
    from tests.conftest import run_cli

    tmp = tmp_path_factory.mktemp("selectors")
    sim = SimCluster(scenarios=["healthy"], speed=30.0).start()
    try:
        for name, labels in SETS.items():
            sim.apply_manifest(_set(name, labels))
        kubeconfig = str(sim.write_kubeconfig(tmp / "kubeconfig"))
        saved = tmp / "fleet.yaml"
        assert run_cli("collect", "-A", "--save", str(saved), "--kubeconfig", kubeconfig).code == ExitCode.OK
        yield kubeconfig, str(saved)
    finally:
        sim.stop()


def _names(result) -> list[str]:
    assert result.code == ExitCode.OK, result
    return sorted(i["statefulset"]["name"] for i in result.json()["items"])


@pytest.mark.parametrize("selector", SELECTORS)
def test_offline_selector_finds_what_the_api_server_finds(cli, fleet, selector: str) -> None:
    kubeconfig, saved = fleet
    live = _names(cli("inspect", "-A", "-l", selector, "-o", "json", "--kubeconfig", kubeconfig))
    offline = _names(cli("inspect", "-A", "-l", selector, "-o", "json", "-f", saved))
    assert offline == live


def test_the_selectors_select_what_kubernetes_documents(cli, fleet) -> None:
    """A fixed point, so that live and offline cannot agree on a wrong answer."""
    kubeconfig, _ = fleet
    found = {
        s: _names(cli("inspect", "-A", "-l", s, "-o", "json", "--kubeconfig", kubeconfig)) for s in SELECTORS
    }
    assert found["tier!=db"] == ["api", "bare", "cache", "web"]  # a missing key is "not db"
    assert found["tier in (db, cache)"] == ["cache", "db"]
    assert found["tier notin (db)"] == ["api", "bare", "cache", "web"]
    assert found["!team"] == ["bare", "cache", "web"]
    assert found["app in (web)"] == ["web"]


@pytest.mark.parametrize("selector", ["tier in db", "tier in (db", "=db", "tier=db=x", "tier >< 1"])
def test_a_malformed_selector_is_a_usage_error_offline(cli, fleet, selector: str) -> None:
    _, saved = fleet
    result = cli("inspect", "-A", "-l", selector, "-f", saved)
    assert result.code == ExitCode.USAGE, result
    assert result.stderr.startswith("error: ") and "selector" in result.stderr


def test_a_malformed_selector_is_the_same_usage_error_live(cli, make_sim) -> None:
    env = make_sim("healthy")
    env.sim.requests.clear()
    result = cli(*env.args("inspect", "-A", "-l", "tier in db"))
    assert result.code == ExitCode.USAGE, result
    assert [r for r in env.sim.requests if not r.path.startswith("/_sim")] == []
