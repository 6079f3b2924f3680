"""Stripe's official Python SDK against stripe-sim: create, replay (idempotency),
search, pay (via the control plane), subscriptions, portal, events, errors and
webhook signatures verified by the SDK. Prints one line per check and ends with
"N passed, M failed"; exits non-zero on any failure.
"""

import http.server
import json
import sys
import threading
import time
import traceback
import urllib.request

import stripe

BASE = sys.argv[1]
PRICE = sys.argv[2]
KEY = "sk_test_official_sdk"
SECRET = "whsec_stripe_sim_development"

client = stripe.StripeClient(KEY, base_addresses={"api": BASE}, max_network_retries=0)
results = []
state = {}


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append(True)
            print(f"ok - {name}", flush=True)
        except Exception:  # noqa: BLE001 - report every failure and continue
            results.append(False)
            print(f"FAIL - {name}", flush=True)
            traceback.print_exc()
        return fn

    return wrap


def control(path, body=None):
    req = urllib.request.Request(
        BASE + path,
        data=json.dumps(body or {}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


# A webhook endpoint; the SDK verifies every delivery's signature.
received = []


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers["content-length"])).decode()
        received.append((body, self.headers.get("stripe-signature", "")))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


hook_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook_server.serve_forever, daemon=True).start()
control("/_sim/config", {"webhook_url": f"http://127.0.0.1:{hook_server.server_address[1]}/hook"})


@check("create a customer with an idempotency key")
def _():
    c = client.v1.customers.create(
        params={"email": "sdk@tenant.example", "name": "SDK", "metadata": {"tenant_id": "t-sdk"}},
        options={"idempotency_key": "sdk-create-1"},
    )
    assert c.id.startswith("cus_"), c.id
    assert c.metadata["tenant_id"] == "t-sdk"
    state["customer"] = c


@check("replay returns the same customer with Idempotent-Replayed")
def _():
    again = client.v1.customers.create(
        params={"email": "sdk@tenant.example", "name": "SDK", "metadata": {"tenant_id": "t-sdk"}},
        options={"idempotency_key": "sdk-create-1"},
    )
    assert again.id == state["customer"].id
    headers = again.last_response.headers
    assert headers.get("Idempotent-Replayed") == "true", dict(headers)
    assert len(client.v1.customers.list(params={"email": "sdk@tenant.example"}).data) == 1


@check("same key with other parameters is an IdempotencyError")
def _():
    try:
        client.v1.customers.create(params={"email": "other@tenant.example"}, options={"idempotency_key": "sdk-create-1"})
    except stripe.IdempotencyError as e:
        assert e.http_status == 400
    else:
        raise AssertionError("no error")


@check("retrieve, update (metadata merge) and list")
def _():
    cid = state["customer"].id
    assert client.v1.customers.retrieve(cid).email == "sdk@tenant.example"
    u = client.v1.customers.update(cid, params={"metadata": {"plan": "pro"}})
    assert u.metadata["tenant_id"] == "t-sdk" and u.metadata["plan"] == "pro"
    page = client.v1.customers.list(params={"limit": 1})
    assert page.object == "list" and page.data[0].id == cid


@check("search with metadata and email, paging through next_page")
def _():
    for i in range(3):
        client.v1.customers.create(params={"email": f"s{i}@tenant.example", "metadata": {"group": "sdk"}})
    found = client.v1.customers.search(params={"query": "metadata['tenant_id']:'t-sdk' AND email:'sdk@tenant.example'"})
    assert [c.id for c in found.data] == [state["customer"].id]
    first = client.v1.customers.search(params={"query": "metadata['group']:'sdk'", "limit": 2})
    assert first.has_more and first.next_page
    everyone = list(first.auto_paging_iter())
    assert len(everyone) == 3, len(everyone)


@check("unknown customer is an InvalidRequestError 404 resource_missing")
def _():
    try:
        client.v1.customers.retrieve("cus_does_not_exist")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 404 and e.code == "resource_missing"
    else:
        raise AssertionError("no error")


@check("prices: seeded, created with product_data, listed")
def _():
    assert client.v1.prices.retrieve(PRICE).unit_amount == 2500
    p = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 9900, "recurring": {"interval": "year"}, "product_data": {"name": "Pro yearly"}}
    )
    assert p.recurring.interval == "year"
    assert len(client.v1.prices.list().data) == 2


@check("checkout session in subscription mode, paid via the control plane")
def _():
    s = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": state["customer"].id,
            "line_items": [{"price": PRICE, "quantity": 1}],
            "subscription_data": {"metadata": {"tenant_id": "t-sdk"}},
            "success_url": "http://localhost/ok?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://localhost/cancel",
        }
    )
    assert s.status == "open" and s.url.endswith(s.id)
    sub = control(f"/_sim/checkout/{s.id}/complete")
    assert sub["object"] == "subscription"
    done = client.v1.checkout.sessions.retrieve(s.id)
    assert done.status == "complete" and done.payment_status == "paid"
    assert done.subscription == sub["id"]
    state["subscription"] = sub["id"]


@check("subscriptions: retrieve, list, update, cancel")
def _():
    sid = state["subscription"]
    sub = client.v1.subscriptions.retrieve(sid)
    item = sub["items"].data[0]
    assert sub.status == "active" and item.price.id == PRICE
    assert item.current_period_end > item.current_period_start
    assert sub.metadata["tenant_id"] == "t-sdk"
    assert [s.id for s in client.v1.subscriptions.list(params={"customer": state["customer"].id}).data] == [sid]
    u = client.v1.subscriptions.update(sid, params={"cancel_at_period_end": True})
    assert u.cancel_at_period_end is True
    c = client.v1.subscriptions.cancel(sid)
    assert c.status == "canceled"


@check("billing portal session")
def _():
    p = client.v1.billing_portal.sessions.create(params={"customer": state["customer"].id, "return_url": "http://localhost/account"})
    assert p.url.startswith(BASE) and p.object == "billing_portal.session"


@check("events: list by type and retrieve")
def _():
    evs = client.v1.events.list(params={"type": "checkout.session.completed"})
    assert len(evs.data) == 1
    ev = client.v1.events.retrieve(evs.data[0].id)
    assert ev.type == "checkout.session.completed"
    assert ev.data.object.id is not None


@check("webhooks arrive and verify with stripe.Webhook.construct_event")
def _():
    deadline = time.time() + 10
    while time.time() < deadline and not any('"invoice.paid"' in body for body, _ in received):
        time.sleep(0.05)
    assert received, "no webhook received"
    types = set()
    for body, sig in received:
        event = stripe.Webhook.construct_event(body, sig, SECRET)
        types.add(event.type)
    for t in ("customer.created", "checkout.session.completed", "customer.subscription.created", "invoice.paid"):
        assert t in types, (t, types)


@check("delete a customer")
def _():
    d = client.v1.customers.delete(state["customer"].id)
    assert d.deleted is True


passed = sum(results)
failed = len(results) - passed
hook_server.shutdown()
print(f"{passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
