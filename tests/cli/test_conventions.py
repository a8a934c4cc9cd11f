"""kubectl's output and selection conventions: -o name, -o jsonpath=TEMPLATE, --field-selector,
and the `-o=json` / `-n=NS` spellings."""

from __future__ import annotations

from pathlib import Path

from stsfix.errors import ExitCode

TWO_SETS = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "db", "namespace": "default"},
    "spec": {
        "replicas": 1,
        "serviceName": "db",
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}},
    },
}


def test_output_name_prints_kubectls_resource_names(cli, make_sim) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    env.sim.apply_manifest(TWO_SETS)
    assert cli(*env.args("diagnose", "-n", "default", "-o", "name")).stdout == "statefulset.apps/db\nstatefulset.apps/web\n"
    assert cli(*env.args("inspect", "web", "-n", "default", "-o=name")).stdout == "statefulset.apps/web\n"
    assert cli("playbook", "list", "-o", "name").stdout.splitlines()[0] == "playbook/canary-partition"


def test_output_jsonpath_renders_kubectls_templates(cli, make_sim) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    env.sim.apply_manifest(TWO_SETS)
    table = cli(*env.args("diagnose", "-n", "default", "-o",
                          r'jsonpath={range .items[*]}{.statefulset.name}{"\t"}{.exitCode}{.verdict}{"\n"}{end}'))  # fmt: skip
    assert table.code == ExitCode.ACTION_NEEDED
    assert [line.split("\t")[0] for line in table.stdout.splitlines()] == ["db", "web"]
    stuck = cli(*env.args("diagnose", "-n", "default", "-o", 'jsonpath={.items[?(@.verdict=="stuck")].statefulset.name}'))
    assert stuck.stdout == "web"
    pods = cli(*env.args("inspect", "web", "-n", "default", "-o", "jsonpath={.ordinals[*].pod}")).stdout
    assert pods == "web-0 web-1 web-2 web-3 web-4"


def test_a_bad_jsonpath_is_a_usage_error(cli, make_sim) -> None:
    env = make_sim("healthy", speed=30.0)
    result = cli(*env.args("diagnose", "web", "-n", "default", "-o", "jsonpath={.items[0"))
    assert result.code == ExitCode.USAGE and result.stderr.startswith("error: error parsing jsonpath"), result


def test_field_selector_selects_statefulsets_live_and_offline(cli, make_sim, tmp_path: Path) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    env.sim.apply_manifest(TWO_SETS)
    live = cli(*env.args("diagnose", "-A", "--field-selector", "metadata.name!=web", "-o", "name"))
    assert live.stdout == "statefulset.apps/db\n"
    assert [r.query.get("fieldSelector") for r in env.sim.requests if r.path.endswith("/statefulsets")][-1] == "metadata.name!=web"
    saved = tmp_path / "all.yaml"
    saved.write_text(cli(*env.args("collect", "-A")).stdout)
    offline = cli("inspect", "-f", str(saved), "--field-selector", "metadata.name=web,metadata.namespace=default", "-o", "name")
    assert offline.stdout == "statefulset.apps/web\n"


def test_field_selector_names_the_fields_statefulsets_support(cli, make_sim) -> None:
    env = make_sim("healthy", speed=30.0)
    result = cli(*env.args("inspect", "-A", "--field-selector", "spec.replicas=3"))
    assert result.code == ExitCode.USAGE
    assert 'field label not supported for statefulsets: "spec.replicas"' in result.stderr
    assert cli(*env.args("inspect", "web", "--field-selector", "metadata.name=web")).code == ExitCode.USAGE
