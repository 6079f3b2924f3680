//! `cargo run` as a newcomer meets it: the built binary with no configuration
//! at all (development defaults: a SQLite file under `data/`, the in-process
//! Stripe simulator), on port 0 instead of 8080 so that tests can run side by
//! side. Its log is collected for the tests to read.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::binary;

pub struct DevServer {
    process: Child,
    log: Arc<Mutex<String>>,
    /// The ready link `serve` logged (`http://127.0.0.1:PORT/settings/billing#token=…`).
    pub link: String,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    dir: tempfile::TempDir,
}

/// `tenant-billing` with an empty environment but PATH, in `dir`.
fn bare(dir: &std::path::Path) -> Command {
    let mut command = Command::new(binary());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir)
        .stdin(Stdio::null());
    command
}

impl DevServer {
    /// Starts `serve` with `BIND_ADDR=127.0.0.1:0` plus `env`, and waits for
    /// the ready link in its log.
    pub fn start(env: &[(&str, &str)]) -> DevServer {
        let dir = tempfile::tempdir().unwrap();
        let mut command = bare(dir.path());
        command
            .env("BIND_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut process = command.spawn().expect("start tenant-billing");
        let stderr = process.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("billing settings page") {
                    let _ = sender.send(link_in(&line));
                }
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let link = match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(link)) => link,
            _ => {
                let _ = process.kill();
                panic!(
                    "no ready link in the log of `serve`:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        let origin = link
            .split("/settings/")
            .next()
            .expect("an origin")
            .to_owned();
        DevServer {
            process,
            log,
            link,
            origin,
            dir,
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `tenant-billing token --tenant acme --role ROLE` against the same
    /// (default) configuration.
    pub fn token(&self, role: &str) -> String {
        let output = bare(self.dir.path())
            .args(["token", "--tenant", "acme", "--role", role])
            .output()
            .expect("run tenant-billing token");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The first `http://…` in a log line, up to whitespace or a colour code.
fn link_in(line: &str) -> Option<String> {
    let start = line.find("http://")?;
    let link: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
        .collect();
    Some(link)
}
