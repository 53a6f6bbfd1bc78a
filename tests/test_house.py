"""House rules of the code base, checked on the source itself.

Each rule is one test function over modules found by walking their package, so
modules added later are covered too. Modules are parsed with :mod:`ast`, never
imported or grepped: a rule sees code, not comments or docstrings.

Rules so far:

- the CLI holds no logic: no module of ``nightlog.cli`` imports SQLAlchemy (except
  the two that open the engine and turn driver errors into one line) or the
  catalogue's models (the schema's index or a module of its tables), nor runs a
  query itself; it calls the library; the index imports every table;
- the catalogue owns every row: no module outside ``nightlog.catalogue`` builds an
  ORM row (calls a model class) or adds, deletes or merges one through a session;
- the store never imports SQLAlchemy; the reduction core imports neither
  SQLAlchemy nor the catalogue, the store, the coordinator or the daemon; the
  catalogue never imports astropy (it never opens FITS);
- the jobs that workers run (``reduce_job``, ``master_job``) never import SQLAlchemy
  or the catalogue, directly or through the modules they import from nightlog;
- the live web view reads through the catalogue's functions: it runs no query of its
  own and never writes (no ``add``, ``delete``, ``merge``, ``flush``, ``commit``), and
  imports SQLAlchemy only for type hints.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import nightlog
import nightlog.cli


@dataclass(frozen=True)
class Module:
    """A parsed source module."""

    name: str
    path: Path
    tree: ast.Module

    @classmethod
    def parse(cls, name: str, path: Path) -> Module:
        """Parse the source file at ``path``."""
        return cls(name, path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))


def modules_of(package: ModuleType) -> list[Module]:
    """The package and every module of it and its subpackages, parsed."""
    assert package.__file__ is not None
    found = [Module.parse(package.__name__, Path(package.__file__))]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin is not None, info.name
        found.append(Module.parse(info.name, Path(spec.origin)))
    return sorted(found, key=lambda m: m.name)


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of every module an import statement names, including
    each ``from package import name`` as ``package.name``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _within(name: str, root: str) -> bool:
    return name == root or name.startswith(root + ".")


def _names_session(node: ast.AST) -> bool:
    """Whether an expression is, or makes, a catalogue session (``session``,
    ``make_sessionmaker(engine)()``, ``Session(engine)``, ``self.session`` …)."""
    return "session" in ast.unparse(node).lower()


def session_names(tree: ast.AST) -> set[str]:
    """Names that hold a session in ``tree``: ``session``, the targets of ``with …
    as name`` and of assignments whose value makes one, and parameters annotated
    ``Session``."""
    names = {"session"}
    for node in ast.walk(tree):
        if isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if isinstance(item.optional_vars, ast.Name) and _names_session(
                        item.context_expr):
                    names.add(item.optional_vars.id)
        elif isinstance(node, ast.Assign) and _names_session(node.value):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.arg) and node.annotation is not None and "Session" in (
                ast.unparse(node.annotation)):
            names.add(node.arg)
    return names


QUERY_METHODS = {"execute", "scalars", "scalar", "get", "query"}


def _on_session(func: ast.expr, methods: set[str], sessions: set[str]) -> bool:
    """Whether ``func`` is one of ``methods`` called on a session."""
    return isinstance(func, ast.Attribute) and func.attr in methods and (
        (isinstance(func.value, ast.Name) and func.value.id in sessions)
        or (isinstance(func.value, ast.Attribute) and _names_session(func.value)))


def queries(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, call)`` of every ``select(...)`` and of every query method called on a
    session (``session.execute``, ``.scalars``, ``.scalar``, ``.get``, ``.query``)."""
    sessions = session_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_select = (isinstance(func, ast.Name) and func.id == "select") or (
            isinstance(func, ast.Attribute) and func.attr == "select")
        if is_select or _on_session(func, QUERY_METHODS, sessions):
            yield node.lineno, ast.unparse(func)


CLI = modules_of(nightlog.cli)
# They open the engine (its type) and show a driver's error in one line.
ENGINE_OWNERS = {"nightlog.cli.state", "nightlog.cli.app"}


def _broken(rule: Callable[[Module], Iterator[tuple[int, str]]],
            modules: list[Module]) -> list[str]:
    return [f"{m.path.name}:{line}: {what}" for m in modules for line, what in rule(m)]


