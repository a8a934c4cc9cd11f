"""Reading playbook files: validation over PyYAML's node tree, so every error names the file, line,
column and field (`forced-rollback.yaml:14:7: steps[1].on_exit: unknown target "verfy"`), and the
bundled playbooks (stsfix/playbooks/*.yaml, shipped in the wheel).
"""

from __future__ import annotations

import shlex
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from stsfix.errors import UsageError
from stsfix.playbook.model import (
    ACTIONS,
    API_VERSION,
    DEFAULT_MAX_STEPS,
    ID_RE,
    KIND,
    MUTATING_COMMANDS,
    OUTCOMES,
    PARAM_TYPES,
    PLACEHOLDER_RE,
    RUNNER_FLAGS,
    Parameter,
    Playbook,
    PlaybookError,
    Step,
    check_value,
)

_TOP_FIELDS: Final = {
    "apiVersion": True,
    "kind": True,
    "name": True,
    "title": True,
    "description": True,
    "answers": True,
    "scenario": False,
    "parameters": False,
    "steps": True,
    "notes": True,
    "max_steps": False,
}
_PARAM_FIELDS: Final = ("description", "type", "default", "required")
_STEP_FIELDS: Final = ("id", "title", "run", "action", "mutates", "message", "duration", "on_exit")


