"""Stripe's official Python SDK against stripe-sim: create, replay (idempotency),
search, pay (via the control plane), subscriptions, portal, events, errors,
subscription updates with proration, schedules across a phase boundary, invoices
(list, retrieve, pay, a PDF that pypdf reads), customer tax ids, automatic tax,
currency options, coupons and promotion codes, Billing Meters (meters, meter
events, adjustments, event summaries, a metered price billed on the renewal) and
webhook signatures verified by the SDK (also after the simulator's clock moved days ahead). Prints one line per
check and ends with "N passed, M failed"; exits non-zero on any failure.
"""

import http.server
import io
import json
import sys
import threading
import time
import traceback
import urllib.request

import pypdf
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


DAY = 86400


def prorate(amount, remaining, total):
    """amount * remaining / total, rounded half away from zero (Stripe's proration)."""
    q, r = divmod(abs(amount) * remaining * 2 + total, 2 * total)
    return q if amount >= 0 else -q


def paid_subscription(email, price, quantity=1):
    c = client.v1.customers.create(params={"email": email})
    s = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": c.id,
            "line_items": [{"price": price, "quantity": quantity}],
            "success_url": "http://localhost/ok",
        }
    )
    sub = control(f"/_sim/checkout/{s.id}/complete")
    return c.id, client.v1.subscriptions.retrieve(sub["id"])


@check("a second price for plan changes")
def _():
    p = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 1200, "recurring": {"interval": "month"}, "product_data": {"name": "Team"}}
    )
    state["team"] = p.id


@check("subscription update with always_invoice: prorated invoice charged at once")
def _():
    cid, sub = paid_subscription("upgrade@tenant.example", PRICE)
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    control("/_sim/clock/advance", {"seconds": 10 * DAY})
    at = start + 10 * DAY
    u = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": state["team"], "quantity": 3}],
            "proration_behavior": "always_invoice",
            "proration_date": at,
        },
    )
    assert u["items"].data[0].price.id == state["team"] and u["items"].data[0].quantity == 3
    inv = client.v1.invoices.retrieve(u.latest_invoice)
    credit = -prorate(2500, end - at, end - start)
    charge = prorate(3 * 1200, end - at, end - start)
    assert [line.amount for line in inv.lines.data] == [credit, charge], inv.lines.data
    assert inv.billing_reason == "subscription_update" and inv.status == "paid"
    assert inv.amount_paid == credit + charge
    assert inv.parent.subscription_details.subscription == sub.id
    state["upgraded"] = (cid, sub.id)


@check("invoices: a declined renewal, list by status, pay (CardError, then paid)")
def _():
    cid, sid = state["upgraded"]
    control(f"/_sim/customers/{cid}/card", {"declines": True})
    sub = client.v1.subscriptions.retrieve(sid)
    end = sub["items"].data[0].current_period_end
    now = control("/_sim/clock/advance", {"seconds": 0})["now"]
    control("/_sim/clock/advance", {"seconds": end - now + 1})
    assert client.v1.subscriptions.retrieve(sid).status == "past_due"
    open_ = client.v1.invoices.list(params={"customer": cid, "status": "open"}).data
    assert len(open_) == 1, open_
    inv = open_[0]
    assert inv.attempt_count == 1 and inv.next_payment_attempt == end + 3 * DAY
    try:
        client.v1.invoices.pay(inv.id)
    except stripe.CardError as e:
        assert e.http_status == 402 and e.code == "card_declined"
    else:
        raise AssertionError("paid with a declining card")
    control(f"/_sim/customers/{cid}/card", {"declines": False})
    paid = client.v1.invoices.pay(inv.id)
    assert paid.status == "paid" and paid.amount_paid == 3 * 1200
    assert client.v1.subscriptions.retrieve(sid).status == "active"
    everything = list(client.v1.invoices.list(params={"customer": cid, "limit": 1}).auto_paging_iter())
    assert [i.billing_reason for i in everything] == ["subscription_cycle", "subscription_update", "subscription_create"]
    state["invoice"] = paid


