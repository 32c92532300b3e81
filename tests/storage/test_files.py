"""Model files by URI: file:// through Hadoop's FileSystem API (the hdfs:// code path), plain paths
without Spark, and webhdfs:// through the hdfs package against an in-process WebHDFS server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fedspark.storage import StorageFileError, read_file, resolve_file_uri, write_file

MODEL = json.dumps({"weights": [0.5, -1.0], "intercept": 0.1}).encode()


def test_file_uri_through_hadoop_filesystem(spark: Any, tmp_path: Path) -> None:
    uri = (tmp_path / "models" / "guest" / "model.json").as_uri()
    assert write_file(uri, MODEL, spark=spark) == "file://" + str(tmp_path / "models" / "guest" / "model.json")
    assert read_file(uri, spark=spark) == MODEL
    write_file(uri, b"v2", spark=spark)
    assert read_file(uri, spark=spark) == b"v2"
    with pytest.raises(StorageFileError, match="model.json"):
        write_file(uri, MODEL, spark=spark, overwrite=False)
    with pytest.raises(StorageFileError, match="no such file"):
        read_file((tmp_path / "missing.json").as_uri(), spark=spark)


def test_plain_path_without_spark(tmp_path: Path) -> None:
    path = tmp_path / "arbiter" / "model.json"
    write_file(str(path), MODEL)
    assert path.read_bytes() == MODEL and read_file(str(path)) == MODEL
    with pytest.raises(StorageFileError, match="no such file"):
        read_file(str(tmp_path / "nope"))


def test_hdfs_needs_a_reachable_name_node(spark: Any) -> None:
    uri = "hdfs://fedspark-no-such-namenode.invalid:8020/models/m.json"
    with pytest.raises(StorageFileError, match="fedspark-no-such-namenode.invalid") as caught:
        read_file(uri, spark=spark)
    assert caught.value.uri == uri
    with pytest.raises(StorageFileError, match="needs the party's Spark session"):
        write_file(uri, MODEL)


@pytest.mark.parametrize("uri", ["s3a://bucket/m.json", "webhdfs://nn", "file:relative/m.json"])
def test_unsupported_locations(uri: str) -> None:
    with pytest.raises(StorageFileError, match="file "):
        resolve_file_uri(uri)


class _WebHdfs(BaseHTTPRequestHandler):
    """The two-step WebHDFS protocol: the name node redirects CREATE/OPEN to a data node URL."""

    files: dict[str, bytes] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.startswith("/webhdfs/v1/"):
            query = parse_qs(parts.query)
            assert query["op"] == ["CREATE"] and query.get("user.name") == ["fedspark"]
            path = parts.path[len("/webhdfs/v1"):]
            if path in self.files and query.get("overwrite") != ["True"]:
                error = {"RemoteException": {"exception": "FileAlreadyExistsException", "message": f"{path} exists"}}
                return self._reply(403, json.dumps(error).encode(), {"Content-Type": "application/json"})
            host, port = self.server.server_address[:2]
            return self._reply(307, headers={"Location": f"http://{host}:{port}/datanode{path}"})
        length = int(self.headers.get("Content-Length", 0))
        self.files[parts.path[len("/datanode"):]] = self.rfile.read(length)
        self._reply(201)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path[len("/webhdfs/v1"):]
        if path not in self.files:
            error = {"RemoteException": {"exception": "FileNotFoundException", "message": f"File {path} not found"}}
            return self._reply(404, json.dumps(error).encode(), {"Content-Type": "application/json"})
        if parse_qs(parts.query).get("op") == ["GETFILESTATUS"]:
            status = {"FileStatus": {"type": "FILE", "length": len(self.files[path]), "pathSuffix": ""}}
            return self._reply(200, json.dumps(status).encode(), {"Content-Type": "application/json"})
        self._reply(200, self.files[path], {"Content-Type": "application/octet-stream"})


@pytest.fixture
def webhdfs(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("HADOOP_USER_NAME", "fedspark")
    _WebHdfs.files = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebHdfs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"webhdfs://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_webhdfs_round_trip(webhdfs: str) -> None:
    uri = f"{webhdfs}/fl/models/guest/model.json"
    assert write_file(uri, MODEL) == uri
    assert _WebHdfs.files == {"/fl/models/guest/model.json": MODEL}
    assert read_file(uri) == MODEL
    with pytest.raises(StorageFileError, match="exists"):
        write_file(uri, b"v2", overwrite=False)
    with pytest.raises(StorageFileError, match="no such file") as missing:
        read_file(f"{webhdfs}/fl/models/none.json")
    assert missing.value.missing