def test_the_walk_finds_the_cli() -> None:
    names = {m.name for m in CLI}
    assert {"nightlog.cli", "nightlog.cli.app", "nightlog.cli.reduce", "nightlog.cli.match",
            "nightlog.cli.provenance", "nightlog.cli.calib"} <= names
    assert names >= ENGINE_OWNERS


def test_the_cli_does_not_import_sqlalchemy() -> None:
    def rule(m: Module) -> Iterator[tuple[int, str]]:
        if m.name not in ENGINE_OWNERS:
            yield from ((line, f"imports {name}") for line, name in imported_modules(m.tree)
                        if _within(name, "sqlalchemy"))

    assert _broken(rule, CLI) == []


SCHEMA_INDEX = "nightlog.catalogue.models"


def _parsed(name: str) -> Module:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, name
    return Module.parse(name, Path(spec.origin))


def _schema_modules() -> set[str]:
    """The schema's index and every module of ``nightlog.catalogue`` it imports tables from."""
    return {SCHEMA_INDEX} | {node.module for node in ast.walk(_parsed(SCHEMA_INDEX).tree)
                             if isinstance(node, ast.ImportFrom) and node.module is not None
                             and _within(node.module, "nightlog.catalogue")}


def _tables_defined(m: Module) -> Iterator[str]:
    """The classes of ``m`` derived from the declarative ``Base``: its tables."""
    for node in m.tree.body:
        if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id == "Base" for b in node.bases):
            yield node.name


def test_the_schema_index_imports_every_table() -> None:
    # SQLAlchemy resolves foreign keys and configures mappers over the tables
    # imported: the index, which every caller imports, must import them all.
    index = _parsed(SCHEMA_INDEX)
    imported = {name for _, name in imported_modules(index.tree)}
    tables = {f"{m.name}.{table}" for m in NIGHTLOG for table in _tables_defined(m)}
    assert len(tables) > 10
    assert tables - imported == set()
    assert {m.name for m in NIGHTLOG if any(_tables_defined(m))} <= _schema_modules()


def test_the_cli_does_not_import_the_catalogue_models() -> None:
    schema = _schema_modules()
    assert len(schema) > 2

    def rule(m: Module) -> Iterator[tuple[int, str]]:
        yield from ((line, f"imports {name}") for line, name in imported_modules(m.tree)
                    if any(_within(name, module) for module in schema))

    assert _broken(rule, CLI) == []


def test_the_cli_runs_no_query() -> None:
    def rule(m: Module) -> Iterator[tuple[int, str]]:
        yield from ((line, f"calls {call}(...)") for line, call in queries(m.tree))

    assert _broken(rule, CLI) == []


@pytest.mark.parametrize(("source", "found"), [
    ("from sqlalchemy import select\nx = select(Frame)", [(2, "select")]),
    ("with make_sessionmaker(engine)() as s:\n    s.scalars(q)", [(2, "s.scalars")]),
    ("def f(db: Session) -> None:\n    db.get(Frame, 1)", [(2, "db.get")]),
    ("session.execute(q)\nself.session.query(Frame)",
     [(1, "session.execute"), (2, "self.session.query")]),
    ('"""session.execute(select(Frame))"""\n# session.get(Frame, 1)\nstats.get("level")', []),
])
def test_the_query_rule_sees_code_not_text(source: str,
                                           found: list[tuple[int, str]]) -> None:
    assert sorted(queries(ast.parse(source))) == found


NIGHTLOG = modules_of(nightlog)


def _package(root: str) -> list[Module]:
    return [m for m in NIGHTLOG if _within(m.name, root)]


def _model_classes() -> set[str]:
    from nightlog.catalogue import models

    return {name for name, value in vars(models).items()
            if isinstance(value, type) and issubclass(value, models.Base)
            and value is not models.Base}


ROW_METHODS = {"add", "add_all", "delete", "merge"}


