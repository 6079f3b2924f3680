//! A stand-in identity provider: serves a JWKS on a local port whose keys,
//! `Cache-Control` and availability the test controls, and counts fetches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

struct State {
    keys: Mutex<Vec<Value>>,
    cache_control: Mutex<String>,
    available: AtomicBool,
    fetches: AtomicU64,
}

pub struct JwksServer {
    pub url: String,
    state: Arc<State>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn serve(state: web::Data<State>) -> HttpResponse {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    if !state.available.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().body("identity provider down");
    }
    let keys = state.keys.lock().unwrap().clone();
    let cache_control = state.cache_control.lock().unwrap().clone();
    HttpResponse::Ok()
        .insert_header(("cache-control", cache_control))
        .json(json!({ "keys": keys }))
}

impl JwksServer {
    /// Serves `keys` at `http://127.0.0.1:PORT/.well-known/jwks.json`.
    pub fn start(keys: Vec<Value>) -> JwksServer {
        let state = Arc::new(State {
            keys: Mutex::new(keys),
            cache_control: Mutex::new("public, max-age=600".into()),
            available: AtomicBool::new(true),
            fetches: AtomicU64::new(0),
        });
        let data = web::Data::from(state.clone());
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/.well-known/jwks.json", web::get().to(serve))
                })
                .workers(1)
                .disable_signals()
                .bind("127.0.0.1:0")
                .unwrap();
                let port = server.addrs()[0].port();
                let server = server.run();
                sender.send((port, server.handle())).unwrap();
                let _ = server.await;
            })
        });
        let (port, handle) = receiver.recv().unwrap();
        JwksServer {
            url: format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
            state,
            handle,
            thread: Some(thread),
        }
    }

    pub fn publish(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    pub fn set_available(&self, available: bool) {
        self.state.available.store(available, Ordering::SeqCst);
    }

    /// How many times the key set was requested (answered or not).
    pub fn fetches(&self) -> u64 {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let _ = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(false));
        })
        .join();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
