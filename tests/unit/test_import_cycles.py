"""No import cycles in hub/, between any two modules (a package's __init__ included).

import-linter's acyclic_siblings contract (pyproject.toml) checks siblings only: a package importing one of its
own modules that imports the package back (hub.store <-> hub.store.ingest, once) is not siblings. This walks
every import of every module instead. Imports made only for type checking (`if TYPE_CHECKING:`) are left out:
they never run, and the layers contract lists each one that points upward."""

from __future__ import annotations

import grimp


def test_no_module_imports_itself_back_through_any_chain() -> None:
    graph = grimp.build_graph("hub", exclude_type_checking_imports=True)
    cycles = sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    )
    assert cycles == [], "\n".join(
        f"{a} -> {b} -> ... -> {a}: {' -> '.join(graph.find_shortest_chain(importer=b, imported=a) or ())}"
        for a, b in cycles
    )