@check("invoice_pdf is a PDF that pypdf reads; hosted_invoice_url is a page")
def _():
    inv = state["invoice"]
    with urllib.request.urlopen(inv.invoice_pdf, timeout=10) as resp:
        assert resp.headers["content-type"] == "application/pdf"
        data = resp.read()
    text = pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert f"Invoice {inv.number}" in text, text
    assert "Amount paid: $36.00" in text, text
    with urllib.request.urlopen(inv.hosted_invoice_url, timeout=10) as resp:
        assert inv.number in resp.read().decode()


@check("subscription schedule: from_subscription, two phases, the clock moves the phase on")
def _():
    cid, sub = paid_subscription("downgrade@tenant.example", state["team"], 2)
    sched = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    assert sched.status == "active" and client.v1.subscriptions.retrieve(sub.id).schedule == sched.id
    phase = sched.phases[0]
    updated = client.v1.subscription_schedules.update(
        sched.id,
        params={
            "end_behavior": "release",
            "phases": [
                {"items": [{"price": state["team"], "quantity": 2}], "start_date": phase.start_date, "end_date": phase.end_date},
                {"items": [{"price": PRICE, "quantity": 1}], "iterations": 1},
            ],
        },
    )
    assert len(updated.phases) == 2 and updated.phases[1].start_date == phase.end_date
    now = control("/_sim/clock/advance", {"seconds": 0})["now"]
    control("/_sim/clock/advance", {"seconds": phase.end_date - now + 1})
    s = client.v1.subscriptions.retrieve(sub.id)
    assert s["items"].data[0].price.id == PRICE and s["items"].data[0].current_period_start == phase.end_date
    latest = client.v1.invoices.retrieve(s.latest_invoice)
    assert latest.amount_paid == 2500 and latest.billing_reason == "subscription_cycle"
    got = client.v1.subscription_schedules.retrieve(sched.id)
    assert got.current_phase.start_date == phase.end_date
    released = client.v1.subscription_schedules.release(sched.id)
    assert released.status == "released" and released.released_subscription == sub.id
    assert client.v1.subscriptions.retrieve(sub.id).schedule is None


def taxed_checkout(customer_id, extra=None):
    params = {
        "mode": "subscription",
        "customer": customer_id,
        "line_items": [{"price": PRICE, "quantity": 1}],
        "automatic_tax": {"enabled": True},
        "tax_id_collection": {"enabled": True},
        "customer_update": {"address": "auto", "name": "auto"},
        "success_url": "http://localhost/ok",
    }
    params.update(extra or {})
    return client.v1.checkout.sessions.create(params=params)


@check("tax ids: pending, listed, tax_id_invalid for a malformed number, verified on the clock, deleted")
def _():
    c = client.v1.customers.create(params={"email": "vat@tenant.example", "address": {"country": "DE", "city": "Berlin"}})
    assert c.address.country == "DE"
    t = client.v1.customers.tax_ids.create(c.id, params={"type": "eu_vat", "value": "DE123456789"})
    assert t.verification.status == "pending" and t.country == "DE"
    try:
        client.v1.customers.tax_ids.create(c.id, params={"type": "eu_vat", "value": "DE12"})
        raise AssertionError("a malformed VAT number was accepted")
    except stripe.InvalidRequestError as e:
        assert e.code == "tax_id_invalid" and e.param == "value", e
    control("/_sim/clock/advance", {"seconds": 5})
    got = client.v1.customers.tax_ids.retrieve(c.id, t.id)
    assert got.verification.status == "verified"
    assert [x.id for x in client.v1.customers.tax_ids.list(c.id).data] == [t.id]
    extra = client.v1.customers.tax_ids.create(c.id, params={"type": "us_ein", "value": "12-3456789"})
    assert extra.verification.status == "unavailable"
    assert client.v1.customers.tax_ids.delete(c.id, extra.id).deleted is True
    state["vat_customer"] = c.id


