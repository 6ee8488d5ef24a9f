"""A real OpenID Connect issuer for tests: discovery document and JWKS over HTTP on
127.0.0.1, keys made by the test (RSA and EC), rotation and withdrawal of keys."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class Issuer:
    """An issuer at ``self.url``; ``token(...)`` signs with the current key."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, Any]] = {}  # kid -> (alg, private key)
        self.current = ""
        self.jwks_hits = 0
        self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks",
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
                elif self.path == "/jwks":
                    issuer.jwks_hits += 1
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rotate(self, alg: str = "RS256") -> str:
        """A new signing key becomes current (the old ones stay published); its kid."""
        kid = uuid.uuid4().hex[:8]
        key = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
               if alg.startswith(("RS", "PS")) else ec.generate_private_key(ec.SECP256R1()))
        self.keys[kid] = (alg, key)
        self.current = kid
        return kid

    def withdraw(self, kid: str) -> None:
        """Stop publishing ``kid``."""
        self.keys.pop(kid)

    def public_pem(self, kid: str | None = None) -> bytes:
        _, key = self.keys[kid or self.current]
        return key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, (alg, key) in self.keys.items():
            algo = jwt.algorithms.RSAAlgorithm if alg.startswith(("RS", "PS")) else \
                jwt.algorithms.ECAlgorithm
            d = json.loads(algo.to_jwk(key.public_key()))
            d.update({"kid": kid, "alg": alg, "use": "sig"})
            out.append(d)
        return {"keys": out}

    def token(self, email: str, audience: str = "dvidpy", groups: list[str] | None = None,
              ttl: float = 300, kid: str | None = None, **claims: Any) -> str:
        """A signed token for ``email``; keyword arguments override or add claims."""
        kid = kid or self.current
        alg, key = self.keys[kid]
        now = int(time.time())
        body = {"iss": self.url, "aud": audience, "sub": email, "email": email,
                "iat": now, "exp": now + int(ttl), "groups": groups or []}
        body.update(claims)
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
