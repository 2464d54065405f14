"""What a column type is, and how one is found for a Python value or a JSON object.

:class:`Type` is the base of every column type, with its JSON form (``wb_type`` and
``params``, params holding types in their own JSON form). :class:`TypeRegistry` maps type
names (for JSON) and Python classes (for inference) to the type classes that register
themselves, and answers for what none claims: a value of an unregistered class is a
``pythonObject``, NaN is ``none``, a JSON ``wb_type`` soko does not model is kept verbatim.

numpy is optional: a type class lists the numpy classes it handles by name
(``numpy_names``), and they are registered the first time a value's class is looked up
while numpy is imported (a numpy value cannot exist before that).

It imports nothing from soko but :mod:`soko.sdk.data_types.base`.
"""

from __future__ import annotations

import math
import sys
from typing import Any, ClassVar

from soko.sdk.data_types.base import Reader, Writer, numpy_or_none


class Type:
    """The most general type; subclasses set a unique ``name`` used in JSON."""

    name: ClassVar[str] = ""
    legacy_names: ClassVar[list[str]] = []
    types: ClassVar[list[type]] = []
    # The numpy classes (attribute names of the numpy module) this type also handles.
    numpy_names: ClassVar[tuple[str, ...]] = ()
    # True when assigning a value to this type, and the type inferred from a value of a
    # class this type handles, depend on the value's class alone (see `row_signature`).
    class_determined: ClassVar[bool] = False
    # True when some values of a class-determined type decide their own type (an image
    # with masks or boxes); :meth:`decided_by_value` then tells which.
    value_may_decide: ClassVar[bool] = False

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        self._params: dict[str, Any] = {}

    @property
    def params(self) -> dict[str, Any]:
        return self._params

    def assign(self, py_obj: Any = None) -> Type:
        """The type that results from adding *py_obj* to a column of this type."""
        return self.assign_type(TypeRegistry.type_of(py_obj))

    def assign_type(self, wb_type: Type) -> Type:
        if isinstance(wb_type, self.__class__) and self.params == wb_type.params:
            return self
        return InvalidType()

    def to_json(self, writer: Writer | None = None) -> dict[str, Any]:
        result: dict[str, Any] = {
            "wb_type": self.name,
            "params": _params_to_json(self.params, writer),
        }
        if result["params"] is None or result["params"] == {}:
            del result["params"]
        return result

    @classmethod
    def from_json(cls, json_dict: dict[str, Any], reader: Reader | None = None) -> Type:
        return cls(**_json_to_params(json_dict.get("params", {}), reader))

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> Type:
        return cls()

    @staticmethod
    def decided_by_value(py_obj: Any) -> bool:
        """Whether *py_obj*'s type depends on more than its class (see ``value_may_decide``)."""
        return False

    def explain(self, other: Any, depth: int = 0) -> str:
        """Why *other* cannot be assigned to this type (the caller knows it cannot)."""
        wbtype = TypeRegistry.type_of(other)
        gap = "\t" * depth
        if depth > 0:
            return f"{gap}{wbtype} not assignable to {self}"
        return f"{gap}{other} of type {wbtype} is not assignable to {self}"

    def __repr__(self) -> str:
        text = self.name.capitalize()
        if self.params:
            text += "(" + ", ".join(f"{k}:{v}" for k, v in self.params.items()) + ")"
        return text

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, Type)
            and self.name == other.name
            and self.params.keys() == other.params.keys()
            and all(self.params[k] == other.params[k] for k in self.params)
        )

    __hash__ = None  # type: ignore[assignment]


class InvalidType(Type):
    """The result of an assignment that is not allowed."""

    name = "invalid"
    class_determined = True

    def assign_type(self, wb_type: Type) -> Type:
        return self


class NoneType(Type):
    name = "none"
    class_determined = True
    types: ClassVar[list[type]] = [type(None)]


class PythonObjectType(Type):
    """The fallback type: remembers the class name of the value."""

    name = "pythonObject"
    class_determined = True
    legacy_names: ClassVar[list[str]] = ["object"]

    def __init__(self, class_name: str) -> None:
        super().__init__()
        self.params["class_name"] = class_name

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> Type:
        return cls(py_obj.__class__.__name__)