# -- reading nodes with their positions ---------------------------------------------------------
class _Reader:
    def __init__(self, source: str):
        self.source = source
        self._constructor = yaml.constructor.SafeConstructor()

    def fail(self, node: Node | None, field: str, message: str) -> PlaybookError:
        where = self.source
        if node is not None:
            where += f":{node.start_mark.line + 1}:{node.start_mark.column + 1}"
        return PlaybookError(f"{where}: {field}: {message}", details={"field": field})

    def scalar(self, node: Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def text(self, node: Node, field: str, *, allow_empty: bool = False) -> str:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise self.fail(node, field, "must be a non-empty string")
        return value.strip()

    def mapping(self, node: Node, field: str) -> list[tuple[ScalarNode, Node]]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, field, "must be a mapping")
        seen: set[str] = set()
        out: list[tuple[ScalarNode, Node]] = []
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                raise self.fail(key, field, "keys must be plain scalars")
            if key.value in seen:
                raise self.fail(key, f"{field}.{key.value}", "duplicate key")
            seen.add(key.value)
            out.append((key, value))
        return out

    def fields(self, node: Node, field: str, allowed: tuple[str, ...] | list[str]) -> dict[str, Node]:
        found: dict[str, Node] = {}
        for key, value in self.mapping(node, field):
            if key.value not in allowed:
                raise self.fail(key, f"{field}.{key.value}" if field else key.value,
                                f"unknown field (allowed: {', '.join(allowed)})")  # fmt: skip
            found[key.value] = value
        return found

    def sequence(self, node: Node, field: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.fail(node, field, "must be a list")
        return list(node.value)


def parse_playbook(text: str, *, source: str = "<playbook>") -> Playbook:
    """Validate and build a Playbook from YAML text; PlaybookError names line, column and field."""
    reader = _Reader(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise PlaybookError(f"{source}{where}: not valid YAML: {problem}") from None
    if root is None:
        raise PlaybookError(f"{source}: empty file")
    top = reader.fields(root, "", list(_TOP_FIELDS))
    for name, required in _TOP_FIELDS.items():
        if required and name not in top:
            raise reader.fail(root, name, "required field is missing")
    if reader.scalar(top["apiVersion"]) != API_VERSION:
        raise reader.fail(top["apiVersion"], "apiVersion", f"must be {API_VERSION}")
    if reader.scalar(top["kind"]) != KIND:
        raise reader.fail(top["kind"], "kind", f"must be {KIND}")
    name = reader.text(top["name"], "name")
    if not ID_RE.match(name):
        raise reader.fail(top["name"], "name", "must be lowercase letters, digits and dashes")
    stem = Path(source).stem
    if source.endswith((".yaml", ".yml")) and stem != name:
        raise reader.fail(top["name"], "name", f'must match the file name "{stem}"')
    answers = tuple(
        reader.text(n, f"answers[{i}]") for i, n in enumerate(reader.sequence(top["answers"], "answers"))
    )
    parameters = _parameters(reader, top.get("parameters"))
    steps = _steps(reader, top["steps"], {p.name for p in parameters})
    max_steps = reader.scalar(top["max_steps"]) if "max_steps" in top else DEFAULT_MAX_STEPS
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < len(steps):
        raise reader.fail(top.get("max_steps"), "max_steps", "must be an integer >= the number of steps")
    return Playbook(
        name=name,
        title=reader.text(top["title"], "title"),
        description=reader.text(top["description"], "description"),
        answers=answers,
        parameters=parameters,
        steps=steps,
        notes=reader.text(top["notes"], "notes"),
        scenario=reader.text(top["scenario"], "scenario") if "scenario" in top else None,
        max_steps=max_steps,
        source=source,
    )


def _parameters(reader: _Reader, node: Node | None) -> tuple[Parameter, ...]:
    if node is None:
        return ()
    out = []
    for key, value in reader.mapping(node, "parameters"):
        field = f"parameters.{key.value}"
        if not ID_RE.match(key.value.replace("_", "-")):
            raise reader.fail(key, field, "parameter names are lowercase letters, digits and underscores")
        spec = reader.fields(value, field, _PARAM_FIELDS)
        if "description" not in spec:
            raise reader.fail(value, f"{field}.description", "required field is missing")
        kind = reader.text(spec["type"], f"{field}.type") if "type" in spec else "string"
        if kind not in PARAM_TYPES:
            raise reader.fail(spec["type"], f"{field}.type", f"must be one of {', '.join(PARAM_TYPES)}")
        default = None
        if "default" in spec:
            raw = reader.scalar(spec["default"])
            if raw is None or isinstance(raw, bool | dict | list):
                raise reader.fail(spec["default"], f"{field}.default", "must be a string or a number")
            default = str(raw)
            if "${" not in default:
                problem = check_value(kind, default)
                if problem:
                    raise reader.fail(spec["default"], f"{field}.default", problem)
        if "required" in spec and reader.scalar(spec["required"]) is not (default is None):
            raise reader.fail(spec["required"], f"{field}.required",
                              "a parameter is required exactly when it has no default")  # fmt: skip
        out.append(
            Parameter(key.value, reader.text(spec["description"], f"{field}.description"), kind, default)
        )
    return tuple(out)


def _steps(reader: _Reader, node: Node, params: set[str]) -> tuple[Step, ...]:
    nodes = reader.sequence(node, "steps")
    if not nodes:
        raise reader.fail(node, "steps", "needs at least one step")
    ids: list[str] = []
    specs = [reader.fields(item, f"steps[{i}]", _STEP_FIELDS) for i, item in enumerate(nodes)]
    for i, (item, spec) in enumerate(zip(nodes, specs, strict=True)):
        if "id" not in spec:
            raise reader.fail(item, f"steps[{i}].id", "required field is missing")
        step_id = reader.text(spec["id"], f"steps[{i}].id")
        if not ID_RE.match(step_id) or step_id in OUTCOMES:
            raise reader.fail(spec["id"], f"steps[{i}].id",
                              f"must be lowercase letters, digits and dashes, and not one of {', '.join(OUTCOMES)}")  # fmt: skip
        if step_id in ids:
            raise reader.fail(spec["id"], f"steps[{i}].id", f'duplicate step id "{step_id}"')
        ids.append(step_id)
    return tuple(
        _step(reader, item, spec, i, params, ids)
        for i, (item, spec) in enumerate(zip(nodes, specs, strict=True))
    )


def _step(
    reader: _Reader, item: Node, spec: dict[str, Node], i: int, params: set[str], ids: list[str]
) -> Step:
    field = f"steps[{i}]"
    if "title" not in spec:
        raise reader.fail(item, f"{field}.title", "required field is missing")
    if ("run" in spec) == ("action" in spec):
        raise reader.fail(item, field, "needs exactly one of run (an stsfix command) or action")
    mutates = reader.scalar(spec["mutates"]) if "mutates" in spec else False
    if not isinstance(mutates, bool):
        raise reader.fail(spec["mutates"], f"{field}.mutates", "must be true or false")
    run: tuple[str, ...] = ()
    action = None
    if "run" in spec:
        run = _run(reader, spec["run"], f"{field}.run", params, mutates)
    else:
        action = reader.text(spec["action"], f"{field}.action")
        if action not in ACTIONS:
            raise reader.fail(spec["action"], f"{field}.action", f"must be one of {', '.join(ACTIONS)}")
        if mutates:
            raise reader.fail(spec["mutates"], f"{field}.mutates", "only run steps change the cluster")
    message = reader.text(spec["message"], f"{field}.message") if "message" in spec else ""
    duration = str(reader.scalar(spec["duration"])) if "duration" in spec else ""
    if action in ("confirm", "note") and not message:
        raise reader.fail(item, f"{field}.message", f"the {action} action needs a message")
    if action == "wait":
        if not duration:
            raise reader.fail(item, f"{field}.duration", "the wait action needs a duration")
        _check_placeholders(reader, spec["duration"], f"{field}.duration", duration, params)
        if "${" not in duration and check_value("duration", duration):
            raise reader.fail(spec["duration"], f"{field}.duration", str(check_value("duration", duration)))
    if message:
        _check_placeholders(reader, spec["message"], f"{field}.message", message, params)
    on_exit, otherwise = _on_exit(reader, spec.get("on_exit"), f"{field}.on_exit", ids)
    return Step(
        id=ids[i],
        title=reader.text(spec["title"], f"{field}.title"),
        run=run,
        action=action,
        mutates=mutates,
        message=message,
        duration=duration,
        on_exit=on_exit,
        otherwise=otherwise,
        line=item.start_mark.line + 1,
    )


def _check_placeholders(reader: _Reader, node: Node, field: str, text: str, params: set[str]) -> None:
    for name in PLACEHOLDER_RE.findall(text):
        if name not in params:
            known = ", ".join(sorted(params)) or "none"
            raise reader.fail(node, field, f'unknown parameter "${{{name}}}" (parameters: {known})')


def _run(reader: _Reader, node: Node, field: str, params: set[str], mutates: bool) -> tuple[str, ...]:
    text = reader.text(node, field)
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise reader.fail(node, field, f"cannot split the command line: {err}") from None
    if not words or words[0] != "stsfix" or len(words) < 2:
        raise reader.fail(node, field, 'must be an stsfix command line ("stsfix diagnose ...")')
    _check_placeholders(reader, node, field, text, params)
    args = words[1:]
    if args[0].startswith("-"):
        raise reader.fail(node, field, "put the command first (stsfix diagnose -n NS NAME), flags after it")
    for word in args:
        flag = word.split("=", 1)[0]
        if flag in RUNNER_FLAGS:
            raise reader.fail(
                node, field, f"{flag} is added by the runner (-o json always; --yes on mutating steps)"
            )
        if flag == "--dry-run" and mutates:
            raise reader.fail(
                node, field, "a mutating step has no --dry-run: the runner adds --dry-run=server"
            )
    dry = any(w.startswith("--dry-run") for w in args)
    if args[0] in MUTATING_COMMANDS and not dry and not mutates:
        raise reader.fail(
            node, field, f"stsfix {args[0]} changes the cluster: set mutates: true on this step"
        )
    if mutates and args[0] not in MUTATING_COMMANDS:
        raise reader.fail(node, field, f"stsfix {args[0]} does not change the cluster: drop mutates")
    return tuple(args)


def _on_exit(
    reader: _Reader, node: Node | None, field: str, ids: list[str]
) -> tuple[tuple[tuple[int, str], ...], str]:
    if node is None:
        return ((0, "next"),), "page"
    targets = (*OUTCOMES, *ids)
    table: dict[int, str] = {}
    otherwise = "page"
    for key, value in reader.mapping(node, field):
        target = reader.text(value, f"{field}.{key.value}")
        if target not in targets:
            raise reader.fail(value, f"{field}.{key.value}",
                              f'unknown target "{target}" (use {", ".join(OUTCOMES)} or a step id: {", ".join(ids)})')  # fmt: skip
        if key.value == "default":
            otherwise = target
            continue
        try:
            codes = [int(part) for part in str(key.value).split(",")]
        except ValueError:
            raise reader.fail(key, f"{field}.{key.value}",
                              'keys are exit codes ("0", "4,5") or "default"') from None  # fmt: skip
        for code in codes:
            if not 0 <= code <= 255:
                raise reader.fail(key, f"{field}.{key.value}", "exit codes are 0-255")
            if code in table:
                raise reader.fail(key, f"{field}.{key.value}", f"exit code {code} is listed twice")
            table[code] = target
    return tuple(sorted(table.items())), otherwise


# -- finding playbooks --------------------------------------------------------------------------
def bundled_dir() -> Path:
    return Path(str(resources.files("stsfix") / "playbooks"))


def bundled_names() -> list[str]:
    return sorted(p.stem for p in bundled_dir().glob("*.yaml"))


def load_playbook(path: str | Path) -> Playbook:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot read playbook {path}: {err.strerror or err}") from None
    source = f"playbooks/{path.name}" if path.parent == bundled_dir() else str(path)
    return parse_playbook(text, source=source)


def find_playbook(name_or_file: str) -> Playbook:
    """A bundled playbook by name, or a playbook file by path."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_playbook(path)
    bundled = bundled_dir() / f"{name_or_file}.yaml"
    if not bundled.exists():
        raise UsageError(
            f'playbook "{name_or_file}" not found; bundled playbooks: {", ".join(bundled_names())}',
            code="playbook_not_found",
        )
    return load_playbook(bundled)
