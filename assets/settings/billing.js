// The billing settings page (SPEC §8). No framework and no build step: it takes
// its token from the URL fragment, learns tenant and role from GET /v1/me, and
// renders what the billing API answers. Parts whose endpoint this server does
// not have yet (404) stay hidden.

const TOKEN_KEY = 'tenant-billing.token';
const CHECKOUT_PLAN_KEY = 'tenant-billing.checkout-plan';
const CONFIRM_LIMIT_MS = 30000;
const POLL_MS = 1000;
const PAYING = new Set(['active', 'trialing', 'past_due']);
const STATUS_LABELS = {
  active: 'Active', trialing: 'Trial', past_due: 'Past due', canceled: 'Cancelled',
  unpaid: 'Unpaid', incomplete: 'Incomplete', incomplete_expired: 'Expired', paused: 'Paused',
};
const FIELD_LABELS = {
  billing_email: 'Billing email', billing_name: 'Name on invoices', quantity: 'Seats',
  plan: 'Plan', success_url: 'The return address', cancel_url: 'The return address',
  return_url: 'The return address',
};
// A meter's bar warns from this share of its limit.
const USAGE_WARNING = 0.8;
const SIGN_IN_AGAIN = 'Your sign-in has expired or is not valid. Sign in again to manage billing.';
// A handler returns LEAVING when it navigates away: its button stays disabled.
const LEAVING = Symbol('leaving');

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
const byId = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let token = null;
let me = null;
let base = '';
let state = null;
let plans = null;
let invoices = null;
let meters = null;

class ProblemError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---- token and API ----

function takeToken() {
  const fresh = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fresh) sessionStorage.setItem(TOKEN_KEY, fresh);
  if (location.hash) history.replaceState(history.state, '', location.pathname + location.search);
  return sessionStorage.getItem(TOKEN_KEY);
}

function sentence(text) {
  const trimmed = String(text).trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

// A problem+json answer as one sentence a person can act on, never raw JSON.
async function problemSentence(response) {
  if (response.status === 401) return SIGN_IN_AGAIN;
  if (response.status === 404) return 'This is not available on this billing server yet.';
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall through to the status.
  }
  if (Array.isArray(problem?.errors) && problem.errors.length > 0) {
    return problem.errors
      .map((e) => sentence(`${FIELD_LABELS[e.field] ?? String(e.field).replace(/_/g, ' ')} ${e.message}`))
      .join(' ');
  }
  for (const text of [problem?.detail, problem?.title]) {
    if (typeof text === 'string' && text.trim()) return sentence(text);
  }
  return `The billing service answered with an error (HTTP ${response.status}). Try again.`;
}

async function api(method, path, body) {
  const init = { method, cache: 'no-store', headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ProblemError(0, 'The billing service could not be reached. Check your connection and try again.');
  }
  if (response.ok) return response.json();
  throw new ProblemError(response.status, await problemSentence(response));
}

// An endpoint this server may not have yet: null when it answers 404.
async function optional(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

// ---- small DOM helpers ----

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children);
  return node;
}

function setText(testId, text) {
  const node = byTestId(testId);
  node.textContent = text ?? '';
  node.hidden = !text;
}

function notify(text, kind = 'info') {
  const box = byId('notice');
  box.textContent = text;
  box.className = kind === 'warning' ? 'notice notice-warning' : 'notice notice-ok';
  box.hidden = !text;
}

function showError(error) {
  const box = byTestId('error');
  box.textContent = error instanceof ProblemError ? error.message : 'Something went wrong. Reload the page and try again.';
  box.hidden = false;
  if (error?.status === 401) {
    // The token is spent: forget it and show nothing it would have unlocked.
    sessionStorage.removeItem(TOKEN_KEY);
    for (const id of ['summary', 'usage', 'plans', 'seats', 'profile', 'invoices', 'confirm', 'notice', 'who']) byId(id).hidden = true;
    for (const id of ['past-due-banner', 'read-only-notice', 'confirming']) byTestId(id).hidden = true;
  }
}

