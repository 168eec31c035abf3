"""``adtag serve``: the API on a model trained on extracted video features, bad input, load, fuzzing.

One small video model is built once per session (8 one-second clips, extracted and trained with 2
folds, ~15 s); the in-process tests share one loaded service, and the ones that need real sockets
run uvicorn on a loopback port picked by the OS, stopped by the test itself.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from adtag.data.manifest import Item, read_items  # noqa: E402
from adtag.serve import ServeConfig, TaggingService, create_app  # noqa: E402
from tests.clips import make_clip, truncate  # noqa: E402

WORDS = ["SALE", "GAME", "FOOD", "CAR"]
_BUILT: dict[str, tuple[Path, Path]] = {}


ZH_TAGS = {"sale": "促销/打折", "game": "游戏/手游", "food": "美食/餐饮", "car": "汽车/出行"}


def build_video_model(root: Path, chinese: bool = False) -> tuple[Path, Path]:
    """(manifest of extracted features, model_dir), built once per test session.

    ``chinese``: the same clips and features, trained with Chinese tag names (the page's font test)."""
    key = "model-zh" if chinese else "model"
    if key in _BUILT:
        return _BUILT[key]
    from adtag.models.tagger import Tagger, TrainConfig

    if "features" not in _BUILT:
        from adtag.features.extract import extract_to_dir

        clips = root / "clips"
        clips.mkdir(parents=True, exist_ok=True)
        items = []
        for i in range(8):
            word = WORDS[i % 4]
            path = make_clip(clips / f"c{i}.mp4", seconds=1.0, width=160, height=120, fps=4, captions=[(0, 1, word)])
            items.append(Item(id=f"c{i}", tags=[word.lower()], video=path))
        manifest, failures = extract_to_dir(items, root / "features", workers=1, threads=1, progress=False)
        assert manifest is not None and not failures
        _BUILT["features"] = (manifest, manifest)
    manifest = _BUILT["features"][0]
    from adtag.features.store import manifest_encoders

    items = read_items(manifest)
    if chinese:
        for it in items:
            it.tags = [ZH_TAGS[t] for t in it.tags or []]
    tagger = Tagger(TrainConfig(folds=2, encoders=manifest_encoders(manifest)))
    tagger.fit(items, progress=False, log=lambda *a, **k: None)
    tagger.save(root / key)
    _BUILT[key] = (manifest, root / key)
    return _BUILT[key]


def sale_clip(folder: Path) -> Path:
    """A SALE clip drawn like the training ones (8 clips are too few to generalise to other looks)."""
    return make_clip(folder / "sale ad.mp4", seconds=1.0, width=160, height=120, fps=4, captions=[(0, 1, "SALE")])


class LiveServer:
    """uvicorn on 127.0.0.1 with an OS-chosen port, in a thread of this process."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            assert self.thread.is_alive(), "server thread died"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def raw_request(port: int, head: str, body: bytes = b"", timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send a request by hand (to control exactly how much body goes out); parse the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode("latin-1") + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        header, _, rest = data.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        want = int(headers.get("content-length", 0))
        while len(rest) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(lines[0].split()[1]), headers, rest


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def video_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_video_model(tmp_path_factory.mktemp("video_model"))


@pytest.fixture(scope="module")
def serve_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve_tmp")


@pytest.fixture(scope="module")
def service(video_model: tuple[Path, Path], serve_tmp: Path) -> Iterator[TaggingService]:
    svc = TaggingService(ServeConfig(video_model[1], workers=1, queue=1, tmp_dir=serve_tmp))
    yield svc
    svc.close()
    assert not svc.tmp_dir.exists()


@pytest.fixture(scope="module")
def client(service: TaggingService) -> Iterator[TestClient]:
    with TestClient(create_app(service.config, service)) as c:
        yield c


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sale_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def uploaded(client: TestClient, clip: Path) -> dict:
    r = client.post(
        "/v1/tag",
        files={"video": (clip.name, clip.read_bytes(), "video/mp4")},
        data={"top_k": "3", "thumbnails": "true"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def as_json(item: Item) -> dict:
    feats = {k: np.load(v).tolist() for k, v in item.features.items()}
    return {"id": item.id, "text": item.text, "features": feats, "extra": item.extra}


# ---------------------------------------------------------------------------------------- behaviour
def test_health_and_model(client: TestClient, service: TaggingService) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model_tags"] == 4 and health["saturated"] == []
    assert health["busy"] == {"receive": 0, "extract": 0, "predict": 0}
    assert health["capacity"] == {"receive": 16, "extract": 2, "predict": 65}
    m = client.get("/v1/model").json()
    assert m["tags"] == ["car", "food", "game", "sale"]
    assert m["video_uploads"] is True and set(m["encoders"]) == {"visual", "audio", "asr", "ocr", "text"}
    assert {"mean_oof_gap", "n_items"} <= set(m["metrics"])
    assert {x["name"] for x in m["modalities"]} == {"ocr", "frames", "audio", "ocr_emb", "extra"}
    spec = client.get("/openapi.json").json()
    assert {"/v1/tag", "/v1/tag/batch", "/v1/model", "/healthz"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_upload_answers_tags_text_timings_and_thumbnails(uploaded: dict, service: TaggingService) -> None:
    assert uploaded["id"] == "sale ad.mp4"
    assert uploaded["text"]["ocr"] == "SALE"
    tags = uploaded["tags"]
    assert len(tags) == 3 and tags[0]["tag"] == "sale"
    assert [t["score"] for t in tags] == sorted((t["score"] for t in tags), reverse=True)
    for t in tags:
        assert set(t["branches"]) >= {"ocr/lr", "frames/lr", "joint/lr"}
        assert math.isclose(sum(b["share"] for b in t["branches"].values()), 1.0, rel_tol=1e-4)
    assert {"upload", "queue", "probe", "decode", "visual", "ocr", "audio", "predict", "total"} <= set(
        uploaded["timings"]
    )
    assert len(uploaded["thumbnails"]) == 6 and all(
        u.startswith("data:image/jpeg;base64,") for u in uploaded["thumbnails"]
    )
    assert list(service.tmp_dir.iterdir()) == []  # the upload was deleted after use


def test_cli_tag_and_the_upload_route_give_one_answer(uploaded: dict, clip: Path, video_model, capsys) -> None:
    from adtag.cli import main

    capsys.readouterr()
    assert main(["tag", str(video_model[1]), str(clip), "--top-k", "3", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert [t["tag"] for t in cli["tags"]] == [t["tag"] for t in uploaded["tags"]]
    assert [t["score"] for t in cli["tags"]] == pytest.approx([t["score"] for t in uploaded["tags"]], abs=1e-5)
    assert cli["text"] == uploaded["text"] and cli["modalities"] == uploaded["modalities"]
    assert cli["warnings"] == uploaded["warnings"] and cli["video"] == str(clip)
    assert main(["tag", str(video_model[1]), str(clip), "--language", "klingon"]) == 2
    assert "unknown speech language 'klingon'" in capsys.readouterr().err


def test_json_modalities_score_like_the_library(client: TestClient, service: TaggingService, video_model) -> None:
    items = read_items(video_model[0])[:3]
    expected = service.tagger.predict_proba(items)
    single = client.post("/v1/tag", json={**as_json(items[0]), "top_k": 4}).json()
    got = {t["tag"]: t["score"] for t in single["tags"]}
    assert got == pytest.approx(dict(zip(service.tagger.vocab_.tags, expected[0].tolist(), strict=True)), abs=1e-5)
    assert single["text"] == items[0].text and {"queue", "predict", "total"} <= set(single["timings"])

    batch = client.post("/v1/tag/batch", json={"items": [{**as_json(it), "top_k": 1} for it in items]}).json()
    assert [r["id"] for r in batch["results"]] == ["c0", "c1", "c2"]
    for r, want in zip(batch["results"], expected, strict=True):
        assert len(r["tags"]) == 1
        assert r["tags"][0]["score"] == pytest.approx(float(want.max()), abs=1e-5)


def test_json_missing_modalities_still_answers(client: TestClient) -> None:
    r = client.post("/v1/tag", json={"text": {"ocr": "CAR"}})
    assert r.status_code == 200 and r.json()["id"] == "item"
    assert set(r.json()["tags"][0]["branches"]) <= {"ocr/lr", "ocr/svm", "joint/lr"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "x", "bogus": 1}, "body.bogus"),
        ({"features": {"frames": [[0.0] * 5]}}, "body.features.frames: expected shape (T, 1280)"),
        ({"features": {"ocr_emb": [[0.0] * 384]}}, "body.features.ocr_emb: expected shape (384,)"),
        ({"features": {"frames": [[0.0] * 1280, [0.0] * 3]}}, "body.features.frames"),
        ({"features": {"video": [0.0]}}, "body.features.video: unknown feature modality"),
        ({"text": {"asr": "hello"}}, "body.text.asr: unknown text modality"),
        ({"extra": {"colour": 1}}, "body.extra.colour: unknown extra"),
        ({"text": {"ocr": 3}}, "body.text.ocr"),
        ({"top_k": 0}, "body.top_k"),
        ({"id": ""}, "body.id"),
        ([1, 2], "body"),
    ],
)
def test_bad_json_is_422_naming_the_field(client: TestClient, body, field: str) -> None:
    r = client.post("/v1/tag", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]


def test_bad_json_bodies(client: TestClient) -> None:
    nan = '{"features": {"ocr_emb": [NaN' + ", 0.0" * 383 + "]}}"
    r = client.post("/v1/tag", content=nan, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "NaN" in r.json()["detail"] and "ocr_emb" in r.json()["detail"]
    r = client.post("/v1/tag", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    r = client.post("/v1/tag/batch", json={"items": []})
    assert r.status_code == 422 and "body.items" in r.json()["detail"]
    r = client.post("/v1/tag/batch", json={"items": [{"id": "ok"}, {"features": {"audio": [1.0]}}]})
    assert r.status_code == 422 and r.json()["detail"].startswith("body.items.1.features.audio")
    r = client.post("/v1/tag", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_bad_uploads_are_422_with_the_reason(client: TestClient, clip: Path, tmp_path: Path, service) -> None:
    good = clip.read_bytes()
    cases = {
        "empty.mp4": (b"", "empty"),
        "notes.mp4": (b"not a video at all\n" * 20, "not a readable video"),
        "cut.mp4": (truncate(clip, tmp_path / "cut.mp4", 0.4).read_bytes(), "video:"),
    }
    for name, (data, reason) in cases.items():
        r = client.post("/v1/tag", files={"video": (name, data, "video/mp4")})
        assert r.status_code == 422, (name, r.text)
        assert reason in r.json()["detail"] and str(service.tmp_dir) not in r.json()["detail"]
    r = client.post("/v1/tag", files={"clip": ("a.mp4", good, "video/mp4")})
    assert r.status_code == 422 and "clip: unknown form field" in r.json()["detail"]
    r = client.post("/v1/tag", data={"top_k": "3"}, files={"other": ("", b"", "text/plain")})
    assert r.status_code == 422
    r = client.post("/v1/tag", files={"video": ("a.mp4", good, "video/mp4")}, data={"top_k": "many"})
    assert r.status_code == 422 and r.json()["detail"].startswith("top_k")
    r = client.post("/v1/tag", files={"video": ("a.mp4", good, "video/mp4")}, data={"language": "klingon"})
    assert r.status_code == 422 and r.json()["detail"].startswith("language: ")
    r = client.post("/v1/tag", files={"video": ("../../etc/passwd", good, "video/mp4")})
    assert r.status_code == 200 and r.json()["id"] == "passwd"
    assert list(service.tmp_dir.iterdir()) == []
    assert client.get("/healthz").json()["busy"] == {"receive": 0, "extract": 0, "predict": 0}


def test_full_pool_answers_503_with_retry_after(client: TestClient, service: TaggingService, clip: Path) -> None:
    held = [service.extract_pool.reserve() for _ in range(service.extract_pool.capacity)]
    try:
        r = client.post("/v1/tag", files={"video": (clip.name, clip.read_bytes(), "video/mp4")})
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert "extract pool is full" in r.json()["detail"]
        assert client.post("/v1/tag", json={"text": {"ocr": "SALE"}}).status_code == 200  # JSON has its own pool
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    assert client.post("/v1/tag", files={"video": (clip.name, clip.read_bytes(), "video/mp4")}).status_code == 200


# ---------------------------------------------------------------------------------------- real sockets
@pytest.fixture(scope="module")
def guarded(service: TaggingService) -> Iterator[LiveServer]:
    config = ServeConfig(service.config.model_dir, max_upload=1_000_000, token="s3cret")
    with LiveServer(create_app(config, service)) as server:
        yield server


def test_oversize_upload_is_413_before_the_body_is_read(guarded: LiveServer) -> None:
    auth = "Authorization: Bearer s3cret\r\n"
    head = (
        f"POST /v1/tag HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 500000000\r\n\r\n"
    )
    t0 = time.monotonic()
    status, _, body = raw_request(guarded.port, head, b"--b\r\n")  # 5 bytes of a declared 500 MB
    assert status == 413 and "over the limit of 1000000 bytes" in json.loads(body)["detail"]
    assert time.monotonic() - t0 < 5
    # No Content-Length (chunked): refused once the stream passes the limit.
    parts = [
        b'--b\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n',
        b"x" * 600_000,
        b"x" * 600_000,
    ]
    chunked = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in parts) + b"0\r\n\r\n"
    head = (
        f"POST /v1/tag HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: multipart/form-data; boundary=b\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    status, _, body = raw_request(guarded.port, head, chunked)
    assert status == 413 and "over the limit" in json.loads(body)["detail"]


def test_token_is_required_except_for_health(guarded: LiveServer) -> None:
    import httpx

    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/").status_code == 200
        r = http.get("/v1/model")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "missing" in r.json()["detail"]
        r = http.get("/v1/model", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and "wrong" in r.json()["detail"]
        r = http.post("/v1/tag", json={"text": {"ocr": "SALE"}}, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200
        assert http.post("/v1/tag/batch", json={"items": [{}]}).status_code == 401
    head = "POST /v1/tag HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 90000000\r\n\r\n"
    assert raw_request(guarded.port, head, b"{")[0] == 401  # refused without reading the body


def start_cli(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """``adtag serve`` in a child process on a free loopback port, once it answers /healthz.

    A port found free can be taken by another process before the server binds it (a busy shared
    machine); then the server exits with "address already in use" and another port is tried.
    """
    import httpx

    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "adtag.cli", "serve", *args, "--port", str(port), "--log-level", "warning"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).raise_for_status()
                return proc, port
            except httpx.TransportError:
                time.sleep(0.2)
        proc.kill()
        out = proc.communicate(timeout=30)[0].decode(errors="replace")
        if "address already in use" not in out:
            raise AssertionError(f"adtag serve did not come up: {out[-2000:]}")
    raise AssertionError("no free port for adtag serve after 3 tries")


def test_cli_serves_on_loopback_with_a_token_from_the_environment(video_model, tmp_path: Path) -> None:
    import httpx

    env = {**os.environ, "ADTAG_SERVE_TOKEN": "t0k", "ADTAG_THREADS": "1"}
    proc, port = start_cli([str(video_model[1]), "--tmp-dir", str(tmp_path)], env)
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/v1/model").status_code == 401
        ok = httpx.get(f"{url}/v1/model", headers={"Authorization": "Bearer t0k"})
        assert ok.status_code == 200 and ok.json()["tags"] == ["car", "food", "game", "sale"]
        [folder] = list(tmp_path.iterdir())  # the service's own temporary folder, under --tmp-dir
        assert folder.name.startswith("adtag-serve-")
    finally:
        proc.terminate()
        proc.wait(30)
    # uvicorn re-raises SIGTERM after a graceful shutdown; the lifespan has run by then.
    assert proc.returncode == -15
    assert list(tmp_path.iterdir()) == []  # removed on shutdown


# ---------------------------------------------------------------------------------------- fuzzing
def test_openapi_spec_holds_under_generated_requests(service: TaggingService) -> None:
    """Schemathesis draws requests from the spec: no 5xx, documented status codes and bodies."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    app = create_app(service.config, service)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for op_result in schema.get_all_operations():
        operation = op_result.ok()

        @settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case) -> None:
            # Schema-valid is not always acceptable: random bytes are no video, and array widths and
            # modality names belong to the loaded model, not the spec; those get a 422 naming the field.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()


