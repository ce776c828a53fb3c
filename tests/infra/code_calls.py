"""Which Google API operations each entry point of functions/main.py can reach.

A static call graph of ``functions/`` (``main.py`` and ``imagegen/``): a node
is a top-level function or class of a module (methods and nested functions
fold into it), plus one node per module for its module-level code (a dispatch
table, a constant built by a call), which every node of the module reaches;
an edge is any reference from one node to another (a call, a
callback passed along, a decorator), resolved through the module's imports and
the imports inside the function. From an entry point, every reachable node's
own code is searched for the operations in ``OPERATIONS``.

It over-approximates inside a function (both branches of an ``if`` count),
which is why rows of the IAM table can carry a ``when`` condition. A REST call
(``imagegen.google_api``) names no method to find: the function that makes it
is listed in ``CLIENT_NODES`` with its operation.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"

# Reaching one of these nodes is the operation: a client built only for it, or
# the function that makes the REST call.
CLIENT_NODES = {
    "imagegen.clients:database": "firestore",
    "imagegen.clients:firestore_client": "firestore",
    "imagegen.task_queue:create_task": "tasks.create",
    "imagegen.storage:upload": "storage.create",
    "imagegen.storage:delete": "storage.delete",
    "imagegen.storage:_names": "storage.list",
    "imagegen.storage:object_size": "storage.get",
    "imagegen.storage:read_object": "storage.get",
}

# Method names specific enough to mean one Google API operation wherever called.
METHODS = {
    "generate_signed_url": "storage.sign",
    "create_task": "tasks.create",
    "delete_task": "tasks.delete",
    "generate_content": "gemini",
    "generate_content_stream": "gemini",
    "generate_images": "gemini",
    "edit_image": "gemini",
}

# Every operation the scanner can report (rows of the IAM table use these).
OPERATIONS = frozenset(CLIENT_NODES.values()) | frozenset(METHODS.values())


MODULE_CODE = "<module>"


@dataclass
class Node:
    module: str
    name: str
    tree: ast.AST
    refs: set[str] = field(default_factory=set)
    ops: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return f"{self.module}:{self.name}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(FUNCTIONS_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(statements: Iterator[ast.AST], package: str) -> dict[str, str]:
    """Bound name -> dotted target of the import statements given."""
    bound: dict[str, str] = {}
    for stmt in statements:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    bound[head] = head
        elif isinstance(stmt, ast.ImportFrom):
            base = stmt.module or ""
            if stmt.level:
                anchor = package.split(".")[: len(package.split(".")) - stmt.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in stmt.names:
                bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    return bound


def _top_level_statements(tree: ast.Module) -> Iterator[ast.AST]:
    """Module-level statements, descending into if/try but not into defs."""
    stack = list(tree.body)
    while stack:
        stmt = stack.pop()
        yield stmt
        if isinstance(stmt, (ast.If, ast.Try)):
            for name in ("body", "orelse", "finalbody"):
                stack.extend(getattr(stmt, name, []))
            stack.extend(h for handler in getattr(stmt, "handlers", []) for h in handler.body)


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything that is not a name chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


@dataclass
class CallGraph:
    nodes: dict[str, Node]

    def reachable(self, start: str) -> list[Node]:
        seen = {start}
        todo = [start]
        while todo:
            for ref in self.nodes[todo.pop()].refs:
                if ref not in seen:
                    seen.add(ref)
                    todo.append(ref)
        return [self.nodes[n] for n in sorted(seen)]

    def operations(self, entry_point: str) -> dict[str, set[str]]:
        """Operation -> the nodes doing it, reachable from ``main:<entry_point>``."""
        found: dict[str, set[str]] = {}
        for node in self.reachable(f"main:{entry_point}"):
            ops = set(node.ops)
            if node.id in CLIENT_NODES:
                ops.add(CLIENT_NODES[node.id])
            for op in ops:
                found.setdefault(op, set()).add(node.id)
        return found


@lru_cache(maxsize=1)
def call_graph() -> CallGraph:
    modules: dict[str, ast.Module] = {}
    for path in sorted(FUNCTIONS_DIR.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        modules[_module_name(path)] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    nodes: dict[str, Node] = {}
    defs: dict[str, set[str]] = {}
    for module, tree in modules.items():
        defs[module] = set()
        module_code = []
        for stmt in _top_level_statements(tree):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                node = Node(module, stmt.name, stmt)
                nodes[node.id] = node
                defs[module].add(stmt.name)
            elif not isinstance(stmt, (ast.Import, ast.ImportFrom, ast.If, ast.Try)):
                module_code.append(stmt)
        pseudo = Node(module, MODULE_CODE, ast.Module(body=module_code, type_ignores=[]))
        nodes[pseudo.id] = pseudo

    def resolve(parts: list[str]) -> str | None:
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if module in modules and parts[cut] in defs[module]:
                return f"{module}:{parts[cut]}"
        return None

    for node in nodes.values():
        tree = modules[node.module]
        is_package = (FUNCTIONS_DIR / node.module.replace(".", "/") / "__init__.py").exists()
        package = node.module if is_package else node.module.rpartition(".")[0]
        bound = _imports(_top_level_statements(tree), package)
        bound.update(_imports(ast.walk(node.tree), package))
        for sub in ast.walk(node.tree):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
                method = sub.func.attr
                if method in METHODS:
                    node.ops.add(METHODS[method])
            if not isinstance(sub, (ast.Name, ast.Attribute)):
                continue
            parts = _dotted(sub)
            if not parts:
                continue
            head, rest = parts[0], parts[1:]
            if head in bound:
                target = resolve([*bound[head].split("."), *rest])
            elif head in defs[node.module]:
                target = f"{node.module}:{head}"
            else:
                target = None
            if target and target != node.id:
                node.refs.add(target)
        if node.name != MODULE_CODE:
            node.refs.add(f"{node.module}:{MODULE_CODE}")
    return CallGraph(nodes)
