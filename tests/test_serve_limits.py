"""No input ties the service up (issue 15): each hostile row that can be checked in a few seconds.

Data layer: a .npy whose header claims a huge shape is refused from its header; a text or
zero-filled file named .npy is "not a .npy file". Service: over-long text is cut and answered,
deep JSON is a 422, a trickled body loses its slot (408), a prediction past its deadline is a 503,
/healthz reports saturation, ids are sanitised, echoed text is cut, dead servers' folders go.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from numpy.lib import format as npy  # noqa: E402

from adtag.cli import main  # noqa: E402
from adtag.data.limits import cap_text  # noqa: E402
from adtag.serve import ServeConfig, TaggingService, create_app  # noqa: E402
from adtag.serve.service import remove_stale_folders  # noqa: E402
from tests.conftest import make_manifest  # noqa: E402
from tests.test_serve import LiveServer, build_video_model, sale_clip  # noqa: E402

ZH = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(100_000))  # no spaces, no repeats nearby


# ---------------------------------------------------------------------------------------- data layer
def _train_err(manifest: Path, tmp_path: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["train", str(manifest), "--out", str(tmp_path / "model"), "--folds", "2", "--quiet"])
    return code, capsys.readouterr().err


def test_npy_header_claiming_a_huge_shape_is_refused_before_loading(tmp_path: Path, capsys) -> None:
    manifest = make_manifest(tmp_path / "data", n=20)
    target = tmp_path / "data" / "f" / "s1.npy"
    with open(target, "wb") as fh:  # 409600 x 1280 float32: 2 GB, sparse on disk
        npy.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (409600, 1280)})
        fh.truncate(409600 * 1280 * 4 + 128)
    t0 = time.monotonic()
    code, err = _train_err(manifest, tmp_path, capsys)
    assert code == 2 and str(target) in err and "409600 rows" in err and "ADTAG_MAX_ROWS" in err
    assert time.monotonic() - t0 < 30


def test_array_caps_are_configurable(tmp_path: Path, capsys, monkeypatch) -> None:
    manifest = make_manifest(tmp_path / "data", n=20)  # sequences of 2-6 rows, 12 columns
    monkeypatch.setenv("ADTAG_MAX_DIM", "8")
    code, err = _train_err(manifest, tmp_path, capsys)
    assert code == 2 and "12 columns" in err and "cap of 8 (ADTAG_MAX_DIM)" in err
    monkeypatch.setenv("ADTAG_MAX_DIM", "lots")
    code, err = _train_err(manifest, tmp_path, capsys)
    assert code == 2 and "$ADTAG_MAX_DIM='lots'" in err


@pytest.mark.parametrize("content", [b"frame,0.1,0.2\n" * 40, b"\0" * 4096], ids=["text", "zeros"])
def test_a_file_named_npy_that_is_not_one(tmp_path: Path, capsys, content: bytes) -> None:
    manifest = make_manifest(tmp_path / "data", n=20)
    target = tmp_path / "data" / "f" / "v3.npy"
    target.write_bytes(content)
    code, err = _train_err(manifest, tmp_path, capsys)
    assert code == 2 and str(target) in err and "not a .npy file" in err and "pickled" not in err


def test_cap_text_keeps_the_first_and_last_halves() -> None:
    assert cap_text("short", 10) == "short"
    capped = cap_text(ZH, 4096)
    assert len(capped) == 4096 and capped.startswith(ZH[:2048]) and capped.endswith(ZH[-2047:])


# ---------------------------------------------------------------------------------------- the service
@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaggingService]:
    _, model_dir = build_video_model(tmp_path_factory.mktemp("video_model"))
    svc = TaggingService(ServeConfig(model_dir, workers=1, queue=1, tmp_dir=tmp_path_factory.mktemp("tmp")))
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def client(service: TaggingService) -> Iterator[TestClient]:
    with TestClient(create_app(service.config, service)) as c:
        yield c


def test_long_text_without_spaces_is_answered_in_bounded_time(client: TestClient) -> None:
    t0 = time.monotonic()
    r = client.post("/v1/tag", json={"id": "long", "text": {"ocr": ZH}})
    assert r.status_code == 200, r.text
    assert time.monotonic() - t0 < 30  # 100k characters took ~4 s per 10k before the cap
    body = r.json()
    assert any("body.text.ocr: 100000 characters" in w for w in body["warnings"])
    echoed = body["text"]["ocr"]  # the 2048 characters kept (first and last 1024), echoed cut to 2000
    assert echoed == (ZH[:1024] + " " + ZH[-1023:])[:2000] + " […48 more characters]"
    assert any("kept the first and last 1024" in w for w in body["warnings"])
    r = client.post("/v1/tag", json={"id": "echo", "text": {"ocr": "SALE " * 409}})
    echoed = r.json()["text"]["ocr"]  # 2045 characters: under the cap, but echoed cut to 2000
    assert r.json()["warnings"] == [] and echoed == ("SALE " * 409)[:2000] + " […45 more characters]"


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deeply_nested_json_is_422(client: TestClient, depth: int) -> None:
    body = '{"features": {"frames": ' + "[" * depth + "]" * depth + "}}"
    r = client.post("/v1/tag", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "nested too deeply" in r.json()["detail"]


def test_ids_are_sanitised(client: TestClient) -> None:
    r = client.post("/v1/tag", json={"id": "ad\x00one\u202e\n", "text": {"ocr": "SALE"}})
    assert r.status_code == 200 and r.json()["id"] == "adone"


def test_upload_filename_with_a_nul_byte(client: TestClient, tmp_path: Path) -> None:
    clip = sale_clip(tmp_path)
    body = (  # by hand: httpx would percent-encode the NUL
        b'--b\r\nContent-Disposition: form-data; name="video"; filename="sale\x00ad.mp4"\r\n\r\n'
        + clip.read_bytes()
        + b"\r\n--b--\r\n"
    )
    r = client.post("/v1/tag", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "salead.mp4"


def test_huge_field_names_are_not_echoed_whole(client: TestClient) -> None:
    r = client.post("/v1/tag", json={"text": {"x" * 1_000_000: "a"}})
    assert r.status_code == 422 and len(r.json()["detail"]) <= 2000


def test_a_prediction_past_its_deadline_is_503_and_health_says_saturated(service: TaggingService) -> None:
    config = ServeConfig(service.config.model_dir, predict_timeout_s=0.5)
    pool = service.predict_pool

    def long_prediction() -> None:  # holds the predictor's one thread for 3 s
        key = pool._started()
        time.sleep(3)
        pool._finished(key)

    with TestClient(create_app(config, service)) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        running = pool.executor.submit(long_prediction)
        t0 = time.monotonic()
        r = c.post("/v1/tag", json={"text": {"ocr": "SALE"}})
        assert r.status_code == 503 and "took longer than 0.5 s" in r.json()["detail"], r.text
        assert "retry-after" in r.headers and time.monotonic() - t0 < 2.5
        health = c.get("/healthz").json()
        assert health["status"] == "saturated" and health["saturated"] == ["predict"]
        assert health["running_s"]["predict"] > 0.5
        running.result()
        assert pool.held == 0  # the queued request was dropped, its slot released
        assert c.post("/v1/tag", json={"text": {"ocr": "SALE"}}).status_code == 200
        assert c.get("/healthz").json()["status"] == "ok"


def test_full_extract_pool_is_saturated(client: TestClient, service: TaggingService) -> None:
    held = [service.extract_pool.reserve() for _ in range(service.extract_pool.capacity)]
    try:
        health = client.get("/healthz").json()
        assert health["status"] == "saturated" and health["saturated"] == ["extract"]
    finally:
        for slot in held:
            slot.__exit__(None, None, None)


def _send_slowly(port: int, head: bytes, drip: bytes, every: float, limit: float) -> tuple[int, float, str]:
    """Send ``head`` then one byte of ``drip`` every ``every`` s until the server answers."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        s.sendall(head)
        s.settimeout(every)
        data = b""
        for byte in drip:
            try:
                data = s.recv(65536)
                if data:
                    break
            except TimeoutError:
                pass
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
        s.settimeout(limit)
        while time.monotonic() - t0 < limit:
            head, _, body = data.partition(b"\r\n\r\n")
            length = [
                int(v) for k, _, v in (x.partition(b":") for x in head.split(b"\r\n")) if k.lower() == b"content-length"
            ]
            if length and len(body) >= length[0]:
                break
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data else 0
    return status, time.monotonic() - t0, data.decode("latin-1")