def test_tag_command_takes_external_scores(video_model, clip: Path, tmp_path: Path, capsys) -> None:
    """adtag tag --scores NAME=PRED.json: the external model's branch appears in the explanation."""
    from adtag.cli import main
    from adtag.features.store import manifest_encoders
    from adtag.models.tagger import Tagger, TrainConfig

    manifest = video_model[0]
    items = read_items(manifest)
    tags = sorted({t for it in items for t in it.tags or []})
    for it in items:  # an honest-looking external model: right tag high, the rest low
        it.scores = {"ext": np.array([0.7 if t in (it.tags or []) else 0.2 for t in tags], dtype=np.float32)}
    tagger = Tagger(TrainConfig(folds=2, encoders=manifest_encoders(manifest)))
    tagger.fit(items, progress=False, log=lambda *a, **k: None)
    tagger.save(tmp_path / "model")
    sub = tmp_path / "ext.json"
    sub_sale = {t: (0.9 if t == "sale" else 0.05) for t in tags}
    sub.write_text(
        json.dumps({f"{clip.stem}.mp4": {"result": [{"labels": list(sub_sale), "scores": list(sub_sale.values())}]}})
    )
    assert main(["tag", str(tmp_path / "model"), str(clip), "--scores", f"ext={sub}", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    top = res["tags"][0]
    assert top["tag"] == "sale"
    assert top["branches"]["ext/scores"]["probability"] == pytest.approx(0.9, abs=1e-4)
    # A score file that does not name this video is an error naming the file.
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"nope.mp4": {"result": [{"labels": tags, "scores": [0.5] * len(tags)}]}}))
    assert main(["tag", str(tmp_path / "model"), str(clip), "--scores", f"ext={other}"]) == 2
    assert "other.json" in capsys.readouterr().err
