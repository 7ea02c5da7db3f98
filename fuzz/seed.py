#!/usr/bin/env python3
"""Seeds the fuzz corpora from the Wycheproof JWS vectors in tests/vectors/."""
import json, os, pathlib

root = pathlib.Path(__file__).resolve().parent
vectors = root.parent / "tests/vectors/wycheproof/json_web_signature_test.json"
jws = [t["jws"] for g in json.load(open(vectors))["testGroups"] for t in g["tests"] if isinstance(t.get("jws"), str)]
for target, make in {
    "validate": lambda t: t.encode(),
    "authorization_header": lambda t: f"Bearer {t}\naccess={t}".encode(),
    "refresh_body": lambda t: b"\x02" + json.dumps({"refresh": t, "token": t}).encode(),
}.items():
    d = root / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    for i, t in enumerate(jws):
        (d / f"wycheproof-{i:03}").write_bytes(make(t))
    print(f"{target}: {len(jws)} seeds")
