//! A throwaway local PostgreSQL server: for the tests and the example, where no database
//! is given.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use postgres::{Client, NoTls};

use crate::Error;

/// A PostgreSQL server in a temporary data directory, on a free port, listening on a
/// Unix socket in that directory only, with durability off (`fsync`,
/// `synchronous_commit`, `full_page_writes`: it is thrown away). Stopped (immediate
/// shutdown) and deleted when dropped, also when a test panics. Needs PostgreSQL's
/// server binaries (`initdb`, `pg_ctl`, `postgres`): `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else the `PATH`. As root (which PostgreSQL refuses),
/// they run as the `postgres` system user through `runuser`.
pub struct TempServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    stopped: bool,
}

fn find_bin() -> PathBuf {
    if let Some(b) = std::env::var_os("PG_BIN") {
        return PathBuf::from(b);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_default()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl TempServer {
    /// Creates the data directory (`initdb`) and starts the server (`pg_ctl start`,
    /// waiting until it accepts connections). About a second.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the step that failed (binaries not found, `initdb` or
    /// `pg_ctl` failing, with their output).
    pub fn start() -> Result<TempServer, Error> {
        let bin = find_bin();
        let as_postgres = is_root();
        let base = std::env::temp_dir().join(format!(
            "relgraph-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let io = |step: &str, e: std::io::Error| Error::Io(format!("{step}: {e}"));
        std::fs::create_dir_all(base.join("data")).map_err(|e| io("create the data folder", e))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| io("find a free port", e))?;
        let mut server = TempServer {
            dir: base,
            bin,
            port,
            as_postgres,
            stopped: true,
        };
        if as_postgres {
            server.run("chmod", &["755".as_ref(), server.dir.as_os_str()], false)?;
            server.run(
                "chown",
                &["-R".as_ref(), "postgres".as_ref(), server.dir.as_os_str()],
                false,
            )?;
        }
        let data = server.dir.join("data");
        let initdb = server.bin.join("initdb");
        server.run(
            initdb.to_str().unwrap_or("initdb"),
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
            true,
        )?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=50 -c shared_buffers=64MB",
            server.dir.display()
        );
        let pg_ctl = server.bin.join("pg_ctl");
        let log = server.dir.join("log");
        server.run(
            pg_ctl.to_str().unwrap_or("pg_ctl"),
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                opts.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
            true,
        )?;
        server.stopped = false;
        Ok(server)
    }

    fn run(
        &self,
        program: &str,
        args: &[&std::ffi::OsStr],
        as_postgres: bool,
    ) -> Result<(), Error> {
        let mut cmd = if as_postgres && self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Io(format!("could not run {program}: {e}")))?;
        if !out.status.success() {
            return Err(Error::Io(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// The connection string of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            self.dir.display(),
            self.port
        )
    }

    /// The folder holding the data directory and the socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Connects to database `db`.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`].
    pub fn connect(&self, db: &str) -> Result<Client, Error> {
        Ok(Client::connect(&self.url(db), NoTls)?)
    }

    /// Creates a fresh database `db` and connects to it.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] (for one, if `db` exists).
    pub fn create_db(&self, db: &str) -> Result<Client, Error> {
        self.connect("postgres")?
            .batch_execute(&format!("CREATE DATABASE {}", crate::mapping::q(db)))?;
        self.connect(db)
    }

    /// Stops the server (immediate shutdown) and deletes its folder.
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let pg_ctl = self.bin.join("pg_ctl");
            let data = self.dir.join("data");
            let _ = self.run(
                pg_ctl.to_str().unwrap_or("pg_ctl"),
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-w".as_ref(),
                    "stop".as_ref(),
                ],
                true,
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        self.stop();
    }
}
