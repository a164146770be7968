#!/usr/bin/env python3
"""Split a server's CPU profile by stage of the token path.

Usage:
    perf record -p SERVER_PID -F 999 -o server.data -- sleep 5   # while a scenario runs
    python3 profile_stages.py server.data [SERVER_MS_PER_REQUEST]

It reads `perf report` (flat, by thread name, library and symbol), puts each
sample in a stage by its thread and symbol, and prints each stage's share of
the server's samples; given the server's CPU per request as the scenario
printed it (`ms/req`), it also prints each stage's microseconds per request.
The SQLite writer thread (`portcullis-writ`) is its own stage: the group
commit's statements and fsync calls. So is the presigning thread
(`portcullis-pres`: ES256 and EdDSA nonce halves made ahead), which counts as
signing. Everything else runs on the async workers (`tokio-rt-worker`) and is
told apart by symbol. SHA-512 counts as signing: on the workers only Ed25519
signatures use it (secrets are keyed with HMAC-SHA-256). The last lines add up
signing (both signing stages) and everything outside it.
"""

import re
import subprocess
import sys

# (stage, pattern on "library symbol"), first match wins.
STAGES = [
    ("signing (ECDSA/EdDSA/RSA)", r"extract_multiplier|rsaz|ecp_nistz256|ecdsa|p256|bignum|Lbignum|bn_|ec_GFp|ed25519|edwards25519|x25519|curve25519|fiat_|rsa|RSA|ec_point|ec_scalar|EC_|ECDSA|presign|sha512|SHA512"),
    ("hashing (HMAC, SHA-256)", r"sha256|sha2::|hmac|HMAC|SHA256|sha1"),
    ("randomness", r"rdrand|CTR_DRBG|ctr_drbg|rand_bytes|RAND_bytes|aes_hw|getrandom|rand_core|rand::"),
    ("SQLite reads on the workers", r"sqlite3|pcache|btree|vdbe|Vdbe|wal[A-Z]|rusqlite|walFind"),
    ("JSON, base64, formatting", r"serde|base64|itoa|ryu|core::fmt|alloc::fmt|format_escaped|jsonwebtoken"),
    ("HTTP (hyper, axum, parsing)", r"hyper|axum|http::|httparse|tower|matchit|bytes::|form_urlencoded|percent_encoding|headers"),
    ("async runtime and locks", r"tokio|futures|mio|parking_lot|pthread|futex|Mutex|std::sync|Condvar|crossbeam|__GI___pthread"),
    ("allocator and memory copies", r"\bmi_|_mi_|malloc|free\b|cfree|memmove|memcpy|memset|memcmp|realloc|mimalloc"),
]


SIGNING_AHEAD = "signing ahead (presigning thread)"
SIGNING = ("signing (ECDSA/EdDSA/RSA)", SIGNING_AHEAD)


def classify(comm, dso, sym):
    if comm.startswith("portcullis-writ"):
        return "SQLite writer thread (group commit, fsync)"
    if comm.startswith("portcullis-pres"):
        return SIGNING_AHEAD
    if "[kernel" in dso or sym.startswith("[k]"):
        return "kernel (sockets, syscalls, scheduling)"
    text = f"{dso} {sym}"
    for stage, pattern in STAGES:
        if re.search(pattern, text):
            return stage
    return "other (portcullis and the rest)"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    data = sys.argv[1]
    ms_per_request = float(sys.argv[2]) if len(sys.argv) > 2 else None
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "comm,dso,sym",
         "-g", "none", "--stdio", "--percent-limit", "0"],
        capture_output=True, text=True, check=True,
    ).stdout
    shares = {}
    line_re = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+(\S+)\s+(\[[.k]\])\s+(.*)$")
    for line in out.splitlines():
        m = line_re.match(line)
        if not m:
            continue
        pct, comm, dso, kind, sym = m.groups()
        sym = f"{kind} {sym}" if kind == "[k]" else sym
        stage = classify(comm, dso, sym)
        shares[stage] = shares.get(stage, 0.0) + float(pct)
    total = sum(shares.values()) or 1.0
    print(f"{'stage':<45} {'share':>7}" + ("   µs/request" if ms_per_request else ""))
    for stage, pct in sorted(shares.items(), key=lambda kv: -kv[1]):
        share = pct / total
        line = f"{stage:<45} {share * 100:6.1f}%"
        if ms_per_request:
            line += f"   {share * ms_per_request * 1000:8.1f}"
        print(line)
    signing = sum(shares.get(stage, 0.0) for stage in SIGNING) / total
    for name, share in (("signing, all of it", signing), ("outside signing", 1 - signing)):
        line = f"{name:<45} {share * 100:6.1f}%"
        if ms_per_request:
            line += f"   {share * ms_per_request * 1000:8.1f}"
        print(line)


if __name__ == "__main__":
    main()
