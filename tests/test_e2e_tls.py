"""A real `reelgate serve` behind a TLS-terminating reverse proxy (issue 8, fidelity 6).

The proxy is an outside component, so the test runs a small one of its own on loopback: it
terminates TLS with a certificate made here by the ``openssl`` CLI (a throwaway CA), adds
``X-Forwarded-Proto``/``-Host``/``-For`` and relays to the server, which trusts 127.0.0.1 by
default. A client that only speaks https creates a task through the proxy, follows the https
link of the result and downloads the MP4; the callback carries https links too.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reelgate.callbacks.receiver import Receiver

from .helpers import assert_ok
from .server import running_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for IP 127.0.0.1 signed by it: (ca, cert, key)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA",
        "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr",
    )  # fmt: skip
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "server.pem",
    )  # fmt: skip
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


class TlsProxy:
    """TLS in front, plain HTTP/1.1 behind; one request per connection (it asks for close)."""

    def __init__(self, backend_port: int, cert: Path, key: Path) -> None:
        self.backend_port = backend_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> TlsProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._handlers.add(me)  # type: ignore[arg-type]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
            kept = [
                line
                for line in lines
                if line.split(":", 1)[0].strip().lower()
                not in ("connection", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-for")
            ]
            host = next(line.split(":", 1)[1].strip() for line in lines if ":" in line
                        and line.split(":", 1)[0].lower() == "host")  # fmt: skip
            peer = writer.get_extra_info("peername")[0]
            kept += [
                "X-Forwarded-Proto: https",
                f"X-Forwarded-Host: {host}",
                f"X-Forwarded-For: {peer}",
                "Connection: close",
            ]
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
            up_writer.write("\r\n".join([request_line, *kept, "", ""]).encode("latin-1"))

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()

            to_backend = asyncio.create_task(pipe(reader, up_writer))
            await pipe(up_reader, writer)  # the backend closes after its answer
            to_backend.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await to_backend
            up_writer.close()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError, StopIteration):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
            self._handlers.discard(me)  # type: ignore[arg-type]


class RefusePlainHttp(httpx.AsyncBaseTransport):
    """Mounted for http://: a strict client never sends anything in clear text."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.UnsupportedProtocol(f"refusing a plain-http request to {request.url}")


@contextlib.asynccontextmanager
async def https_only_client(
    ca: Path, base_url: str, api_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=str(ca))
    async with httpx.AsyncClient(
        base_url=base_url,
        verify=context,
        mounts={"http://": RefusePlainHttp()},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    ) as client:
        yield client


async def test_https_only_client_downloads_through_a_tls_proxy(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    async with Receiver() as rx:
        with running_server(tmp_path / "data") as server:
            backend_port = int(server.base_url.rsplit(":", 1)[1])
            async with TlsProxy(backend_port, cert, key) as proxy:
                front = f"https://127.0.0.1:{proxy.port}"
                api_key = server.credentials()["api_key"]
                async with https_only_client(ca, front, api_key) as client:
                    created = assert_ok(
                        await client.post(
                            "/v1/videos/text2video",
                            json={"prompt": "a harbour at night", "callback_url": rx.url()},
                        )
                    )
                    task_id = created["task_id"]
                    async with asyncio.timeout(120):
                        while True:
                            task = assert_ok(await client.get(f"/v1/videos/text2video/{task_id}"))
                            if task["task_status"] in ("succeed", "failed"):
                                break
                            await asyncio.sleep(0.2)
                    assert task["task_status"] == "succeed", task
                    (video,) = task["task_result"]["videos"]
                    assert video["url"].startswith(f"{front}/files/"), video["url"]
                    # An absolute https link: the client follows it as given.
                    mp4 = await client.get(video["url"])
                    assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp"
                    with pytest.raises(httpx.UnsupportedProtocol):  # the client is strict
                        await client.get(server.base_url + "/healthz")

                    async with asyncio.timeout(60):
                        await rx.wait_for_count(3)
                    final = rx.requests[-1].payload
                    assert final["task_status"] == "succeed"
                    (called,) = final["task_result"]["videos"]
                    assert called["url"].startswith(f"{front}/files/"), called["url"]
                    again = await client.get(called["url"])
                    assert again.status_code == 200 and again.content == mp4.content
