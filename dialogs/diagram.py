"""Mermaid diagrams of the flows, drawn from the content itself (`python run_bot.py diagram`)."""
from __future__ import annotations

from dialogs.content import Content, StepKind
from dialogs.steps import SpecialTarget


def flow_diagrams(content: Content, lang: str = "en") -> str:
    """A Markdown page with one Mermaid graph per flow file, labelled in `lang`."""
    flows: dict[str, list] = {}
    for step in content.steps.values():
        flows.setdefault(step.flow, []).append(step)
    parts = ["# Oberih dialog flows", "",
             "Generated from `content/flows/*.yaml` by `python run_bot.py diagram`; do not edit by hand.", ""]
    for flow, steps in flows.items():
        parts += [f"## {flow}", "", "```mermaid", "flowchart TD"]
        for step in steps:
            shape = ("{{", "}}") if step.kind is StepKind.ROUTE else ("[", "]")
            parts.append(f"    {step.id}{shape[0]}\"{step.id}<br/>{step.kind.value}\"{shape[1]}")
            for row in step.buttons:
                for button in row:
                    label = _quote(content.text(lang, button.label))
                    parts.append(f"    {step.id} -->|\"{label}\"| {_node(button.goto)}")
            for route in step.routes:
                condition = ", ".join(f"{k}={v}" for k, v in route.when.items()) or "otherwise"
                parts.append(f"    {step.id} -.->|\"{_quote(condition)}\"| {_node(route.goto)}")
            for target, label in ((step.next, "answer"), (step.then, "then")):
                if target:
                    parts.append(f"    {step.id} -->|{label}| {_node(target)}")
        parts += ["```", ""]
    return "\n".join(parts)


def _node(target: str) -> str:
    if target in set(SpecialTarget):
        name = target.removeprefix("@")
        return f"{name.upper()}(({name.replace('_', ' ')}))"
    return target


def _quote(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")[:40]