@check("automatic tax to the cent: German business reverse charge, German consumer 19 %, US 0 %")
def _():
    s = taxed_checkout(state["vat_customer"])
    assert s.automatic_tax.enabled and s.automatic_tax.status == "complete"
    assert s.amount_total == 2500 and s.total_details.amount_tax == 0
    sub = control(f"/_sim/checkout/{s.id}/complete")
    inv = client.v1.invoices.retrieve(sub["latest_invoice"])
    assert inv.total == 2500 and inv.total_taxes[0].taxability_reason == "reverse_charge"
    assert inv.customer_tax_ids[0].value == "DE123456789"
    consumer = client.v1.customers.create(params={"email": "de@tenant.example", "address": {"country": "DE"}})
    s = taxed_checkout(consumer.id)
    assert s.amount_total == 2975 and s.total_details.amount_tax == 475
    sub = control(f"/_sim/checkout/{s.id}/complete")
    inv = client.v1.invoices.retrieve(sub["latest_invoice"])
    assert (inv.subtotal, inv.total, inv.amount_paid) == (2500, 2975, 2975)
    assert inv.lines.data[0].taxes[0].amount == 475
    rate = client.v1.tax_rates.retrieve(inv.total_taxes[0].tax_rate_details.tax_rate)
    assert rate.percentage == 19.0 and rate.country == "DE"
    us = client.v1.customers.create(params={"email": "us@tenant.example", "address": {"country": "US", "postal_code": "10001"}})
    s = taxed_checkout(us.id)
    assert s.amount_total == 2500


@check("customer_tax_location_invalid for a customer without an address")
def _():
    c = client.v1.customers.create(params={"email": "nowhere@tenant.example"})
    try:
        taxed_checkout(c.id, {"customer_update": {"name": "auto"}})
        raise AssertionError("checkout without a location was accepted")
    except stripe.InvalidRequestError as e:
        assert e.code == "customer_tax_location_invalid", e
    located = client.v1.customers.retrieve(c.id, params={"expand": ["tax"]})
    assert located.tax.automatic_tax == "unrecognized_location"


@check("prices with currency_options; a second currency on one customer is refused")
def _():
    price = client.v1.prices.retrieve(PRICE, params={"expand": ["currency_options"]})
    assert price.currency_options["eur"].unit_amount == 2300
    c = client.v1.customers.create(params={"email": "eur@tenant.example"})
    s = client.v1.checkout.sessions.create(
        params={"mode": "subscription", "customer": c.id, "currency": "eur",
                "line_items": [{"price": PRICE}], "success_url": "http://localhost/ok"}
    )
    assert s.currency == "eur" and s.amount_total == 2300
    sub = control(f"/_sim/checkout/{s.id}/complete")
    assert sub["currency"] == "eur"
    assert client.v1.customers.retrieve(c.id).currency == "eur"
    try:
        client.v1.checkout.sessions.create(
            params={"mode": "subscription", "customer": c.id, "currency": "usd",
                    "line_items": [{"price": PRICE}], "success_url": "http://localhost/ok"}
        )
        raise AssertionError("a second currency was accepted")
    except stripe.InvalidRequestError as e:
        assert "You cannot combine currencies on a single customer" in e.user_message, e