// Runs `work` with `button` disabled, so a double click starts one request.
async function busy(button, work) {
  if (button.disabled) return;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  byTestId('error').hidden = true;
  let leaving = false;
  try {
    leaving = (await work()) === LEAVING;
  } catch (error) {
    showError(error);
  } finally {
    if (!leaving) {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }
}

let answerPending = null;

// Asks in the page (not window.confirm), in the card or section of `invoker`;
// resolves true for yes, false for no or Escape.
function confirmInPage(text, invoker, yesLabel) {
  answerPending?.(false);
  const box = byId('confirm');
  byId('confirm-text').textContent = text;
  byTestId('confirm-yes').textContent = yesLabel;
  invoker.closest('li, section').append(box);
  box.hidden = false;
  byTestId('confirm-no').focus();
  return new Promise((resolve) => {
    answerPending = (answer) => {
      answerPending = null;
      box.hidden = true;
      if (invoker.isConnected) invoker.focus();
      resolve(answer);
    };
  });
}

// ---- formatting ----

const dateFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long', day: 'numeric' });

function formatDate(value) {
  return dateFormat.format(typeof value === 'number' ? new Date(value * 1000) : new Date(value));
}

function money(amount, currency) {
  const format = new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() });
  return format.format(amount / 10 ** format.resolvedOptions().maximumFractionDigits);
}

