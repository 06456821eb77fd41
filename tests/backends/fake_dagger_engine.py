"""A FAKE Dagger engine: a GraphQL endpoint on 127.0.0.1 that speaks the subset of the Dagger API the
Dagger backend uses, records every query, and answers with outputs the test feeds it.

Nothing here runs a container. It exists because no Dagger engine (and no container runtime) can
run on this machine; see ../shared/notes/toolchain-facts.md §3. The real ``dagger-io`` SDK attaches
to it exactly as to a ``dagger run`` session: ``DAGGER_SESSION_PORT`` + ``DAGGER_SESSION_TOKEN``,
HTTP basic auth ``(token, "")``, an introspection query, then one query per terminal field.

:data:`SDL` covers every field and argument the backend's query chain uses (a field missing here
makes the SDK fail with ``InvalidQueryError``, which is how the tests notice a backend that starts
using something new). Resolvers build immutable fake objects; a terminal field (``exitCode``,
``stdout``, ``stderr``, ``entries``, ``contents``) snapshots the container's state into
:attr:`FakeEngine.runs` so tests assert what the engine was asked to do.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import graphql

SDL = """
scalar Platform
scalar DirectoryID
scalar ServiceID

enum ReturnType { ANY FAILURE SUCCESS }

type Query {
  version: String!
  container(platform: Platform): Container!
  host: Host!
}

type Host {
  directory(path: String!, exclude: [String!], include: [String!], noCache: Boolean, gitignore: Boolean): Directory!
}

type Directory {
  id: DirectoryID!
  entries(path: String): [String!]!
  file(path: String!): File!
}

type File {
  contents(offsetLines: Int, limitLines: Int): String!
}

type Container {
  from(address: String!, registryService: ServiceID): Container!
  withEnvVariable(name: String!, value: String!, expand: Boolean): Container!
  withMountedDirectory(path: String!, source: DirectoryID!, owner: String, readOnly: Boolean,
                       expand: Boolean): Container!
  withDirectory(path: String!, source: DirectoryID!, exclude: [String!], include: [String!], gitignore: Boolean,
                owner: String, expand: Boolean, permissions: Int): Container!
  withWorkdir(path: String!, expand: Boolean): Container!
  withExec(args: [String!]!, useEntrypoint: Boolean, stdin: String, redirectStdin: String, redirectStdout: String,
           redirectStderr: String, expect: ReturnType, experimentalPrivilegedNesting: Boolean,
           insecureRootCapabilities: Boolean, expand: Boolean, noInit: Boolean): Container!
  exitCode: Int!
  stdout: String!
  stderr: String!
  directory(path: String!, expand: Boolean): Directory!
}
"""

SCHEMA = graphql.build_schema(SDL)


@dataclass(frozen=True)
class HostDirectory:
    """``host.directory(path, exclude…)``: what the engine would read from the client's filesystem."""

    path: str
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Placed:
    """One ``withMountedDirectory`` or ``withDirectory`` call."""

    call: str
    path: str
    source: HostDirectory
    read_only: bool


@dataclass(frozen=True)
class ContainerState:
    """Everything a chain did to a container, in order."""

    platform: str | None = None
    image: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    placed: tuple[Placed, ...] = ()
    workdir: str | None = None
    execs: tuple[tuple[tuple[str, ...], str], ...] = ()  # (argv, expect)
    calls: tuple[str, ...] = ()

    def did(self, call: str, **changes: Any) -> ContainerState:
        return replace(self, calls=(*self.calls, call), **changes)


@dataclass
class Feed:
    """What the fake answers: the stage's exit code, stdout, stderr, and the files of ``output_dir``."""

    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    output_dir: str = "/out/lockfiles"
    files: Mapping[str, bytes] = field(default_factory=dict)
    #: When set, an exec whose argv starts with these words fails as the engine reports it (EXEC_ERROR).
    failing_exec: tuple[str, ...] | None = None


@dataclass
class Recorded:
    query: str
    authorized: bool


