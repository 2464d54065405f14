"""The constrained fields of the API's models, each one rule of :mod:`soko.core.names`.

A field is validated by the very function the service calls, so the server refuses bad input
(422, naming the field and the rule) before it reaches the database, with the message the
embedded store gives; and its JSON schema is stated from the same rule and constants, so the
OpenAPI schema shows every limit without repeating it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from soko.core import names
from soko.core.records import as_utc


@dataclass(frozen=True, eq=False)  # hashed by identity: typing hashes Annotated metadata
class Checked:
    """Pydantic metadata: run *check* after the type's own validation; add *schema* to its
    JSON schema."""

    check: Callable[[Any], Any]
    schema: Mapping[str, Any] = field(default_factory=dict)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(self.schema)
        return json_schema


def _by(rule: names.TextRule, check: Callable[[Any], Any] | None = None) -> Checked:
    return Checked(check or rule.check, rule.json_schema())


ProjectName = Annotated[str, _by(names.PROJECT_RULE)]
"""An entity or project name."""
CollectionName = Annotated[str, Checked(names.validate_name, names.NAME_SCHEMA)]
TypeName = Annotated[str, _by(names.TYPE_RULE, names.validate_type)]
TypeFilter = Annotated[str, _by(names.TYPE_RULE)]
"""A type asked for in a listing (a reserved type is no error there: it lists nothing)."""
Alias = Annotated[str, _by(names.ALIAS_RULE, names.validate_alias)]
Tag = Annotated[str, Checked(names.validate_tag, names.TAG_SCHEMA)]
RunId = Annotated[str, _by(names.RUN_ID_RULE)]
RunName = Annotated[str, _by(names.RUN_NAME_RULE)]
JobType = Annotated[str, _by(names.JOB_TYPE_RULE)]
GroupName = Annotated[str, _by(names.GROUP_RULE)]
DistributedId = Annotated[str, _by(names.DISTRIBUTED_ID_RULE)]
VersionId = Annotated[str, _by(names.VERSION_ID_RULE)]
KeyId = Annotated[str, _by(names.KEY_ID_RULE)]
Description = Annotated[str, _by(names.DESCRIPTION_RULE)]

Metadata = Annotated[
    dict[str, Any],
    Checked(names.validate_metadata, {"maxProperties": names.METADATA_MAX_KEYS}),
]
Config = Annotated[dict[str, Any], Checked(names.validate_config)]
TtlSeconds = Annotated[
    int, Checked(names.validate_ttl, {"minimum": 1, "maximum": names.TTL_MAX_SECONDS})
]

UtcDatetime = Annotated[datetime, Checked(as_utc)]
"""A time as the API gives it: always with its UTC offset, whichever database it came from."""