// `audit_log` → "Audit log"; a short single word is an acronym (`sso` → "SSO").
function humanize(code) {
  const words = String(code).replace(/[_-]+/g, ' ');
  if (/^[a-z]{2,3}$/.test(words)) return words.toUpperCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function planName(id) {
  return plans?.find((plan) => plan.id === id)?.name ?? humanize(id);
}

function periodEnd() {
  return state.current_period_end ? formatDate(state.current_period_end) : 'the end of the current period';
}

const numberFormat = new Intl.NumberFormat();

function count(value) {
  return numberFormat.format(value);
}

function meterName(id) {
  return meters?.find((meter) => meter.meter === id)?.name;
}

function price(plan) {
  if (plan.amount === null || plan.amount === undefined || !plan.currency) return 'No charge';
  const unit = plan.per_seat ? ' per seat' : '';
  return `${money(plan.amount, plan.currency)}${unit} / ${plan.interval ?? 'month'}`;
}

// ---- rendering ----

function render() {
  const admin = me.role === 'admin';
  const paying = PAYING.has(state.subscription_status) && state.plan !== 'free';
  byId('summary').hidden = false;
  for (const node of document.querySelectorAll('.admin-only')) node.hidden = !admin;
  byTestId('read-only-notice').hidden = admin;

  setText('plan-name', planName(state.plan));
  const status = byTestId('subscription-status');
  status.textContent = state.subscription_status ? STATUS_LABELS[state.subscription_status] ?? humanize(state.subscription_status) : 'No subscription';
  status.dataset.status = state.subscription_status ?? 'none';
  const ending = paying && state.cancel_at_period_end;
  const trialing = paying && state.subscription_status === 'trialing' && state.trial_end;
  setText('cancel-notice', ending ? `Ends on ${periodEnd()}. ${planName(state.plan)} stays active until then.` : null);
  setText('trial-end', !ending && trialing ? `Trial ends on ${formatDate(state.trial_end)}` : null);
  setText('period-end', !ending && !trialing && paying && state.current_period_end ? `Renews on ${periodEnd()}` : null);
  const pending = state.pending_plan && state.pending_plan !== state.plan;
  byId('pending-notice').hidden = !pending;
  byId('pending-notice').textContent = pending
    ? `Changes to ${planName(state.pending_plan)} on ${state.pending_plan_at ? formatDate(state.pending_plan_at) : periodEnd()}.`
    : '';

  const pastDue = state.subscription_status === 'past_due';
  setText('past-due-banner', pastDue
    ? `Your last payment failed. ${state.grace_until ? `${planName(state.plan)} stays active until ${formatDate(state.grace_until)}. ` : ''}${admin ? 'Update your payment method in Manage billing.' : 'Ask an admin to update the payment method.'}`
    : null);
  byTestId('cancel-subscription').hidden = !(admin && paying && !state.cancel_at_period_end);
  byTestId('resume-subscription').hidden = !(admin && paying && state.cancel_at_period_end);

  renderUsage(admin, paying);
  renderPlans(admin, paying);
  renderSeats(admin, paying);
  renderProfile(admin);
  renderInvoices();
}

function renderPlans(admin, paying) {
  byId('plans').hidden = !plans;
  if (!plans) return;
  byId('plan-cards').replaceChildren(...plans.map((plan) => {
    const title = el('h3', { id: `plan-title-${plan.id}` }, plan.name);
    const card = el('li', { class: plan.current ? 'plan-card current' : 'plan-card', 'data-testid': `plan-card-${plan.id}` }, title, el('p', { class: 'price' }, price(plan)));
    if (plan.trial_available && plan.trial_days > 0 && !paying) card.append(el('p', { class: 'muted' }, `${plan.trial_days}-day free trial`));
    const features = (plan.features ?? []).map((feature) => el('li', {}, humanize(feature)));
    for (const [name, limit] of Object.entries(plan.limits ?? {})) {
      const metered = meterName(name);
      if (metered && limit === 0) continue;
      features.push(el('li', {}, metered
        ? `${count(limit)} ${metered} per billing period`
        : `Up to ${count(limit)} ${String(name).replace(/[_-]+/g, ' ')}`));
    }
    if (features.length > 0) card.append(el('ul', { class: 'features' }, ...features));
    if (admin) card.append(planButton(plan, paying));
    else if (plan.current) card.append(el('p', { class: 'current-label' }, 'Current plan'));
    return card;
  }));
}

function planButton(plan, paying) {
  const scheduled = state.pending_plan === plan.id && !plan.current;
  const keep = plan.current && state.pending_plan && state.pending_plan !== plan.id;
  const label = keep ? 'Keep this plan' : plan.current ? 'Current' : scheduled ? 'Scheduled'
    : plan.change === 'upgrade' ? 'Upgrade' : 'Downgrade';
  const button = el('button', {
    type: 'button', 'data-testid': `choose-plan-${plan.id}`, 'aria-describedby': `plan-title-${plan.id}`,
    class: plan.change === 'upgrade' && !scheduled ? 'primary' : null, disabled: (plan.current && !keep) || scheduled,
  }, label);
  button.addEventListener('click', () => busy(button, () => choosePlan(plan, paying, button)));
  return button;
}

async function choosePlan(plan, paying, button) {
  if (!paying) {
    // No subscription yet: Stripe Checkout, back to this page on either outcome.
    const page = location.origin + location.pathname;
    const session = await api('POST', `${base}/checkout`, {
      plan: plan.id, success_url: `${page}?checkout=success`, cancel_url: `${page}?checkout=cancel`,
    });
    sessionStorage.setItem(CHECKOUT_PLAN_KEY, plan.id);
    location.assign(session.url);
    return LEAVING;
  }
  if (plan.change === 'downgrade') {
    const question = plan.id === 'free'
      ? `Move to ${plan.name}? Your ${planName(state.plan)} subscription ends on ${periodEnd()}.`
      : `Switch to ${plan.name} on ${periodEnd()}? You keep ${planName(state.plan)} until then.`;
    if (!(await confirmInPage(question, button, `Yes, move to ${plan.name}`))) return undefined;
  }
  const upgrade = plan.change === 'upgrade';
  await api('POST', `${base}/subscription/change`, { plan: plan.id });
  await load();
  notify(upgrade ? `You are now on ${plan.name}.` : plan.current ? `You stay on ${plan.name}.` : `You move to ${plan.name} on ${periodEnd()}.`);
  return undefined;
}

// The cheapest higher-ranked plan that lifts `meter`'s limit above `used`
// (more, or none); plans come ordered by rank.
function planLifting(meter, used) {
  return plans?.find((plan) => plan.change === 'upgrade'
    && (plan.limits?.[meter] === undefined || plan.limits[meter] > used));
}

function renderUsage(admin, paying) {
  byId('usage').hidden = !meters || meters.length === 0;
  if (byId('usage').hidden) return;
  byId('meters').replaceChildren(...meters.map((meter) => {
    const unit = meter.unit || meter.name.toLowerCase();
    const item = el('li', { class: 'meter', 'data-testid': `usage-meter-${meter.meter}` },
      el('h3', { id: `meter-title-${meter.meter}` }, meter.name));
    const resets = `Resets on ${formatDate(meter.period_end)}.`;
    if (meter.limit === null) {
      item.append(el('p', {}, `${count(meter.used)} ${unit} this period. No limit.`));
      return item;
    }
    if (meter.limit === 0 && meter.used === 0) {
      const lifting = planLifting(meter.meter, 0);
      item.append(el('p', { class: 'muted' }, `Not included in ${planName(state.plan)}.${lifting ? ` Available on ${lifting.name}.` : ''}`));
      return item;
    } else {
      item.append(
        el('progress', { 'data-testid': `usage-bar-${meter.meter}`, max: String(meter.limit), value: String(Math.min(meter.used, meter.limit)), 'aria-labelledby': `meter-title-${meter.meter}` }),
        el('p', {}, `${count(meter.used)} of ${count(meter.limit)} ${unit} used. ${resets}`),
      );
    }
    const share = meter.limit > 0 ? meter.used / meter.limit : 1;
    const reached = meter.used >= meter.limit;
    if (!reached && share < USAGE_WARNING) return item;
    const blocking = meter.overage === 'block';
    const warning = reached
      ? (blocking
        ? `Limit reached: new ${unit} are refused until ${formatDate(meter.period_end)}.`
        : `Limit reached: further ${unit} are billed as overage.`)
      : `You have used ${Math.floor(share * 100)}% of your ${unit} this period.`;
    item.classList.add(reached ? 'meter-reached' : 'meter-warning');
    item.append(el('p', { class: 'notice notice-warning', 'data-testid': `usage-warning-${meter.meter}`, role: 'status' }, warning));
    const lifting = planLifting(meter.meter, meter.used);
    if (lifting && admin) {
      const button = el('button', { type: 'button', class: 'primary', 'data-testid': `usage-upgrade-${meter.meter}`, 'aria-describedby': `meter-title-${meter.meter}` }, `Upgrade to ${lifting.name}`);
      button.addEventListener('click', () => busy(button, () => choosePlan(lifting, paying, button)));
      item.append(button);
    } else if (lifting) {
      item.append(el('p', { class: 'muted' }, `An admin can upgrade to ${lifting.name} to raise it.`));
    }
    return item;
  }));
}

function renderSeats(admin, paying) {
  const current = plans?.find((plan) => plan.id === state.plan);
  const shown = Boolean(current?.per_seat) && paying;
  byId('seats').hidden = !shown;
  if (!shown) return;
  const input = byTestId('seats-input');
  if (document.activeElement !== input) input.value = String(state.seats ?? 1);
  input.readOnly = !admin;
  const max = current.limits?.seats;
  if (max) input.max = String(max);
  byTestId('seats-save').hidden = !admin;
  byId('seats-hint').textContent = `${max ? `Up to ${max} seats. ` : ''}A change is billed pro rata at once.`;
}

function renderProfile(admin) {
  byId('profile').hidden = false;
  for (const [testId, value] of [['profile-email', state.billing_email], ['profile-name', state.billing_name]]) {
    const input = byTestId(testId);
    if (document.activeElement !== input) input.value = value ?? '';
    input.readOnly = !admin;
  }
}

function renderInvoices() {
  byId('invoices').hidden = !invoices;
  if (!invoices) return;
  byId('no-invoices').hidden = invoices.length > 0;
  byTestId('invoices').hidden = invoices.length === 0;
  byId('invoice-rows').replaceChildren(...invoices.map((invoice) => {
    const links = el('td', { class: 'links' });
    for (const [href, text] of [[invoice.hosted_invoice_url, 'View'], [invoice.invoice_pdf, 'PDF']]) {
      if (href) links.append(el('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text, el('span', { class: 'visually-hidden' }, ` invoice ${invoice.number ?? invoice.id}`)));
    }
    const paid = invoice.status === 'paid';
    return el('tr', { 'data-testid': 'invoice-row' },
      el('td', {}, invoice.created ? formatDate(invoice.created) : ''),
      el('td', {}, money(paid ? invoice.amount_paid : invoice.amount_due, invoice.currency)),
      el('td', {}, el('span', { class: `badge invoice-${invoice.status}` }, humanize(invoice.status ?? ''))),
      links);
  }));
}

// ---- loading and actions ----

async function load() {
  const admin = me.role === 'admin';
  const usagePath = base.replace(/\/billing$/, '/usage');
  const [fresh, catalog, list, usage] = await Promise.all([
    api('GET', base),
    optional('GET', `${base}/plans`),
    admin ? optional('GET', `${base}/invoices?limit=10`) : null,
    optional('GET', usagePath),
  ]);
  state = fresh;
  plans = catalog?.plans ?? null;
  invoices = list?.invoices ?? null;
  meters = usage?.meters ?? null;
  render();
}

// After Checkout: ask for a sync (repairs a late webhook), then poll until the
// plan bought shows, for at most CONFIRM_LIMIT_MS.
async function confirmCheckout() {
  const outcome = new URLSearchParams(location.search).get('checkout');
  if (!outcome) return;
  history.replaceState(history.state, '', location.pathname);
  const wanted = sessionStorage.getItem(CHECKOUT_PLAN_KEY);
  sessionStorage.removeItem(CHECKOUT_PLAN_KEY);
  if (outcome === 'cancel') {
    notify('Checkout was cancelled. Nothing was charged.');
    return;
  }
  if (outcome !== 'success') return;
  const arrived = () => (wanted ? state.plan === wanted : PAYING.has(state.subscription_status) && state.plan !== 'free');
  const banner = byTestId('confirming');
  banner.hidden = false;
  try {
    const deadline = Date.now() + CONFIRM_LIMIT_MS;
    if (me.role === 'admin' && !arrived()) {
      const synced = await optional('POST', `${base}/sync`);
      if (synced) await load();
    }
    while (!arrived() && Date.now() < deadline) {
      await sleep(POLL_MS);
      await load();
    }
  } finally {
    banner.hidden = true;
  }
  if (arrived()) notify(`Payment received: you are on ${planName(state.plan)}.`);
  else notify('Stripe has not confirmed the payment yet. It can take a minute: reload this page to check.', 'warning');
}

function wire() {
  byTestId('manage-billing').addEventListener('click', (event) => busy(event.currentTarget, async () => {
    const { url } = await api('POST', `${base}/portal`, { return_url: location.origin + location.pathname });
    location.assign(url);
    return LEAVING;
  }));
  byTestId('cancel-subscription').addEventListener('click', (event) => {
    const button = event.currentTarget;
    busy(button, async () => {
      const name = planName(state.plan);
      const until = periodEnd();
      if (!(await confirmInPage(`Cancel ${name}? It stays active until ${until}, then this organisation moves to the free plan.`, button, 'Yes, cancel'))) return;
      await api('POST', `${base}/subscription/cancel`);
      await load();
      notify(`${name} ends on ${until}.`);
    });
  });
  byTestId('resume-subscription').addEventListener('click', (event) => busy(event.currentTarget, async () => {
    await api('POST', `${base}/subscription/resume`);
    await load();
    notify(`${planName(state.plan)} continues.`);
  }));
  byTestId('confirm-yes').addEventListener('click', () => answerPending?.(true));
  byTestId('confirm-no').addEventListener('click', () => answerPending?.(false));
  byId('confirm').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') answerPending?.(false);
  });
  byId('seats-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (me.role !== 'admin') return;
    busy(byTestId('seats-save'), async () => {
      const quantity = Number(byTestId('seats-input').value);
      if (!Number.isInteger(quantity) || quantity < 1) throw new ProblemError(422, 'Seats must be a whole number, at least 1.');
      await api('PUT', `${base}/seats`, { quantity });
      await load();
      notify(`You now have ${quantity} ${quantity === 1 ? 'seat' : 'seats'}.`);
    });
  });
  byId('profile-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (me.role !== 'admin') return;
    busy(byTestId('profile-save'), async () => {
      const name = byTestId('profile-name').value.trim();
      await api('PUT', `${base}/profile`, { billing_email: byTestId('profile-email').value.trim(), billing_name: name || undefined });
      await load();
      notify('Billing contact saved.');
    });
  });
}

async function main() {
  token = takeToken();
  try {
    if (!token) throw new ProblemError(401, 'You are not signed in. Sign in again from your app to manage billing.');
    me = await api('GET', '/v1/me');
    base = `/v1/tenants/${encodeURIComponent(me.tenant_id)}/billing`;
    byId('who').textContent = `${me.email ?? me.user_id} (${me.role}) · ${me.tenant_id}`;
    byId('who').hidden = false;
    wire();
    await load();
    byId('loading').hidden = true;
    await confirmCheckout();
  } catch (error) {
    showError(error);
  } finally {
    byId('loading').hidden = true;
  }
}

// Back from Stripe through the browser's history: start again, not from a
// frozen copy whose buttons are still disabled.
window.addEventListener('pageshow', (event) => {
  if (event.persisted) location.reload();
});

main();
