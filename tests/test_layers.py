"""DESIGN §8: stages meet only at the model. extractors/, markup/, validate/ and loaders/ import
model, ids, errors and redact (plus their own package); extractors may also call markup (pure) and
files (downloading what an export only links to, into the content store the targets read); the
SQL loaders implement the target contract (targets/contract.py); the chat-server targets build on
the loaders (their hub) and report findings through validate's sink."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "chatmigrate"
SHARED = {"chatmigrate.model", "chatmigrate.ids", "chatmigrate.errors", "chatmigrate.redact"}
ALLOWED_EXTRA = {
    # extractors also read their option declarations (options.py) and the data files of mappings/.
    "extractors": {"chatmigrate.markup", "chatmigrate.files", "chatmigrate.options", "chatmigrate.mappings"},
    "loaders": {"chatmigrate.targets.contract"},
    "targets": {"chatmigrate.loaders", "chatmigrate.validate.findings", "chatmigrate.mappings", "chatmigrate.markup"},
    # The mapping step sits between validation and the target: it reports through validate's sink
    # and reads the target's existing users through the target contract.
    "mapping": {"chatmigrate.validate", "chatmigrate.targets.contract", "chatmigrate.markup"},
}


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (type hints create no runtime coupling)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chatmigrate"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("chatmigrate"))
    return found


def test_stages_import_only_the_model() -> None:
    problems = []
    for stage in ("extractors", "markup", "validate", "loaders", "targets", "mapping"):
        allowed = SHARED | {f"chatmigrate.{stage}"} | ALLOWED_EXTRA.get(stage, set())
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            for module in _imports(path):
                if not any(module == a or module.startswith(a + ".") for a in allowed) and module != "chatmigrate":
                    problems.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not problems, "\n".join(problems)
