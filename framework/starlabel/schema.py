"""JSON schema of survey descriptors, including every installed component's options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from starlabel.descriptor import (
    SCHEMA_VERSION,
    AuxiliaryEntry,
    Descriptor,
    InstrumentSection,
    LabelsSection,
    NetworkSection,
    NormaliseSection,
)

if TYPE_CHECKING:
    from starlabel.plugins import Plugins

# section model → (registry kind, key naming the component)
_SECTIONS: dict[type[BaseModel], tuple[str, str]] = {
    InstrumentSection: ("reader", "reader"),
    NormaliseSection: ("normaliser", "method"),
    AuxiliaryEntry: ("auxiliary", "provider"),
    LabelsSection: ("label_source", "source"),
    NetworkSection: ("architecture", "architecture"),
}


def descriptor_schema(plugins: Plugins) -> dict[str, Any]:
    """Return a JSON schema (draft 2020-12) for descriptors valid with the installed ``plugins``.

    Component names become enums, and each component's ``options:`` (and a label source's ``cuts:``)
    is tied to its own ``Options`` (``Cuts``) schema with ``if``/``then``.
    """
    component_models: list[type[BaseModel]] = []
    for kind, _ in _SECTIONS.values():
        for entry in plugins.registry(kind):
            component_models.append(entry.cls.Options)
            if kind == "label_source":
                component_models.append(entry.cls.Cuts)
    unique = list(dict.fromkeys([Descriptor, *_SECTIONS, *component_models]))
    refs, top = models_json_schema([(m, "validation") for m in unique], ref_template="#/$defs/{model}")
    defs: dict[str, Any] = top["$defs"]

    def name_of(model: type[BaseModel]) -> str:
        return refs[(model, "validation")]["$ref"].rsplit("/", 1)[-1]

    for section, (kind, key) in _SECTIONS.items():
        schema = defs[name_of(section)]
        registry = plugins.registry(kind)
        schema["properties"][key]["enum"] = registry.names()
        rules = []
        for entry in registry:
            then = {"options": {"$ref": f"#/$defs/{name_of(entry.cls.Options)}"}}
            if kind == "label_source":
                then["cuts"] = {"$ref": f"#/$defs/{name_of(entry.cls.Cuts)}"}
            rules.append({"if": {"properties": {key: {"const": entry.cls.name}}}, "then": {"properties": then}})
        if rules:
            schema["allOf"] = rules
    desc = defs[name_of(Descriptor)]
    desc["properties"]["schema_version"]["maximum"] = SCHEMA_VERSION
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"starlabel survey descriptor (schema_version {SCHEMA_VERSION})",
        "$ref": f"#/$defs/{name_of(Descriptor)}",
        "$defs": defs,
    }