def test_a_trickled_body_loses_its_slot_and_blocks_no_upload(service: TaggingService, tmp_path: Path) -> None:
    import httpx

    config = ServeConfig(service.config.model_dir, body_grace_s=1.0, min_body_rate=1024)
    clip = sale_clip(tmp_path)
    with LiveServer(create_app(config, service)) as server:
        # More trickling clients than extraction slots (2): they hold only "receive" slots.
        trickle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
        for s in trickle:
            s.sendall(
                b"POST /v1/tag HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 100000\r\n\r\n--b\r\n"
            )
        end = time.monotonic() + 0.9  # (before the 1 s grace runs out) the server picks them up in its own time
        while service.health()["busy"]["receive"] < 4 and time.monotonic() < end:
            time.sleep(0.02)
        assert service.health()["busy"]["receive"] == 4 and service.extract_pool.held == 0
        r = httpx.post(f"{server.url}/v1/tag", files={"video": ("a.mp4", clip.read_bytes(), "video/mp4")}, timeout=60)
        assert r.status_code == 200, r.text
        for s in trickle:
            s.close()
        head = (
            b"POST /v1/tag HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        status, took, text = _send_slowly(server.port, head, b"--b\r\n" + b"x" * 200, 0.3, 20)
        assert status == 408 and "too slow" in text and took < 5
        assert service.extract_pool.held == 0 and list(service.tmp_dir.iterdir()) == []
        head = b"POST /v1/tag HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
        status, took, text = _send_slowly(server.port, head, b'{"id": "' + b"x" * 200, 0.3, 20)
        assert status == 408 and took < 5


def test_private_docs_need_the_token(service: TaggingService) -> None:
    config = ServeConfig(service.config.model_dir, token="s3cret", private_docs=True)
    with TestClient(create_app(config, service)) as c:
        for path in ("/openapi.json", "/docs", "/redoc", "/static/docs/swagger-ui.css"):
            assert c.get(path).status_code == 401, path
            assert c.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200, path
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
    config = ServeConfig(service.config.model_dir, token="s3cret")
    with TestClient(create_app(config, service)) as c:
        assert c.get("/docs").status_code == 200 and "swagger-ui-bundle.js" in c.get("/docs").text
        assert c.get("/openapi.json").json()["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_a_restart_removes_what_a_killed_server_left(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"adtag-serve-{dead.pid}-abc123"
    stale.mkdir()
    (stale / "upload-x.mp4").write_bytes(b"\0" * 1000)
    alive = tmp_path / f"adtag-serve-{os.getppid()}-def456"  # our parent: a live server's folder
    alive.mkdir()
    other = tmp_path / "adtag-serve-notapid"
    other.mkdir()
    assert remove_stale_folders(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and other.exists()


def test_a_queued_request_whose_client_left_never_runs(service: TaggingService) -> None:
    config = ServeConfig(service.config.model_dir)
    app = create_app(config, service)
    view = app.state.service
    ran: list[str] = []
    pool = service.predict_pool

    def long_prediction() -> None:
        key = pool._started()
        time.sleep(3)
        pool._finished(key)

    with LiveServer(app) as server:  # after the start-up warm-up prediction: count the requests'
        view.explain = lambda items, top_k: ran.append(items[0].id) or TaggingService.explain(view, items, top_k)
        blocker = pool.executor.submit(long_prediction)
        body = b'{"id": "left", "text": {"ocr": "SALE"}}'
        head = (
            f"POST /v1/tag HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(head.encode() + body)
            time.sleep(0.5)  # queued behind the long prediction; then the client goes away
        blocker.result()
        deadline = time.monotonic() + 10
        while pool.held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.held == 0 and ran == []  # dropped from the queue, never predicted
        import httpx

        r = httpx.post(f"{server.url}/v1/tag", json={"id": "stayed", "text": {"ocr": "SALE"}}, timeout=30)
        assert r.status_code == 200 and ran == ["stayed"]
