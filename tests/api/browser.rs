//! Headless Chromium over WebDriver, for the settings page tests.
//!
//! A small W3C WebDriver client on reqwest rather than a crate (fantoccini,
//! thirtyfour): the tests use a dozen commands, two of them ChromeDriver's own
//! (the performance log and Chrome DevTools commands for exact viewports and
//! full-page screenshots), and the crates would add the `webdriver` crate's
//! tree to every test build on this 2-core machine for no gain.
//!
//! Each `Browser` runs its own chromedriver (on a port it picks itself) in its
//! own process group, with a fresh profile; dropping it, also while a test
//! panics, ends the session and then that process group.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const INSTALL_HINT: &str = "the browser tests need Debian's chromium and chromium-driver on PATH: run scripts/install-browser.sh";

/// One request the page made, from Chrome's performance log.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub referer: Option<String>,
}

/// One Chromium at a time in this process: the machine has two cores, and
/// the API tests run beside the browser tests.
static ONE_AT_A_TIME: Semaphore = Semaphore::const_new(1);

pub struct Browser {
    driver: Child,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
    _turn: SemaphorePermit<'static>,
}

/// Chromium and ChromeDriver on `path` (a PATH value), or the sentence that
/// says how to get them: a missing browser fails the test, never skips it.
pub fn find_tools(path: &std::ffi::OsStr) -> Result<(PathBuf, PathBuf), &'static str> {
    let find = |names: &[&str]| {
        std::env::split_paths(path)
            .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    };
    match (
        find(&["chromium", "chromium-browser"]),
        find(&["chromedriver"]),
    ) {
        (Some(chromium), Some(chromedriver)) => Ok((chromium, chromedriver)),
        _ => Err(INSTALL_HINT),
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at a 1280×800 viewport.
    pub async fn start() -> Browser {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let (chromium, chromedriver) = find_tools(&path).unwrap_or_else(|hint| panic!("{hint}"));
        let turn = ONE_AT_A_TIME.acquire().await.expect("never closed");
        let profile = tempfile::tempdir().expect("a profile directory");
        let scratch = profile.path().join("tmp");
        std::fs::create_dir(&scratch).expect("a temporary directory");
        let mut driver = Command::new(chromedriver);
        driver
            .arg("--port=0")
            // Chromium's own temporary files go with the profile, removed on drop.
            .env("TMPDIR", &scratch)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut driver, 0);
        let mut driver = driver.spawn().expect(INSTALL_HINT);
        let port = read_port(&mut driver);
        let http = reqwest::Client::new();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-extensions",
                    "--window-size=1280,800", "--lang=en-US",
                    format!("--user-data-dir={}", profile.path().join("profile").display()),
                ],
            },
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
        }}});
        let root = format!("http://127.0.0.1:{port}");
        let created = http
            .post(format!("{root}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers");
        let created: Value = created.json().await.expect("a WebDriver answer");
        let Some(session_id) = created["value"]["sessionId"].as_str() else {
            let _ = driver.kill();
            panic!("chromedriver could not start Chromium: {created}");
        };
        let browser = Browser {
            session: format!("{root}/session/{session_id}"),
            driver,
            http,
            _profile: profile,
            _turn: turn,
        };
        browser.set_viewport(1280, 800).await;
        browser
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.expect("chromedriver answers");
        let body: Value = response.json().await.expect("a WebDriver answer");
        if let Some(error) = body["value"]["error"].as_str() {
            panic!(
                "WebDriver {method} {path}: {error}: {}",
                body["value"]["message"]
            );
        }
        body["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params}))
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        let value = self.command(reqwest::Method::GET, "/url", None).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Polls `predicate` (a function body returning a boolean, `arguments`
    /// holding `args`) until it is true.
    pub async fn wait_js(&self, what: &str, predicate: &str, args: Value, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.js(predicate, args.clone()).await.as_bool() == Some(true) {
                return;
            }
            if Instant::now() > deadline {
                let page = self
                    .js(
                        "return location.href + '\\n' + document.body.innerText",
                        json!([]),
                    )
                    .await;
                panic!(
                    "waited {limit:?} for {what}; the page shows:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the element with `data-testid` is rendered and visible.
    pub async fn wait_visible(&self, test_id: &str, limit: Duration) {
        let predicate = "const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
                         return !!e && e.checkVisibility();";
        self.wait_js(
            &format!("{test_id} to show"),
            predicate,
            json!([test_id]),
            limit,
        )
        .await;
    }

    /// Waits until the text of `data-testid` contains `text`.
    pub async fn wait_text(&self, test_id: &str, text: &str, limit: Duration) {
        let predicate = "const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
                         return !!e && e.checkVisibility() && e.textContent.includes(arguments[1]);";
        let what = format!("{test_id} to read {text:?}");
        self.wait_js(&what, predicate, json!([test_id, text]), limit)
            .await;
    }

    /// Whether `data-testid` is rendered and visible now.
    pub async fn visible(&self, test_id: &str) -> bool {
        let script = "const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
                      return !!e && e.checkVisibility();";
        self.js(script, json!([test_id])).await.as_bool() == Some(true)
    }

    /// The visible text of `data-testid` ("" when absent or hidden).
    pub async fn text(&self, test_id: &str) -> String {
        let script = "const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
                      return e && e.checkVisibility() ? e.innerText : '';";
        let value = self.js(script, json!([test_id])).await;
        value.as_str().unwrap_or_default().trim().to_owned()
    }

    /// Every visible `data-testid` on the page, in document order.
    pub async fn visible_test_ids(&self) -> Vec<String> {
        let script = "return [...document.querySelectorAll('[data-testid]')] \
                      .filter((e) => e.checkVisibility()).map((e) => e.dataset.testid);";
        let value = self.js(script, json!([])).await;
        serde_json::from_value(value).unwrap_or_default()
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element reference in {found}"))
            .to_owned()
    }

    /// Clicks `data-testid` as a user would (WebDriver checks that it is
    /// visible and not covered).
    pub async fn click(&self, test_id: &str) {
        let element = self.element(&format!("[data-testid=\"{test_id}\"]")).await;
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// Clicks the element matching a CSS selector (pages of other origins).
    pub async fn click_css(&self, css: &str) {
        let element = self.element(css).await;
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// A real double click (two presses of the mouse) on `data-testid`.
    pub async fn double_click(&self, test_id: &str) {
        let element = self.element(&format!("[data-testid=\"{test_id}\"]")).await;
        let origin = json!({ ELEMENT_KEY: element });
        let press = [
            json!({"type": "pointerDown", "button": 0}),
            json!({"type": "pointerUp", "button": 0}),
        ];
        let mut actions = vec![json!({"type": "pointerMove", "origin": origin, "x": 0, "y": 0})];
        actions.extend(press.iter().cloned());
        actions.extend(press.iter().cloned());
        self.post(
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": actions}]}),
        )
        .await;
    }

    /// Types `text` into the focused element (WebDriver key codes allowed:
    /// "\u{E004}" is Tab, "\u{E007}" Enter).
    pub async fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for key in text.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// Replaces the value of the input `data-testid` with `text`, by typing.
    pub async fn fill(&self, test_id: &str, text: &str) {
        let element = self.element(&format!("[data-testid=\"{test_id}\"]")).await;
        self.post(&format!("/element/{element}/clear"), json!({}))
            .await;
        self.post(&format!("/element/{element}/value"), json!({"text": text}))
            .await;
    }

    /// An exact CSS viewport (the window cannot be narrower than 500 px
    /// headless); `mobile` applies the page's viewport meta tag as a phone would.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500}),
        )
        .await;
    }

    /// Writes a full-page PNG of the current page at `width`×`height` to
    /// `target/e2e/NAME-WxH.png`, then restores the 1280×800 viewport.
    pub async fn screenshot(&self, name: &str, width: u32, height: u32) -> PathBuf {
        self.set_viewport(width, height).await;
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        let path = e2e_dir().join(format!("{name}-{width}x{height}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        self.set_viewport(1280, 800).await;
        path
    }

    /// Screenshots of the current state at 1280×800 and 375×812.
    pub async fn screenshots(&self, name: &str) {
        self.screenshot(name, 1280, 800).await;
        self.screenshot(name, 375, 812).await;
    }

    /// Whether the document scrolls sideways at a `width` px wide viewport.
    pub async fn scrolls_sideways_at(&self, width: u32, height: u32) -> bool {
        self.set_viewport(width, height).await;
        let value = self
            .js(
                "const s = document.scrollingElement; return s.scrollWidth > s.clientWidth;",
                json!([]),
            )
            .await;
        self.set_viewport(1280, 800).await;
        value.as_bool().expect("a boolean")
    }

    /// The requests the browser sent since the last call (the first call
    /// includes Chromium's own start-up pages, so call it once before).
    pub async fn requests(&self) -> Vec<Request> {
        let entries = self.post("/se/log", json!({"type": "performance"})).await;
        let mut requests = Vec::new();
        for entry in entries.as_array().into_iter().flatten() {
            let message: Value =
                serde_json::from_str(entry["message"].as_str().unwrap_or("{}")).unwrap_or_default();
            if message["message"]["method"] != "Network.requestWillBeSent" {
                continue;
            }
            let request = &message["message"]["params"]["request"];
            let referer = request["headers"]
                .as_object()
                .and_then(|headers| {
                    headers
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case("referer"))
                })
                .and_then(|(_, value)| value.as_str())
                .map(str::to_owned);
            requests.push(Request {
                url: request["url"].as_str().unwrap_or_default().to_owned(),
                referer,
            });
        }
        requests
    }

    /// The browser console since the last call (CSP violations land here).
    pub async fn console(&self) -> Vec<String> {
        let entries = self.post("/se/log", json!({"type": "browser"})).await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Ends the session (Chromium quits). On a thread of its own with its own
    /// runtime, so that it works in `drop`, also while unwinding.
    fn end_session(&self) {
        let url = self.session.clone();
        let ended = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let client = reqwest::Client::new();
                let _ = client
                    .delete(url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
            });
        });
        let _ = ended.join();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.end_session();
        // Whatever is left of chromedriver and the Chromium it started: the
        // process group this harness created for them.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
    }
}

/// Reads chromedriver's "started successfully on port N." line.
fn read_port(driver: &mut Child) -> u16 {
    let stdout = driver.stdout.take().expect("chromedriver's stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(rest) = line.split("on port ").nth(1) {
                if line.contains("started successfully") {
                    let _ = sender.send(rest.trim_end_matches('.').trim().parse::<u16>().ok());
                    break;
                }
            }
        }
        // Keep draining so that chromedriver never blocks on a full pipe.
        for _ in lines {}
    });
    match receiver.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(port)) => port,
        _ => {
            let _ = driver.kill();
            panic!("chromedriver did not report its port; {INSTALL_HINT}");
        }
    }
}

/// `target/e2e/`, beside the test binaries (honours CARGO_TARGET_DIR).
pub fn e2e_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_tenant-billing"));
    let target = binary
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/tenant-billing");
    let dir = target.join("e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    dir
}