def rows_built(tree: ast.AST, models: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, call)`` of every call of an ORM model class (``Master(...)``,
    ``models.Frame(...)``) and of ``add``/``add_all``/``delete``/``merge`` on a
    session."""
    sessions = session_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = (func.id if isinstance(func, ast.Name)
                else func.attr if isinstance(func, ast.Attribute) else None)
        if name in models or _on_session(func, ROW_METHODS, sessions):
            yield node.lineno, f"{ast.unparse(func)}(...)"


def test_the_walk_finds_every_package() -> None:
    packages = {m.name.split(".")[1] for m in NIGHTLOG if m.name.count(".") >= 1}
    assert {"catalogue", "coordinator", "daemon", "reduction", "store", "cli", "header",
            "calibration", "report", "simulate"} <= packages
    assert {"Frame", "Master", "MasterInput", "Product", "ProductMaster"} <= _model_classes()


def test_only_the_catalogue_builds_rows() -> None:
    models = _model_classes()

    def rule(m: Module) -> Iterator[tuple[int, str]]:
        yield from rows_built(m.tree, models)

    outside = [m for m in NIGHTLOG if not _within(m.name, "nightlog.catalogue")]
    assert _broken(rule, outside) == []


def test_the_coordinator_and_the_daemon_build_no_rows_by_their_own_means() -> None:
    # The rule above, said for the rooms where rows were built before: a model
    # class imported there could only be for building or querying rows by hand.
    def rule(m: Module) -> Iterator[tuple[int, str]]:
        yield from rows_built(m.tree, _model_classes())

    rooms = _package("nightlog.coordinator") + _package("nightlog.daemon")
    assert rooms and _broken(rule, rooms) == []


def _imports_from(modules: list[Module], forbidden: tuple[str, ...]) -> list[str]:
    def rule(m: Module) -> Iterator[tuple[int, str]]:
        yield from ((line, f"imports {name}") for line, name in imported_modules(m.tree)
                    if any(_within(name, root) for root in forbidden))

    return _broken(rule, modules)


def test_the_store_never_imports_sqlalchemy() -> None:
    assert _imports_from(_package("nightlog.store"), ("sqlalchemy",)) == []


def test_the_reduction_core_stays_pure() -> None:
    assert _imports_from(_package("nightlog.reduction"), (
        "sqlalchemy", "nightlog.catalogue", "nightlog.store", "nightlog.coordinator",
        "nightlog.daemon", "nightlog.cli")) == []


def test_the_web_view_only_reads_through_the_catalogue() -> None:
    web = _package("nightlog.web")
    assert {"nightlog.web.app", "nightlog.web.live_data"} <= {m.name for m in web}
    writes = ROW_METHODS | {"flush", "commit"}

    def rule(m: Module) -> Iterator[tuple[int, str]]:
        yield from ((line, f"calls {call}(...)") for line, call in queries(m.tree))
        sessions = session_names(m.tree)
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Call) and _on_session(node.func, writes, sessions):
                yield node.lineno, f"calls {ast.unparse(node.func)}(...)"
        typing_only = {id(n) for block in ast.walk(m.tree) if isinstance(block, ast.If)
                       and ast.unparse(block.test) == "TYPE_CHECKING"
                       for n in ast.walk(block)}
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in typing_only:
                yield from ((line, f"imports {name}") for line, name in imported_modules(node)
                            if _within(name, "sqlalchemy"))

    assert _broken(rule, web) == []


def test_the_catalogue_never_opens_fits() -> None:
    assert _imports_from(_package("nightlog.catalogue"), ("astropy", "nightlog.store")) == []


@pytest.mark.parametrize("job", ["nightlog.coordinator.reduce_job",
                                 "nightlog.coordinator.master_job"])
def test_worker_jobs_reach_no_catalogue(job: str) -> None:
    """Follow the job's nightlog imports (module level, not under TYPE_CHECKING)."""
    by_name = {m.name: m for m in NIGHTLOG}
    seen: set[str] = set()
    todo = [job]
    reached: list[str] = []
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        for node in by_name[name].tree.body:
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for _, imported in imported_modules(node):
                if _within(imported, "sqlalchemy") or _within(imported, "nightlog.catalogue"):
                    reached.append(f"{name} imports {imported}")
                for part in _prefixes(imported):
                    if part in by_name:
                        todo.append(part)
    assert reached == []


def _prefixes(dotted: str) -> Iterator[str]:
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


@pytest.mark.parametrize(("source", "found"), [
    ("m = Master(kind='bias')", [(1, "Master(...)")]),
    ("row = models.Frame(path=p)", [(1, "models.Frame(...)")]),
    ("with make_sessionmaker(e)() as s:\n    s.add(x)", [(2, "s.add(...)")]),
    ("session.delete(row)\nseen.add(1)\nMasterFilter(kind='bias')", [(1, "session.delete(...)")]),
])
def test_the_row_rule_sees_rows_not_lookalikes(source: str,
                                               found: list[tuple[int, str]]) -> None:
    models = {"Master", "Frame"}
    assert sorted(rows_built(ast.parse(source), models)) == found
