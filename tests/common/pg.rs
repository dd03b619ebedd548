//! A throwaway PostgreSQL cluster for the tests: made by `initdb` in a
//! temporary directory, started by `pg_ctl` on a free loopback port, one
//! per test process, with a fresh database for each test that asks.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the
//! server's commands run as `nobody` (through `runuser`) in a directory
//! that user owns. A watchdog process stops the server and removes the
//! directory once the test process is gone, however it ended.
//!
//! The server binaries are found in `COGRAPH_TEST_PG_BIN`, else in the
//! newest `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package),
//! else on the PATH. Without them the tests that need the cluster fail,
//! saying how to install it: they are never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Cluster {
    pub port: u16,
    bin: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The test process's cluster, started on first use. It does not fsync
/// (the tests stop hubs, never the server, so nothing rests on it).
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| Cluster::start(false))
}

/// A new, empty database in the test process's cluster; its URL.
pub fn fresh_database() -> String {
    cluster().create_database()
}

fn find_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("COGRAPH_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match on_path {
        Some(initdb) if !initdb.is_empty() => Path::new(&initdb).parent().unwrap().to_path_buf(),
        _ => panic!(
            "these tests need a PostgreSQL server: install Debian's `postgresql` package (apt-get install postgresql; .ci/run does) or set COGRAPH_TEST_PG_BIN to the directory holding initdb and pg_ctl"
        ),
    }
}

fn output(command: &str, args: &[&str]) -> String {
    let out = Command::new(command).args(args).output().unwrap();
    assert!(out.status.success(), "{command} {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Whether this process runs as root (PostgreSQL's servers will not).
fn is_root() -> bool {
    output("id", &["-u"]) == "0"
}

impl Cluster {
    /// A new cluster; `durable` keeps PostgreSQL's fsync on, as a
    /// benchmark must.
    pub fn start(durable: bool) -> Cluster {
        let bin = find_bin();
        let root = std::env::temp_dir().join(format!(
            "cograph-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&root).unwrap();
        let root_user = is_root();
        if root_user {
            let uid: u32 = output("id", &["-u", "nobody"]).parse().unwrap();
            let gid: u32 = output("id", &["-g", "nobody"]).parse().unwrap();
            std::os::unix::fs::chown(&root, Some(uid), Some(gid)).unwrap();
        }
        let server = |tool: &str| {
            let mut command = if root_user {
                let mut c = Command::new("runuser");
                c.args(["-u", "nobody", "--"]).arg(bin.join(tool));
                c
            } else {
                Command::new(bin.join(tool))
            };
            command.stdin(Stdio::null());
            command
        };
        let data = root.join("data");
        let initdb = server("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "cograph",
                "--auth=trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .unwrap();
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        // The watchdog: once this process is gone, stop the server at once
        // and remove its files. (It outlives this process; the thread only
        // reaps it should it end first.)
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
                 kill -QUIT $(head -1 '{data}/postmaster.pid' 2>/dev/null) 2>/dev/null; \
                 sleep 2; rm -rf '{root}'",
                pid = std::process::id(),
                data = data.display(),
                root = root.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::spawn(move || watchdog.wait());
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let fsync = if durable { "on" } else { "off" };
            let options = format!(
                "-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=400 \
                 -c fsync={fsync} -c full_page_writes={fsync} -c shared_buffers=64MB",
                root = root.display()
            );
            let started = server("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(root.join("server.log"))
                .args(["-w", "-t", "60", "start"])
                .output()
                .unwrap();
            if started.status.success() {
                return Cluster { port, bin };
            }
            last_error = std::fs::read_to_string(root.join("server.log")).unwrap_or_default();
        }
        panic!("the test PostgreSQL server did not start:\n{last_error}");
    }

    /// The URL of database `name` in this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://cograph@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new, empty database; its URL.
    pub fn create_database(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "cograph",
            ])
            .arg(&name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "createdb {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }

    /// Runs one SQL statement (or several, `;`-separated) in database
    /// `url` with psql; its output, unaligned and without headers.
    pub fn sql(&self, url: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

use std::os::unix::process::CommandExt;