@check("coupons and promotion codes: 20 % off the first invoice, lookup by code, expiry")
def _():
    coupon = client.v1.coupons.create(params={"percent_off": 20, "duration": "once", "name": "Launch"})
    promo = client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "LAUNCH20"})
    found = client.v1.promotion_codes.list(params={"code": "launch20"})
    assert [p.id for p in found.data] == [promo.id] and found.data[0].promotion.coupon == coupon.id
    c = client.v1.customers.create(params={"email": "promo@tenant.example"})
    s = client.v1.checkout.sessions.create(
        params={"mode": "subscription", "customer": c.id, "line_items": [{"price": PRICE}],
                "discounts": [{"promotion_code": promo.id}], "success_url": "http://localhost/ok"}
    )
    assert s.amount_total == 2000 and s.total_details.amount_discount == 500
    sub = control(f"/_sim/checkout/{s.id}/complete")
    inv = client.v1.invoices.retrieve(sub["latest_invoice"])
    assert inv.total == 2000 and inv.total_discount_amounts[0].amount == 500
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1
    soon = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SOON", "expires_at": int(control("/_sim/clock/advance", {"seconds": 0})["now"]) + 60}
    )
    control("/_sim/clock/advance", {"seconds": 61})
    assert client.v1.promotion_codes.retrieve(soon.id).active is False


@check("webhooks arrive and verify with stripe.Webhook.construct_event")
def _():
    deadline = time.time() + 10
    while time.time() < deadline and not any('"subscription_schedule.released"' in body for body, _ in received):
        time.sleep(0.05)
    assert received, "no webhook received"
    types = set()
    for body, sig in received:
        event = stripe.Webhook.construct_event(body, sig, SECRET)
        types.add(event.type)
    for t in (
        "customer.created",
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
        "invoice.payment_failed",
        "subscription_schedule.updated",
        "subscription_schedule.released",
        "customer.tax_id.created",
        "customer.tax_id.updated",
        "promotion_code.created",
    ):
        assert t in types, (t, types)


