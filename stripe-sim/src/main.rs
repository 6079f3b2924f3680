//! `stripe-sim` binary: the simulator on a TCP port, configured from the command line.

use std::io::Write;

use clap::Parser;
use stripe_sim::{
    parse_seller_country, CurrencyOptionSeed, FailedPaymentAction, MeteredPriceSeed, PriceSeed,
    SimConfig, SimHandle, DEFAULT_SELLER_COUNTRY, DEFAULT_WEBHOOK_SECRET,
};

/// Offline, stateful Stripe API simulator.
#[derive(Debug, Parser)]
#[command(name = "stripe-sim", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 12111)]
    port: u16,
    /// Endpoint that receives signed webhook deliveries.
    #[arg(long)]
    webhook_url: Option<String>,
    /// Secret for the Stripe-Signature header.
    #[arg(long, default_value = DEFAULT_WEBHOOK_SECRET)]
    webhook_secret: String,
    /// Added latency for every /v1 request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// How long new objects stay invisible to search.
    #[arg(long, default_value_t = 0)]
    search_lag_ms: u64,
    /// Requests per second allowed on /v1 (429 beyond).
    #[arg(long)]
    rate_limit: Option<u32>,
    /// A price present from the start: ID:AMOUNT:CURRENCY:INTERVAL (repeatable).
    #[arg(long = "price")]
    prices: Vec<PriceSeed>,
    /// A metered price and its meter: ID:AMOUNT:CURRENCY:INTERVAL:EVENT_NAME[:INCLUDED] (repeatable).
    #[arg(long = "metered-price")]
    metered_prices: Vec<MeteredPriceSeed>,
    /// How long after a period ends an invoice billing usage stays draft (seconds).
    #[arg(long, default_value_t = 3600)]
    invoice_grace_seconds: u64,
    /// Base delay of webhook retries (doubles on each retry).
    #[arg(long, default_value_t = 500)]
    webhook_retry_base_ms: u64,
    /// After the last failed payment retry: cancel the subscription or mark it unpaid.
    #[arg(long, default_value = "cancel", value_name = "cancel|unpaid")]
    after_failed_payments: FailedPaymentAction,
    /// Where simulator time starts, in Unix seconds (default: now); may be
    /// in the past, like a Stripe test clock's frozen_time.
    #[arg(long)]
    clock_start: Option<i64>,
    /// A seeded price's amount in another currency: PRICE_ID:CURRENCY:AMOUNT (repeatable).
    #[arg(long = "price-currency", value_name = "ID:CURRENCY:AMOUNT")]
    price_currency_options: Vec<CurrencyOptionSeed>,
    /// Where the simulated seller is established (ISO country code); decides
    /// domestic VAT and reverse charges under automatic tax.
    #[arg(long, default_value = DEFAULT_SELLER_COUNTRY, value_parser = parse_seller_country)]
    seller_country: String,
}

fn main() {
    let args = Args::parse();
    let config = SimConfig {
        port: args.port,
        webhook_url: args.webhook_url,
        webhook_secret: args.webhook_secret,
        latency_ms: args.latency_ms,
        search_lag_ms: args.search_lag_ms,
        rate_limit: args.rate_limit,
        prices: args.prices,
        metered_prices: args.metered_prices,
        invoice_grace_seconds: args.invoice_grace_seconds,
        webhook_retry_base_ms: args.webhook_retry_base_ms,
        after_failed_payments: args.after_failed_payments,
        clock_start: args.clock_start,
        seller_country: args.seller_country,
        price_currency_options: args.price_currency_options,
    };
    let sim = match SimHandle::start(config) {
        Ok(sim) => sim,
        Err(err) => {
            eprintln!("stripe-sim: cannot start: {err}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", sim.base_url());
    let _ = out.flush();
    drop(out);
    // The server runs on its own thread until the process is killed.
    loop {
        std::thread::park();
    }
}