class OpaqueType(Type):
    """A type read from JSON whose ``wb_type`` soko does not model; written back verbatim."""

    name = "__opaque__"

    def __init__(self, raw: dict[str, Any]) -> None:
        super().__init__()
        self._raw = raw
        self.params["raw"] = raw

    def assign_type(self, wb_type: Type) -> Type:
        return (
            self if isinstance(wb_type, OpaqueType) and wb_type._raw == self._raw else InvalidType()
        )

    def to_json(self, writer: Writer | None = None) -> dict[str, Any]:
        return self._raw

    def __repr__(self) -> str:
        # As W&B prints its own type of this name: unions are ordered by this text.
        text = str(self._raw.get("wb_type", "")).capitalize()
        params = self._raw.get("params")
        if isinstance(params, dict) and params:
            text += "(" + ", ".join(f"{k}:{v}" for k, v in params.items()) + ")"
        return text


class TypeRegistry:
    """Maps type names (for JSON) and Python classes (for inference) to :class:`Type`."""

    _by_name: ClassVar[dict[str, type[Type]]] = {}
    _by_class: ClassVar[dict[type, type[Type]]] = {}
    _numpy_done: ClassVar[bool] = False

    @staticmethod
    def add(wb_type: type[Type]) -> None:
        TypeRegistry._by_name[wb_type.name] = wb_type
        for legacy in wb_type.legacy_names:
            TypeRegistry._by_name[legacy] = wb_type
        for py_class in wb_type.types:
            TypeRegistry._by_class[py_class] = wb_type

    @staticmethod
    def handler_for_class(py_class: type) -> type[Type] | None:
        handler = TypeRegistry._by_class.get(py_class)
        if handler is None and not TypeRegistry._numpy_done and "numpy" in sys.modules:
            TypeRegistry._register_numpy()
            handler = TypeRegistry._by_class.get(py_class)
        return handler

    @staticmethod
    def _register_numpy() -> None:
        """Register numpy's classes for the types that name them, as W&B does when numpy is
        importable."""
        TypeRegistry._numpy_done = True
        np = numpy_or_none()
        if np is None:
            return
        handlers = [t for t in dict.fromkeys(TypeRegistry._by_name.values()) if t.numpy_names]
        for handler in handlers:
            handler.types.extend(getattr(np, n) for n in handler.numpy_names if hasattr(np, n))
        for handler in handlers:
            TypeRegistry.add(handler)

    @staticmethod
    def type_of(py_obj: Any) -> Type:
        # NaN is a float but, as in dataframes, stands for a missing value.
        if py_obj.__class__ is float and math.isnan(py_obj):
            return NoneType()
        handler = TypeRegistry.handler_for_class(py_obj.__class__)
        if handler is not None:
            return handler.from_obj(py_obj)
        return PythonObjectType.from_obj(py_obj)

    @staticmethod
    def type_from_dict(json_dict: dict[str, Any], reader: Reader | None = None) -> Type:
        wb_type = json_dict.get("wb_type")
        if wb_type is None:
            raise TypeError("json_dict must contain `wb_type` key")
        handler = TypeRegistry._by_name.get(wb_type)
        if handler is None:
            # A type soko does not model (audio, video, …): kept verbatim, not rejected,
            # so that a W&B table holding such a column still loads and saves unchanged.
            return OpaqueType(json_dict)
        return handler.from_json(json_dict, reader)


def _params_to_json(params: Any, writer: Writer | None) -> Any:
    if params.__class__ is dict:
        return {key: _params_to_json(params[key], writer) for key in params}
    if params.__class__ in (list, set, tuple, frozenset):
        return [_params_to_json(item, writer) for item in list(params)]
    if isinstance(params, Type):
        return params.to_json(writer)
    return params


def _json_to_params(json_obj: Any, reader: Reader | None) -> Any:
    if json_obj.__class__ is dict:
        if "wb_type" in json_obj:
            return TypeRegistry.type_from_dict(json_obj, reader)
        return {key: _json_to_params(json_obj[key], reader) for key in json_obj}
    if json_obj.__class__ is list:
        return [_json_to_params(item, reader) for item in json_obj]
    return json_obj


for _fallback in (InvalidType, NoneType, PythonObjectType):
    TypeRegistry.add(_fallback)
