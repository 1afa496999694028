"""A small interpreter of the Amazon States Language, for the state machines of template.yaml.

Step Functions cannot run here, and moto's Step Functions records executions without running
them. This runs a definition as Step Functions would, for the part of the language the template
uses: ``Task``, ``Map`` (inline, ``ItemsPath``, ``ItemSelector``, items in order), ``Pass``,
``Fail`` (``Error``/``Cause`` and their paths), ``Succeed``; ``InputPath``, ``Parameters``,
``ResultSelector``, ``ResultPath``, ``OutputPath``; ``Retry`` (``ErrorEquals``, ``MaxAttempts``;
no waiting) and ``Catch``; JSONPath ``$``, ``$.a.b`` and the context's ``$$.Map.Item.Value`` /
``$$.Map.Item.Index``. A key of the definition it does not know is an error, so the template
cannot drift into what this does not check.

A task's resource is answered by a Python function of the test (``resources``), which returns the
task's result or raises :class:`TaskFailed` with the error name a service integration gives
(``States.TaskFailed``, ``Lambda.TooManyRequestsException``, ...).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KNOWN_KEYS = {
    "Type",
    "Comment",
    "Next",
    "End",
    "Resource",
    "Parameters",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "ResultSelector",
    "Retry",
    "Catch",
    "ItemsPath",
    "ItemSelector",
    "ItemProcessor",
    "MaxConcurrency",
    "Error",
    "Cause",
    "ErrorPath",
    "CausePath",
    "Result",
}


class TaskFailed(Exception):
    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class ExecutionFailed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


@dataclass
class Execution:
    """One run: what each task was called with, in order (``calls``: (resource, parameters))."""

    resources: dict[str, Callable[[Any], Any]]
    calls: list[tuple[str, Any]] = field(default_factory=list)
    states_entered: list[str] = field(default_factory=list)


def _path(data: Any, path: str, context: dict[str, Any]) -> Any:
    if path.startswith("$$."):
        data, path = context, "$" + path[2:]
    if path == "$":
        return data
    if not path.startswith("$."):
        raise ValueError(f"unsupported path {path}")
    for part in path[2:].split("."):
        if not isinstance(data, dict) or part not in data:
            raise TaskFailed("States.Runtime", f"the path {path} matches nothing")
        data = data[part]
    return data


def _template(template: Any, data: Any, context: dict[str, Any]) -> Any:
    """``Parameters`` / ``ItemSelector`` / ``ResultSelector``: keys ending in ``.$`` are paths."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = copy.deepcopy(_path(data, value, context))
            else:
                out[key] = _template(value, data, context)
        return out
    if isinstance(template, list):
        return [_template(item, data, context) for item in template]
    return template


def _put(data: Any, path: str | None, result: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return result
    target = copy.deepcopy(data)
    node = target
    parts = path[2:].split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = result
    return target


def _matches(error: str, names: list[str]) -> bool:
    if "States.ALL" in names:
        return True
    return error in names or (error not in ("States.Runtime",) and "States.TaskFailed" in names)


def run(
    definition: dict[str, Any], data: Any, execution: Execution, context: dict[str, Any] | None = None
) -> Any:
    """Run ``definition`` (a machine or a Map's processor) on ``data``; its output, or
    :class:`ExecutionFailed`."""
    context = context or {}
    name = definition["StartAt"]
    while True:
        state = definition["States"][name]
        unknown = set(state) - KNOWN_KEYS
        if unknown:
            raise ValueError(f"state {name} has keys this interpreter does not check: {sorted(unknown)}")
        execution.states_entered.append(name)
        kind = state["Type"]
        if kind == "Fail":
            error = (
                _path(data, state["ErrorPath"], context) if "ErrorPath" in state else state.get("Error", "")
            )
            cause = (
                _path(data, state["CausePath"], context) if "CausePath" in state else state.get("Cause", "")
            )
            raise ExecutionFailed(str(error), str(cause))
        if kind == "Succeed":
            return data
        effective = _path(data, state.get("InputPath", "$"), context)
        try:
            if kind == "Pass":
                result = state.get("Result", effective)
            elif kind == "Task":
                result = _task(state, effective, execution, context)
            elif kind == "Map":
                result = _map(state, effective, execution, context)
            else:
                raise ValueError(f"state type {kind} is not supported")
        except (TaskFailed, ExecutionFailed) as failure:
            handler = next(
                (catch for catch in state.get("Catch", []) if _matches(failure.error, catch["ErrorEquals"])),
                None,
            )
            if handler is None:
                raise ExecutionFailed(failure.error, failure.cause) from failure
            data = _put(
                data, handler.get("ResultPath", "$"), {"Error": failure.error, "Cause": failure.cause}
            )
            name = handler["Next"]
            continue
        if "ResultSelector" in state:
            result = _template(state["ResultSelector"], result, context)
        data = _put(data, state.get("ResultPath", "$"), result)
        data = _path(data, state.get("OutputPath", "$"), context)
        if state.get("End"):
            return data
        name = state["Next"]


def _task(state: dict[str, Any], data: Any, execution: Execution, context: dict[str, Any]) -> Any:
    parameters = _template(state["Parameters"], data, context) if "Parameters" in state else data
    resource = state["Resource"]
    attempts: dict[int, int] = {}
    while True:
        execution.calls.append((resource, parameters))
        try:
            return execution.resources[resource](copy.deepcopy(parameters))
        except TaskFailed as failure:
            for number, retrier in enumerate(state.get("Retry", [])):
                if _matches(failure.error, retrier["ErrorEquals"]):
                    attempts[number] = attempts.get(number, 0) + 1
                    if attempts[number] <= retrier.get("MaxAttempts", 3):
                        break
                    raise
            else:
                raise


def _map(state: dict[str, Any], data: Any, execution: Execution, context: dict[str, Any]) -> list[Any]:
    items = _path(data, state.get("ItemsPath", "$"), context)
    processor = state["ItemProcessor"]
    if processor.get("ProcessorConfig", {}).get("Mode", "INLINE") != "INLINE":
        raise ValueError("only inline Map states are supported")
    outputs = []
    for index, item in enumerate(items):
        item_context = {**context, "Map": {"Item": {"Value": item, "Index": index}}}
        selected = _template(state["ItemSelector"], data, item_context) if "ItemSelector" in state else item
        outputs.append(run(processor, selected, execution, item_context))
    return outputs
