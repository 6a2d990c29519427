#!/usr/bin/env python3
"""Writes the seed corpus (seeds/<target>/) from the shared test vectors and
the examples in keygate's own tests. Run from fuzz/ with the vectors'
directory as argument; the output is committed, the vectors are not needed
to fuzz."""
import base64, binascii, hashlib, json, os, sys, zlib

VECTORS = sys.argv[1] if len(sys.argv) > 1 else "../../shared/vectors"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def put(target, name, data):
    d = os.path.join("seeds", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jws():
    rfc = json.load(open(os.path.join(VECTORS, "rfc_vectors.json")))
    for name, case in rfc.items():
        put("jws", "rfc-" + name, b"\x00" + case["token"].encode())
    wp = json.load(open(os.path.join(VECTORS, "json_web_signature_test.json")))
    tests = [t for g in wp["testGroups"] for t in g["tests"] if isinstance(t.get("jws"), str)]
    for t in tests[::20]:
        put("jws", "wycheproof-%d" % t["tcId"], b"\x00" + t["jws"].encode())
    claims = {"iss": "https://keygate.test", "aud": "api", "sub": "u1", "exp": 1893459600,
              "iat": 1893456000, "roles": ["admin"], "tenant": "t1"}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    for mode, header in [(1, {"alg": "HS256", "kid": "hs", "typ": "at+jwt"}),
                         (1, {"alg": "HS256", "crit": ["b64"], "b64": False}),
                         (3, {"alg": "EdDSA", "kid": "ed"}),
                         (3, {"alg": "EdDSA"})]:
        h = json.dumps(header, separators=(",", ":")).encode()
        put("jws", "signed-%s-%d" % (header["alg"], len(h)), bytes([mode]) + h + b"\x00" + payload)


def jwk():
    rfc = json.load(open(os.path.join(VECTORS, "rfc_vectors.json")))
    keys = []
    for name, case in rfc.items():
        key = case.get("jwk") or case.get("jwk_public")
        if key:
            keys.append(key)
            put("jwk", "rfc-" + name, json.dumps(key))
    put("jwk", "rfc-set", json.dumps({"keys": keys}))
    wp = json.load(open(os.path.join(VECTORS, "json_web_key_test.json")))
    for g in wp["testGroups"]:
        for t in g["tests"]:
            for field in ("jwk", "jwks", "public", "private"):
                if field in t:
                    put("jwk", "wycheproof-%d-%s" % (t["tcId"], field), json.dumps(t[field]))
        for field in ("public", "private"):
            if isinstance(g.get(field), dict):
                put("jwk", "wycheproof-group-%s-%s" % (g["tests"][0]["tcId"], field), json.dumps(g[field]))
    # Shaped like the large identity providers' sets: RSA without `alg`, with x5c/x5t/use.
    rsa = rfc["RFC7515_A2_RS256"]["jwk_public"]
    if isinstance(rsa, str):
        rsa = json.loads(rsa.replace("'", '"'))
    put("jwk", "provider-rsa-no-alg", json.dumps({"keys": [
        {"kty": "RSA", "use": "sig", "kid": "k1", "n": rsa["n"], "e": rsa["e"],
         "x5t": "abc", "x5c": ["MIIC"]},
        {"kty": "RSA", "alg": "RS256", "kid": "k2", "n": rsa["n"], "e": rsa["e"]}]}))


def check_digits(head):
    crc = zlib.crc32(head.encode())
    out = ""
    for _ in range(6):
        out = ALPHABET[crc % 62] + out
        crc //= 62
    return out


def apikey():
    for env, secret in [("live", "0" * 43), ("test", "Zz9" * 14 + "a"), ("live", ALPHABET[:43])]:
        head = "kg_%s_%s" % (env, secret)
        put("apikey", "key-%s-%s" % (env, secret[:3]), head + check_digits(head))
    put("apikey", "id", "key_" + ALPHABET[10:26])
    put("apikey", "bytes", bytes(range(0, 64)))


RFC9421_INPUT = ('sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
                 ';created=1618884473;keyid="test-key-ed25519"')
RFC9421_SIG = ("sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:")


def httpsig():
    put("httpsig", "rfc9421-b26", RFC9421_INPUT + "\n" + RFC9421_SIG)
    put("httpsig", "keygate-hmac",
        'sig1=("@method" "@authority" "@path" "@query" "content-type" "content-digest" "x-two")'
        ';created=1700000000;nonce="n-1";keyid="key_0123456789ABCDEF";alg="hmac-sha256"\n'
        "sig1=:" + base64.b64encode(b"\x01" * 32).decode() + ":")
    put("httpsig", "two-and-params",
        'a=("@target-uri" "@request-target";req);expires=1, b=();tag="x";flag\n'
        "a=:AAAA:, b=:/w==:;p=?0")
    put("httpsig", "items", 'd=?1, i=-42;x=tok/en, s="q\\"uote", t=*tok, b=:YWJj:\n')


def content_digest():
    body = b'{"hello": "world"}'
    put("content_digest", "sha256",
        "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":\n" + body.decode())
    put("content_digest", "sha512-and-unknown",
        "sha-512=:" + base64.b64encode(hashlib.sha512(body).digest()).decode() + ":, md5=:AA==:\n" + body.decode())
    put("content_digest", "empty", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:\n")


def gateway_config():
    put("gateway_config", "full-route", '''[gateway]
listen = "127.0.0.1:0"
timeout_seconds = 10
body_limit_bytes = 1024
[[gateway.routes]]
name = "orders"
match = { path_prefix = "/orders/", methods = ["get", "POST"], host = "API.example" }
upstream = "http://127.0.0.1:9001/base/"
auth = "api_key_and_jwt"
scopes = ["orders:read"]
roles = ["customer"]
rate_limit = { limit = 100, period_seconds = 60, burst = 10 }
forward_token = "internal"
strip_prefix = true
[[gateway.routes]]
name = "open"
match = { path_prefix = "/" }
upstream = "http://[::1]:80"
auth = "none"
''')
    put("gateway_config", "hmac-and-errors", '''[gateway]
[[gateway.routes]]
name = "signed"
match = { path_prefix = "/s" }
upstream = "http://h:1"
auth = "hmac"
[[gateway.routes]]
name = "signed"
match = { path_prefix = "" }
upstream = "ftp://x"
auth = "magic"
''')
    put("gateway_config", "no-gateway", 'listen = "127.0.0.1:8080"\n')


jws(); jwk(); apikey(); httpsig(); content_digest(); gateway_config()
