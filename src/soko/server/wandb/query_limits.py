"""Limits on what one GraphQL request may ask: its size in tokens, its depth, its cost.

A request is parsed with a token limit (a huge query costs time before any rule runs),
validated with graphql-core's standard rules, then with the rule here, which measures two
things with fragments expanded (the standard rules refuse cycles first, so that ends):

- depth: the longest chain of nested fields; the `wandb` client's deepest query nests 11
  fields (fragments expanded), the limit leaves room for other releases.
- cost: every field selected counts 1, and a field that answers a page (one that takes
  ``first``) counts its selection once per item it may return (its ``first``, else the
  page maximum). This bounds the work of aliases repeated many times or of many pages asked
  at once; the client's costliest request (a page of file URLs) costs at most 180,000, at
  the largest page this server answers.

A request over a limit is answered with a GraphQL error (HTTP 400) before any resolver runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    parse,
    validate,
)

MAX_TOKENS = 20_000
MAX_DEPTH = 20
MAX_COST = 250_000


class _Limits:
    """Depth and cost of one operation's selections, with its fragments expanded."""

    def __init__(self, context: ValidationContext, variables: Mapping[str, Any], page: int) -> None:
        self.context = context
        self.schema = context.schema
        self.variables = variables
        self.page = page

    def _items(self, field: FieldNode, definition: GraphQLField | None) -> int:
        """How many items a field may answer: its ``first`` for a paged field (one whose
        definition takes ``first``), else 1."""
        if definition is None or "first" not in definition.args:
            return 1
        for argument in field.arguments or ():
            if argument.name.value != "first":
                continue
            value: Any = None
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
            if isinstance(value, int) and not isinstance(value, bool):
                return max(1, min(value, self.page))
        return self.page

    def _type(self, name: str | None, default: GraphQLNamedType | None) -> GraphQLNamedType | None:
        return default if name is None else self.schema.get_type(name)

    def measure(
        self,
        selections: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        seen: frozenset[str],
    ) -> tuple[int, int]:
        """(depth, cost) of a selection set on *parent*; *seen*: fragments being expanded."""
        if selections is None:
            return 0, 0
        depth, cost = 0, 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                fields = getattr(parent, "fields", None) or {}
                definition = fields.get(selection.name.value)
                inner_type = None if definition is None else get_named_type(definition.type)
                inner_depth, inner_cost = self.measure(selection.selection_set, inner_type, seen)
                depth = max(depth, inner_depth + 1)
                cost += 1 + self._items(selection, definition) * inner_cost
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._type(condition.name.value if condition else None, parent)
                inner_depth, inner_cost = self.measure(selection.selection_set, inner, seen)
                depth, cost = max(depth, inner_depth), cost + inner_cost
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is None or name in seen:
                    continue  # reported by the standard rules
                inner = self._type(fragment.type_condition.name.value, parent)
                inner_depth, inner_cost = self.measure(fragment.selection_set, inner, seen | {name})
                depth, cost = max(depth, inner_depth), cost + inner_cost
            if cost > MAX_COST:
                return depth, cost  # over already: no need to expand the rest
        return depth, cost

    def operation(self, node: OperationDefinitionNode) -> tuple[int, int]:
        root = {
            OperationType.QUERY: self.schema.query_type,
            OperationType.MUTATION: self.schema.mutation_type,
            OperationType.SUBSCRIPTION: self.schema.subscription_type,
        }[node.operation]
        return self.measure(node.selection_set, root, frozenset())


def _rule(variables: Mapping[str, Any], page: int) -> type[ValidationRule]:
    class QueryLimits(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            depth, cost = _Limits(self.context, variables, page).operation(node)
            name = f" {node.name.value}" if node.name else ""
            if depth > MAX_DEPTH:
                self.report_error(
                    GraphQLError(
                        f"The operation{name} nests {depth} fields deep; this server "
                        f"answers at most {MAX_DEPTH}.",
                        node,
                    )
                )
            elif cost > MAX_COST:
                self.report_error(
                    GraphQLError(
                        f"The operation{name} asks too much at once (cost over {MAX_COST}: "
                        "each field counts once per item of the pages around it); ask "
                        "for fewer fields or smaller pages.",
                        node,
                    )
                )

    return QueryLimits


def parse_and_validate(
    schema: GraphQLSchema, text: str, *, variables: Mapping[str, Any] | None, page: int
) -> DocumentNode | list[GraphQLError]:
    """The parsed document of *text*, or the errors that refuse it."""
    try:
        document = parse(text, max_tokens=MAX_TOKENS)
    except GraphQLError as error:
        return [error]
    errors = validate(schema, document)
    if errors:
        return errors
    limited = validate(schema, document, [_rule(variables or {}, page)])
    return limited or document
