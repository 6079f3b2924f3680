//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod lifecycle;
pub mod metering;

use std::time::Duration;

use stripe_sim::{PriceSeed, SimConfig, SimHandle};

pub const KEY: &str = "sk_test_stripe_sim";
pub const PRICE: &str = "price_pro_monthly";

/// A simulator with one monthly price (`price_pro_monthly`, 25.00 USD).
pub fn start_sim() -> SimHandle {
    start_with(SimConfig::default())
}

pub fn start_with(mut config: SimConfig) -> SimHandle {
    config.prices.push(
        "price_pro_monthly:2500:usd:month"
            .parse::<PriceSeed>()
            .unwrap(),
    );
    SimHandle::start(config).expect("simulator starts")
}

pub fn client(sim: &SimHandle) -> stripe::Client {
    stripe::ClientBuilder::new(KEY)
        .url(sim.base_url())
        .build()
        .expect("client builds")
}

pub fn client_with_timeout(sim: &SimHandle, timeout: Duration) -> stripe::Client {
    stripe::ClientBuilder::new(KEY)
        .url(sim.base_url())
        .timeout(timeout)
        .build()
        .expect("client builds")
}

/// Raw HTTP for wire-level assertions.
pub struct Raw {
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: serde_json::Value,
}

impl Raw {
    pub fn new(sim: &SimHandle) -> Raw {
        Raw {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: sim.base_url(),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request answered");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Reply {
            status,
            headers,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(KEY),
        )
        .await
    }

    /// POST a raw urlencoded body, optionally with an idempotency key.
    pub async fn post(&self, path: &str, body: &str, key: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(
            self.http
                .delete(format!("{}{path}", self.base))
                .bearer_auth(KEY),
        )
        .await
    }

    /// Control plane (JSON, no auth).
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> Reply {
        self.send(
            self.http
                .request(method, format!("{}{path}", self.base))
                .json(&body),
        )
        .await
    }
}
