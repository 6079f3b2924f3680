#!/usr/bin/env python3
"""Bulk seeding for scripts/bench.sh (standard library only).

Why: the many-tenant benchmark needs 20,000 linked tenants, each with its own
token, and a 1,000,000-row tenant_config (subscriptions for the linked ones); going through the API (or the
simulator) would take longer than the benchmark. Rows go in with bulk SQL.

  seed.py sql FIRST COUNT linked|unlinked      PostgreSQL INSERT … generate_series on stdout
  seed.py sqlite PATH FIRST COUNT linked|unlinked
  seed.py tokens SECRET FIRST COUNT STEP       "tenant token" lines on stdout (HS256, 1 h)

Tenant i is `mt` + i on 7 digits; a linked tenant has customer `cus_mt…`
and an active pro subscription.
"""
import base64
import hashlib
import hmac
import json
import sqlite3
import sys
import time


def tenant(i):
    return "mt%07d" % i


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def token(secret, tenant_id, now):
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "bench", "tenant_id": tenant_id, "role": "member",
              "iat": now, "exp": now + 3600}
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    signing = header + b"." + body
    sig = b64(hmac.new(secret.encode(), signing, hashlib.sha256).digest())
    return (signing + b"." + sig).decode()


def main(argv):
    kind = argv[1]
    if kind == "sql":
        first, count, linked = int(argv[2]), int(argv[3]), argv[4] == "linked"
        customer = "'cus_' || t" if linked else "NULL"
        ids = (f"(SELECT 'mt' || lpad(i::text, 7, '0') AS t FROM "
               f"generate_series({first}, {first + count - 1}) i) s")
        # Triggers off: a million NOTIFYs in one transaction help nobody.
        print("SET session_replication_role = replica;")
        print(
            "INSERT INTO tenant_config (tenant_id, stripe_customer_id, billing_email, "
            "created_at, updated_at) "
            f"SELECT t, {customer}, 'billing@' || t || '.test', "
            f"now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc' FROM {ids};"
        )
        if linked:
            print(f"INSERT INTO subscriptions (tenant_id, plan, status) SELECT t, 'pro', 'active' FROM {ids};")
        print("SET session_replication_role = origin;")
        # Settle before measuring: no autovacuum or checkpoint of the bulk
        # insert running under the benchmark.
        print("VACUUM ANALYZE tenant_config;")
        print("VACUUM ANALYZE subscriptions;")
        print("CHECKPOINT;")
    elif kind == "sqlite":
        path, first, count, linked = argv[2], int(argv[3]), int(argv[4]), argv[5] == "linked"
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        conn = sqlite3.connect(path)
        rows = (
            (tenant(i), ("cus_" + tenant(i)) if linked else None, "billing@%s.test" % tenant(i), now, now)
            for i in range(first, first + count)
        )
        with conn:
            conn.executemany(
                "INSERT INTO tenant_config (tenant_id, stripe_customer_id, billing_email, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?)", rows)
            if linked:
                conn.executemany(
                    "INSERT INTO subscriptions (tenant_id, plan, status) VALUES (?, 'pro', 'active')",
                    ((tenant(i),) for i in range(first, first + count)))
        conn.execute("ANALYZE")
        # Fold the bulk insert back into the database file: reads through a
        # long write-ahead log are slower than the steady state.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    elif kind == "tokens":
        secret, first, count, step = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        now = int(time.time())
        out = sys.stdout
        for k in range(count):
            t = tenant(first + k * step)
            out.write("%s %s\n" % (t, token(secret, t, now)))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
