//! Throwaway PostgreSQL for the test run.
//!
//! Without `TEST_DATABASE_URL`, the first test that needs PostgreSQL starts a
//! private cluster from the local server binaries (as the `postgres` user when
//! the tests run as root, because `initdb` refuses root), on a free port and a
//! temporary directory that a watchdog removes when the test process exits.
//! Each test gets its own database cloned from a migrated template, which is
//! far quicker than migrating per test. With neither binaries nor
//! `TEST_DATABASE_URL`, tests fail with a message that says what to do.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

/// A PostgreSQL server the tests may create databases on.
pub struct PgServer {
    /// URL of a maintenance database (`postgres`) with rights to CREATE DATABASE.
    admin_url: String,
    template: String,
    create_lock: Mutex<()>,
    _cluster: Option<PgCluster>,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();

/// The run's shared server, started (and its template migrated) on first use.
pub fn server() -> &'static PgServer {
    SERVER.get_or_init(|| {
        let (admin_url, cluster) = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => (url, None),
            _ => {
                let cluster = PgCluster::start().unwrap_or_else(|error| panic!("{error}"));
                (cluster.url("postgres"), Some(cluster))
            }
        };
        let template = format!("tb_template_{}", std::process::id());
        let server = PgServer {
            admin_url,
            template,
            create_lock: Mutex::new(()),
            _cluster: cluster,
        };
        server.prepare_template();
        server
    })
}

impl PgServer {
    fn admin(&self) -> PgConnection {
        PgConnection::establish(&self.admin_url).unwrap_or_else(|error| {
            panic!(
                "cannot connect to the test PostgreSQL ({error}). Set TEST_DATABASE_URL to a \
                 server where this user may CREATE DATABASE, or unset it to let the tests \
                 start their own from the local PostgreSQL binaries."
            )
        })
    }

    fn prepare_template(&self) {
        let mut admin = self.admin();
        // One statement per call: PostgreSQL runs a multi-statement string as one
        // transaction, and CREATE/DROP DATABASE refuse to run inside one.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {}", self.template))
            .expect("drop a stale template database");
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'",
                self.template
            ))
            .expect("create the template database");
        let url = self.url_for(&self.template);
        let mut conn =
            tenant_billing::db::DbConnection::Postgresql(PgConnection::establish(&url).unwrap());
        tenant_billing::db::migrations::run_pending(&mut conn).expect("migrate the template");
    }

    /// The URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        let (base, _) = self.admin_url.rsplit_once('/').expect(
            "TEST_DATABASE_URL must name a database, e.g. postgres://user@host:5432/postgres",
        );
        let query = self
            .admin_url
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        format!("{base}/{name}{query}")
    }

    /// A new, migrated database for one test.
    pub fn migrated_database(&self) -> String {
        self.create_database(Some(&self.template))
    }

    /// A new database with no tables (for migration tests).
    pub fn empty_database(&self) -> String {
        self.create_database(None)
    }

    fn create_database(&self, template: Option<&str>) -> String {
        let name = format!("tb_test_{}", uuid::Uuid::new_v4().simple());
        let template = template.unwrap_or("template0");
        // Cloning needs the template idle; one clone at a time keeps it so.
        let _guard = self.create_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.admin()
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .expect("create a test database");
        self.url_for(&name)
    }
}

/// A private cluster: `initdb`, `pg_ctl start/stop`, removed when dropped or
/// when the owning process dies.
pub struct PgCluster {
    bin_dir: PathBuf,
    root: PathBuf,
    port: u16,
    run_as_postgres: bool,
}

impl PgCluster {
    pub fn start() -> Result<PgCluster, String> {
        let bin_dir = find_bin_dir().ok_or_else(|| {
            "PostgreSQL tests need a server: set TEST_DATABASE_URL=postgres://user@host:port/postgres, \
             or install the PostgreSQL server binaries (initdb, pg_ctl; e.g. `apt-get install postgresql`) \
             so that the tests can start a throwaway one (looked in PG_BIN_DIR, `pg_config --bindir`, \
             /usr/lib/postgresql/*/bin)"
                .to_owned()
        })?;
        let run_as_postgres = is_root();
        let root = tempfile::Builder::new()
            .prefix("tenant-billing-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?
            .keep();
        if run_as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root))?;
        }
        let port = free_port();
        let cluster = PgCluster {
            bin_dir,
            root,
            port,
            run_as_postgres,
        };
        cluster.spawn_watchdog();
        cluster.run_pg(
            "initdb",
            &[
                "-D",
                &cluster.data_dir(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        cluster.start_server()?;
        Ok(cluster)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts (or restarts) the server on the same port and data directory.
    pub fn start_server(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400 -c shared_buffers=64MB",
            self.port,
            self.root.display()
        );
        let log = format!("{}/server.log", self.root.display());
        self.run_pg(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    /// Stops the server: clients see refused connections, as in an outage.
    /// `fast`, not `immediate`: with `synchronous_commit=off` an immediate stop
    /// loses the last commits (it lost the migrations just applied).
    pub fn stop_server(&self) -> Result<(), String> {
        self.run_pg(
            "pg_ctl",
            &["-D", &self.data_dir(), "-m", "fast", "-w", "stop"],
        )
    }

    fn data_dir(&self) -> String {
        format!("{}/data", self.root.display())
    }

    fn run_pg(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let binary = self.bin_dir.join(program);
        let mut command = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        command.args(args).current_dir(&self.root);
        run(&mut command)
    }

    /// Stops the server and removes its directory once this process is gone,
    /// even if the test binary is killed or panics.
    fn spawn_watchdog(&self) {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        let runas = if self.run_as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {runas}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {root}",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            data = self.data_dir(),
            root = self.root.display(),
        );
        let _ = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.stop_server();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed: {}{}",
            command.get_program(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|dir| has_initdb(dir))
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A port the OS reports free now; the server binds it a moment later.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}
