"""The openai_compatible LLM backend against a local HTTP server on 127.0.0.1: answers,
retries with backoff, timeouts, an unreachable endpoint, and the API key kept secret."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from omegaconf import OmegaConf

from recframe.errors import BackendError, ConfigError
from recframe_llm.openai_compatible import OpenAICompatibleBackend

SECRET = "sk-test-SECRET-4242"


class Endpoint:
    """A scripted chat endpoint: ``script`` holds (status, body or None, delay) per call;
    the last entry repeats."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                endpoint.requests.append({"path": self.path, "body": body,
                                          "auth": self.headers.get("Authorization")})
                status, answer, delay = endpoint.script[min(len(endpoint.requests) - 1,
                                                            len(endpoint.script) - 1)]
                time.sleep(delay)
                payload = (answer if isinstance(answer, bytes) else json.dumps(answer).encode())
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def chat(text, prompt_tokens=12, completion_tokens=5):
    return {"choices": [{"message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}}


@pytest.fixture
def endpoint():
    made = []

    def make(*script):
        made.append(Endpoint(script))
        return made[-1]

    yield make
    for e in made:
        e.close()


def backend(url, **kw):
    args = {"base_url": url, "model": "tiny-chat", "api_key_env": "RECFRAME_TEST_KEY",
            "timeout_s": 2, "retries": 2, "backoff_s": 0.01}
    args.update(kw)
    return OpenAICompatibleBackend.from_config(OmegaConf.create(args))


def test_generate_sends_a_chat_request_with_the_key_in_the_header(endpoint, monkeypatch):
    monkeypatch.setenv("RECFRAME_TEST_KEY", SECRET)
    e = endpoint((200, chat("[2] > [1]"), 0))
    g = backend(e.url).generate("system text", "user text", 30)
    assert (g.text, g.tokens_in, g.tokens_out) == ("[2] > [1]", 12, 5)
    (req,) = e.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == f"Bearer {SECRET}"
    assert req["body"]["model"] == "tiny-chat" and req["body"]["max_tokens"] == 30
    assert [m["role"] for m in req["body"]["messages"]] == ["system", "user"]


def test_no_key_no_header(endpoint, monkeypatch):
    monkeypatch.delenv("RECFRAME_TEST_KEY", raising=False)
    e = endpoint((200, chat("[1]"), 0))
    backend(e.url).generate("s", "u", 5)
    assert e.requests[0]["auth"] is None


def test_retries_with_backoff_on_503_then_succeeds(endpoint):
    e = endpoint((503, {"error": "busy"}, 0), (429, {"error": "slow down"}, 0),
                 (200, chat("[1]"), 0))
    started = time.perf_counter()
    assert backend(e.url, backoff_s=0.05).generate("s", "u", 5).text == "[1]"
    assert len(e.requests) == 3 and time.perf_counter() - started >= 0.05 + 0.1


def test_gives_up_after_the_retries(endpoint):
    e = endpoint((503, {"error": "busy"}, 0))
    with pytest.raises(BackendError, match=r"unreachable after 3 attempt\(s\).*HTTP 503"):
        backend(e.url).generate("s", "u", 5)
    assert len(e.requests) == 3


def test_timeout_is_retried_then_reported(endpoint):
    e = endpoint((200, chat("late"), 1.0))
    with pytest.raises(BackendError, match="rerank.timeout_s"):
        backend(e.url, timeout_s=0.2, retries=1).generate("s", "u", 5)
    assert len(e.requests) == 2


def test_unreachable_endpoint_names_the_url():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(BackendError, match=f"rerank.base_url={url} unreachable"):
        backend(url, retries=1).generate("s", "u", 5)


def test_client_errors_fail_at_once_without_the_key(endpoint, monkeypatch):
    monkeypatch.setenv("RECFRAME_TEST_KEY", SECRET)
    e = endpoint((401, {"error": {"message": "invalid api key"}}, 0))
    with pytest.raises(BackendError, match="HTTP 401") as info:
        backend(e.url).generate("s", "u", 5)
    assert len(e.requests) == 1 and SECRET not in str(info.value)


def test_not_an_openai_answer(endpoint):
    e = endpoint((200, b"<html>hello</html>", 0))
    with pytest.raises(BackendError, match="not JSON"):
        backend(e.url).generate("s", "u", 5)
    e2 = endpoint((200, {"result": "ok"}, 0))
    with pytest.raises(BackendError, match=r"choices\[0\].message.content"):
        backend(e2.url).generate("s", "u", 5)


def test_missing_settings_name_the_key():
    with pytest.raises(ConfigError, match="rerank.base_url"):
        backend(None)
    with pytest.raises(ConfigError, match="rerank.model"):
        backend("http://127.0.0.1:1/v1", model=None)


def test_run_through_the_endpoint_keeps_the_key_out_of_results_and_logs(
        endpoint, compose, tmp_path, monkeypatch, caplog):
    """A whole run: garbage answers are counted, the key appears nowhere on disk."""
    from recframe.runner import run_experiment

    monkeypatch.setenv("RECFRAME_TEST_KEY", SECRET)
    e = endpoint((200, chat("[3] > [1] > [2]"), 0), (200, chat("no idea, sorry"), 0),
                 (200, chat("[1] > [2]"), 0))
    cfg = compose("model=pop", "rerank=llm", "rerank.backend=openai_compatible",
                  f"rerank.base_url={e.url}", "rerank.model=tiny-chat",
                  "rerank.api_key_env=RECFRAME_TEST_KEY", "rerank.mode=listwise",
                  "rerank.bootstrap=1", "rerank.max_users=4", "rerank.top_n=5",
                  "rerank.cache=false")
    with caplog.at_level(logging.DEBUG):
        results = run_experiment(cfg, tmp_path / "run")
    record = results["rerank"]
    assert record["prompts"] == record["prompts_sent"] == 4 == len(e.requests)
    assert record["parsed"] == {"full": 0, "partial": 3, "unparsable": 1}
    assert record["tokens_in"] == 48 and record["model"] == "tiny-chat"
    assert all(r["auth"] == f"Bearer {SECRET}" for r in e.requests)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["config"]["rerank"]["api_key_env"] == "RECFRAME_TEST_KEY"


def test_pointwise_is_refused_with_the_fix(endpoint, compose, tmp_path):
    from recframe.runner import run_experiment

    e = endpoint((200, chat("[1]"), 0))
    cfg = compose("model=pop", "rerank=llm", "rerank.backend=openai_compatible",
                  f"rerank.base_url={e.url}", "rerank.model=m", "rerank.mode=pointwise",
                  "rerank.max_users=2")
    with pytest.raises(ConfigError, match="does not support rerank.mode='pointwise'"):
        run_experiment(cfg, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["status"] == "failed" and "metrics" not in saved  # refused before training
    assert not e.requests  # and before any request
