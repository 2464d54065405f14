"""The lineage graph of a page: collapse repeated runs, lay the DAG out, draw it as SVG.

The layout is grandalf's Sugiyama layered layout (layers, then crossing reduction, then
positions; long edges routed through its dummy vertices), turned on its side so that data
flows from left to right as in W&B. The page draws the result as inline SVG; clicks are
plain links, and a small script of ours pans and zooms the ``viewBox``.

A sweep of 200 runs of one job type using one dataset is one node "200 runs", and the
versions those runs logged, per collection, one node "200 versions": a graph of a few
dozen nodes, however large the sweep.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grandalf.graphs import Edge as GEdge
from grandalf.graphs import Vertex
from grandalf.graphs import graph_core as GraphCore
from grandalf.layouts import SugiyamaLayout
from grandalf.routing import route_with_lines

from soko.core.records import RunRecord, VersionRecord
from soko.service.browse import Neighbourhood

COLLAPSE_MIN = 3
"""Runs alike (one job type, the same inputs) from this many on are drawn as one node."""
NODE_WIDTH = 190
NODE_HEIGHT = 44
LAYER_GAP = 70
NODE_GAP = 18
COMPONENT_GAP = 40
MARGIN = 20


@dataclass
class Node:
    id: str
    kind: str
    """``run``, ``version``, ``runs`` (several collapsed) or ``versions``."""
    label: str
    detail: str
    href: str
    start: bool = False
    x: float = 0.0
    y: float = 0.0
    members: int = 1


@dataclass
class Drawing:
    nodes: list[Node]
    edges: list[list[tuple[float, float]]]
    width: float
    height: float
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT
    truncated: bool = False
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Links:
    """How a node's page is named (the UI's URLs)."""

    run: Callable[[RunRecord], str]
    version: Callable[[VersionRecord], str]
    runs: Callable[[RunRecord], str]
    """The page listing runs like this one (its project's, of its job type)."""
    collection: Callable[[VersionRecord], str]


def _groups(hood: Neighbourhood) -> dict[str, str]:
    """Node id → the id of the node that stands for it (itself, or a collapsed group)."""
    inputs: dict[str, set[str]] = defaultdict(set)
    producers: dict[str, set[str]] = defaultdict(set)
    for source, target in hood.edges:
        if target.startswith("run:"):
            inputs[target].add(source)
        else:
            producers[target].add(source)
    by_kind: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for run_id, run in hood.runs.items():
        node = f"run:{run_id}"
        if node != hood.start:
            key = (run.entity, run.project, run.job_type, frozenset(inputs[node]))
            by_kind[key].append(node)
    stands_for: dict[str, str] = {}
    for members in by_kind.values():
        if len(members) >= COLLAPSE_MIN:
            group = f"runs:{min(members)}"
            for member in members:
                stands_for[member] = group
    # Versions logged only by the runs of one group, per collection, collapse with them.
    outputs: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for version_id, record in hood.versions.items():
        node = f"version:{version_id}"
        groups = {stands_for.get(p, p) for p in producers[node]}
        if node != hood.start and len(groups) == 1:
            (group,) = groups
            if group.startswith("runs:"):
                outputs[(group, record.entity, record.project, record.collection)].append(node)
    for members in outputs.values():
        if len(members) >= COLLAPSE_MIN:
            group = f"versions:{min(members)}"
            for member in members:
                stands_for[member] = group
    return stands_for


def _nodes(hood: Neighbourhood, stands_for: dict[str, str], links: Links) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    for run_id, run in sorted(hood.runs.items()):
        node_id = f"run:{run_id}"
        group = stands_for.get(node_id)
        if group is None:
            nodes[node_id] = Node(
                node_id,
                "run",
                run.name or run_id,
                run.job_type or "run",
                links.run(run),
                start=node_id == hood.start,
            )
        elif group in nodes:
            nodes[group].members += 1
        else:
            nodes[group] = Node(group, "runs", "", run.job_type or "run", links.runs(run))
    for version_id, record in sorted(hood.versions.items()):
        node_id = f"version:{version_id}"
        group = stands_for.get(node_id)
        if group is None:
            nodes[node_id] = Node(
                node_id,
                "version",
                f"{record.collection}:{record.version}",
                record.type,
                links.version(record),
                start=node_id == hood.start,
            )
        elif group in nodes:
            nodes[group].members += 1
        else:
            nodes[group] = Node(
                group, "versions", record.collection, record.type, links.collection(record)
            )
    for node in nodes.values():
        if node.kind == "runs":
            node.label = f"{node.members} runs"
        elif node.kind == "versions":
            node.label = f"{node.members} versions of {node.label}"
    return nodes


class _View:
    """grandalf's view of a vertex: its size across (``w``) and along (``h``) the layers,
    and where it was put."""

    def __init__(self, across: float, along: float) -> None:
        self.w = across
        self.h = along
        self.xy = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = points


def _components(vertices: list[Vertex], edges: list[GEdge]) -> list[GraphCore]:
    """The connected parts of the graph, each a grandalf graph of its own.

    grandalf's ``Graph`` finds them too, but compares whole vertex sets while it merges
    them: 25 seconds for a thousand nodes. A union-find here takes milliseconds."""
    parent = {id(v): id(v) for v in vertices}

    def root(key: int) -> int:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for edge in edges:
        a, b = root(id(edge.v[0])), root(id(edge.v[1]))
        if a != b:
            parent[a] = b
    members: dict[int, list[Vertex]] = {}
    for vertex in vertices:
        members.setdefault(root(id(vertex)), []).append(vertex)
    links: dict[int, list[GEdge]] = {}
    for edge in edges:
        links.setdefault(root(id(edge.v[0])), []).append(edge)
    return [GraphCore(part, links.get(key, [])) for key, part in members.items()]


def draw(hood: Neighbourhood, links: Links) -> Drawing:
    """The neighbourhood, collapsed and laid out left to right, in SVG coordinates."""
    stands_for = _groups(hood)
    nodes = _nodes(hood, stands_for, links)
    vertices = {node_id: Vertex(node_id) for node_id in nodes}
    for vertex in vertices.values():
        # Turned on its side: grandalf's layers run down, ours run right.
        vertex.view = _View(NODE_HEIGHT, NODE_WIDTH)
    pairs = {
        (stands_for.get(a, a), stands_for.get(b, b))
        for a, b in hood.edges
        if stands_for.get(a, a) in vertices and stands_for.get(b, b) in vertices
    }
    edges = []
    for a, b in sorted(pairs):
        edge = GEdge(vertices[a], vertices[b])
        edge.view = _EdgeView()
        edges.append(edge)
    paths: list[list[tuple[float, float]]] = []
    top = float(MARGIN)
    width = 0.0
    for component in _components(list(vertices.values()), edges):
        layout = SugiyamaLayout(component)
        layout.xspace = NODE_GAP
        layout.yspace = LAYER_GAP
        layout.route_edge = route_with_lines
        layout.init_all()
        layout.draw(3)
        members = [v for v in component.sV if isinstance(v.data, str)]
        across = [v.view.xy[0] for v in members]
        along = [v.view.xy[1] for v in members]
        # grandalf gives centres; shift the component to start at the margin, below the
        # components drawn before it.
        shift_x = MARGIN + NODE_WIDTH / 2 - min(along)
        shift_y = top + NODE_HEIGHT / 2 - min(across)
        for vertex in members:
            node = nodes[vertex.data]
            node.x = vertex.view.xy[1] + shift_x - NODE_WIDTH / 2
            node.y = vertex.view.xy[0] + shift_y - NODE_HEIGHT / 2
        for edge in component.sE:
            source, target = nodes[edge.v[0].data], nodes[edge.v[1].data]
            # Through grandalf's bends, from the right side of the source to the left side
            # of the target.
            bends = [(p[1] + shift_x, p[0] + shift_y) for p in edge.view.points[1:-1]]
            paths.append(
                [
                    (source.x + NODE_WIDTH, source.y + NODE_HEIGHT / 2),
                    *bends,
                    (target.x, target.y + NODE_HEIGHT / 2),
                ]
            )
        top += max(across) - min(across) + NODE_HEIGHT + COMPONENT_GAP
        width = max(width, max(along) - min(along) + NODE_WIDTH + 2 * MARGIN)
    counts = {
        "runs": len(hood.runs),
        "versions": len(hood.versions),
        "nodes": len(nodes),
    }
    return Drawing(
        nodes=sorted(nodes.values(), key=lambda n: (n.x, n.y)),
        edges=paths,
        width=max(width, 200.0),
        height=max(top - COMPONENT_GAP + MARGIN, 100.0),
        truncated=hood.truncated,
        counts=counts,
    )