@check("billing meters: create, retrieve, list, deactivate and reactivate")
def _():
    m = client.v1.billing.meters.create(
        params={
            "display_name": "API calls",
            "event_name": "sdk_api_calls",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )
    assert m.id.startswith("mtr_") and m.status == "active", m
    assert client.v1.billing.meters.retrieve(m.id).event_name == "sdk_api_calls"
    off = client.v1.billing.meters.deactivate(m.id)
    assert off.status == "inactive" and off.status_transitions.deactivated_at is not None
    assert client.v1.billing.meters.list(params={"status": "active"}).data == []
    assert client.v1.billing.meters.reactivate(m.id).status == "active"
    state["meter"] = m


@check("meter events: an identifier counts once; a concurrent call is a RateLimitError")
def _():
    cus = client.v1.customers.create(params={"email": "usage@tenant.example"})
    state["usage_customer"] = cus.id
    now = control("/_sim/clock/advance", {"seconds": 0})["now"]
    state["usage_start"] = now - now % 60
    payload = {"stripe_customer_id": cus.id, "value": "25"}
    ev = client.v1.billing.meter_events.create(
        params={"event_name": "sdk_api_calls", "payload": payload, "identifier": "sdk-batch-1", "timestamp": now}
    )
    assert ev.identifier == "sdk-batch-1" and ev.payload["value"] == "25" and ev.timestamp == now
    try:
        client.v1.billing.meter_events.create(params={"event_name": "sdk_api_calls", "payload": payload, "identifier": "sdk-batch-1"})
    except stripe.InvalidRequestError as e:
        assert e.http_status == 400 and "already exists" in e.user_message, e.user_message
    else:
        raise AssertionError("a repeated identifier was accepted")
    try:
        client.v1.billing.meter_events.create(
            params={"event_name": "sdk_api_calls", "payload": payload, "timestamp": now - 36 * DAY}
        )
    except stripe.InvalidRequestError as e:
        assert e.param == "timestamp"
    else:
        raise AssertionError("a timestamp 36 days back was accepted")
    # While one call for this customer and meter is held, a second is refused.
    control("/_sim/faults", {"method": "POST", "path": "/v1/billing/meter_events", "count": 1, "delay_ms": 1500})
    slow = threading.Thread(
        target=lambda: client.v1.billing.meter_events.create(
            params={"event_name": "sdk_api_calls", "payload": {**payload, "value": "5"}, "identifier": "sdk-slow"}
        )
    )
    slow.start()
    deadline = time.time() + 10
    while json.loads(urllib.request.urlopen(BASE + "/_sim/stats").read())["meter_event_calls_in_flight"] == 0:
        assert time.time() < deadline, "the first call never started"
        time.sleep(0.01)
    try:
        client.v1.billing.meter_events.create(params={"event_name": "sdk_api_calls", "payload": payload, "identifier": "sdk-fast"})
    except stripe.RateLimitError as e:
        assert e.http_status == 429
    else:
        raise AssertionError("a concurrent call for the same customer and meter went through")
    finally:
        slow.join()


@check("meter event adjustment cancels; event summaries add up, hourly too")
def _():
    m, cus, start = state["meter"], state["usage_customer"], state["usage_start"]
    adj = client.v1.billing.meter_event_adjustments.create(
        params={"event_name": "sdk_api_calls", "type": "cancel", "cancel": {"identifier": "sdk-slow"}}
    )
    assert adj.type == "cancel" and adj.cancel.identifier == "sdk-slow"
    end = start + 3600
    summaries = client.v1.billing.meters.event_summaries.list(
        m.id, params={"customer": cus, "start_time": start, "end_time": end}
    )
    assert [s.aggregated_value for s in summaries.data] == [25], summaries
    hour = start - start % 3600
    hourly = client.v1.billing.meters.event_summaries.list(
        m.id, params={"customer": cus, "start_time": hour, "end_time": hour + 7200, "value_grouping_window": "hour"}
    )
    assert [s.aggregated_value for s in hourly.data] == [25], hourly
    assert hourly.data[0].object == "billing.meter_event_summary"


@check("a metered price beside a licensed one; the renewal bills the usage after the grace period")
def _():
    m, cus = state["meter"], state["usage_customer"]
    metered = client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 2,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": m.id},
            "product_data": {"name": "API calls"},
        }
    )
    assert metered.recurring.usage_type == "metered" and metered.recurring.meter == m.id
    s = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": cus,
            "line_items": [{"price": PRICE, "quantity": 1}, {"price": metered.id}],
            "success_url": "http://localhost/ok",
        }
    )
    assert s.amount_total == 2500
    sub = client.v1.subscriptions.retrieve(control(f"/_sim/checkout/{s.id}/complete")["id"])
    usage_item = sub["items"].data[1]
    assert usage_item.quantity is None and usage_item.price.recurring.usage_type == "metered"
    start, end = usage_item.current_period_start, usage_item.current_period_end
    client.v1.billing.meter_events.create(
        params={"event_name": "sdk_api_calls", "payload": {"stripe_customer_id": cus, "value": "300"}, "timestamp": start + 60}
    )
    now = control("/_sim/clock/advance", {"seconds": 0})["now"]
    control("/_sim/clock/advance", {"seconds": end - now})
    draft = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert draft.status == "draft" and draft.automatically_finalizes_at == end + 3600
    # Usage of the period's last minute, sent in the grace period, is still billed.
    client.v1.billing.meter_events.create(
        params={"event_name": "sdk_api_calls", "payload": {"stripe_customer_id": cus, "value": "20"}, "timestamp": end - 30}
    )
    control("/_sim/clock/advance", {"seconds": 3600})
    inv = client.v1.invoices.retrieve(draft.id)
    assert inv.status == "paid", inv.status
    usage = [line for line in inv.lines.data if line.pricing.price_details.price == metered.id]
    assert [(line.quantity, line.amount) for line in usage] == [(320, 640)], usage
    assert inv.amount_paid == 2500 + 640


@check("delete a customer")
def _():
    d = client.v1.customers.delete(state["customer"].id)
    assert d.deleted is True


passed = sum(results)
failed = len(results) - passed
hook_server.shutdown()
print(f"{passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
