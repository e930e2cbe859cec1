#!/usr/bin/env python3
"""Mint an HS256 demo token for examples/quickstart.yaml (standard library only).

    python3 examples/make-demo-jwt.py alice admin        # sub=alice, roles=[admin]
    python3 examples/make-demo-jwt.py bob user --ttl 60  # expires in 60 seconds

The secret, issuer and audience are the quick start's demo values.
"""
import argparse, base64, hashlib, hmac, json, time

SECRET = b"weir-quickstart-demo-secret-0123456789"

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("sub")
parser.add_argument("roles", nargs="*")
parser.add_argument("--ttl", type=int, default=86400, help="seconds until exp (default 1 day)")
parser.add_argument("--aud", default="weir-demo")
args = parser.parse_args()

header = {"alg": "HS256", "typ": "JWT", "kid": "demo"}
claims = {"iss": "weir-quickstart", "aud": args.aud, "sub": args.sub,
          "roles": args.roles, "exp": int(time.time()) + args.ttl}
signing_input = ".".join(b64(json.dumps(p, separators=(",", ":")).encode()) for p in (header, claims))
signature = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
print(f"{signing_input}.{b64(signature)}")