class FakeEngine:
    """The fake engine's state: fed outputs, recorded queries, runs (container snapshots at terminals)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.feed = Feed()
        self.queries: list[Recorded] = []
        self.runs: list[ContainerState] = []
        self._ids: dict[str, HostDirectory] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    # ---- the query chain -----------------------------------------------------------------

    def resolve(self, parent: Any, info: graphql.GraphQLResolveInfo[Any], /, **args: Any) -> Any:
        """graphql-core's field resolver for every field (arguments arrive by their GraphQL names)."""
        name = info.field_name
        if parent is None or isinstance(parent, _Root):
            return self._query(name, args)
        if isinstance(parent, _Host):
            return HostDirectory(path=args["path"], exclude=tuple(args.get("exclude") or ()))
        if isinstance(parent, ContainerState):
            return self._container(parent, name, args)
        if isinstance(parent, HostDirectory | _OutputDirectory):
            return self._directory(parent, name, args)
        if isinstance(parent, _OutputFile):
            return parent.data.decode()
        raise graphql.GraphQLError(f"fake engine: no resolver for {type(parent).__name__}.{name}")

    def _query(self, name: str, args: Mapping[str, Any]) -> Any:
        match name:
            case "version":
                return "v0.21.11-fake"
            case "container":
                return ContainerState(platform=args.get("platform"), calls=("container",))
            case "host":
                return _Host()
        raise graphql.GraphQLError(f"fake engine: Query.{name} is not implemented")

    def _container(self, ctr: ContainerState, name: str, args: Mapping[str, Any]) -> Any:
        match name:
            case "from":
                return ctr.did(name, image=args["address"])
            case "withEnvVariable":
                return ctr.did(name, env=(*ctr.env, (args["name"], args["value"])))
            case "withMountedDirectory" | "withDirectory":
                source = self._ids.get(args["source"])
                if source is None:
                    raise graphql.GraphQLError(f"fake engine: unknown directory id {args['source']!r}")
                placed = Placed(call=name, path=args["path"], source=source, read_only=bool(args.get("readOnly")))
                return ctr.did(name, placed=(*ctr.placed, placed))
            case "withWorkdir":
                return ctr.did(name, workdir=args["path"])
            case "withExec":
                argv = tuple(args["args"])
                failing = self.feed.failing_exec
                if failing is not None and argv[: len(failing)] == failing:
                    raise graphql.GraphQLError(
                        f"process {' '.join(argv)!r} did not complete successfully: exit code: 1",
                        extensions={"_type": "EXEC_ERROR", "cmd": list(argv), "exitCode": 1, "stdout": "",
                                    "stderr": "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES (fake)"},
                    )
                return ctr.did(name, execs=(*ctr.execs, (argv, args.get("expect") or "SUCCESS")))
            case "exitCode" | "stdout" | "stderr":
                self._snapshot(ctr)
                return {"exitCode": self.feed.exit_code, "stdout": self.feed.stdout,
                        "stderr": self.feed.stderr}[name]
            case "directory":
                self._snapshot(ctr)
                ran = bool(ctr.execs)
                files = dict(self.feed.files) if ran and args["path"] == self.feed.output_dir else {}
                return _OutputDirectory(path=args["path"], files=files)
        raise graphql.GraphQLError(f"fake engine: Container.{name} is not implemented")

    def _directory(self, directory: HostDirectory | _OutputDirectory, name: str, args: Mapping[str, Any]) -> Any:
        if name == "id" and isinstance(directory, HostDirectory):
            with self._lock:
                ident = f"fake-directory-{next(self._counter)}"
                self._ids[ident] = directory
            return ident
        if isinstance(directory, _OutputDirectory):
            if name == "entries":
                return sorted(directory.files)
            if name == "file" and args["path"] in directory.files:
                return _OutputFile(data=directory.files[args["path"]])
            if name == "file":
                raise graphql.GraphQLError(f"fake engine: {directory.path}/{args['path']}: no such file")
        raise graphql.GraphQLError(f"fake engine: Directory.{name} is not implemented for {directory}")

    def _snapshot(self, ctr: ContainerState) -> None:
        with self._lock:
            self.runs.append(ctr)

    # ---- HTTP ----------------------------------------------------------------------------

    def handle(self, body: bytes, authorization: str | None) -> dict[str, Any]:
        expected = "Basic " + base64.b64encode(f"{self.token}:".encode()).decode()
        request = json.loads(body)
        query = request["query"]
        with self._lock:
            self.queries.append(Recorded(query=query, authorized=authorization == expected))
        if authorization != expected:
            return {"errors": [{"message": "fake engine: bad session token"}]}
        result = graphql.graphql_sync(SCHEMA, query, root_value=_Root(), variable_values=request.get("variables"),
                                      field_resolver=self.resolve)
        response: dict[str, Any] = {"data": result.data}
        if result.errors:
            response["errors"] = [e.formatted for e in result.errors]
        return response

    @property
    def chain_queries(self) -> list[str]:
        """Recorded queries other than the SDK's introspection of the schema."""
        return [r.query for r in self.queries if "__schema" not in r.query]


class _Root:
    pass


class _Host:
    pass


@dataclass(frozen=True)
class _OutputDirectory:
    path: str
    files: Mapping[str, bytes]


@dataclass(frozen=True)
class _OutputFile:
    data: bytes


@contextmanager
def serve(token: str = "fake-session-token") -> Iterator[tuple[FakeEngine, int]]:
    """Run the fake engine on an ephemeral port of 127.0.0.1; yields the engine and the port."""
    engine = FakeEngine(token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.dumps(engine.handle(self.rfile.read(length), self.headers.get("Authorization"))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-dagger-engine",
                              daemon=True)
    thread.start()
    try:
        yield engine, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
