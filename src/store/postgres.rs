//! The PostgreSQL backend: the same tables as SQLite's, in the schema
//! `cograph` of the database `--store` names. The statements are in
//! `postgres/schema.rs`.
//!
//! The `postgres` client runs a small runtime of its own and must not be
//! used, or dropped, inside an async task. So every client lives on a
//! thread of its own from connecting to dropping: the writer's on the
//! store's writer thread (it connects there), a reader's on a thread that
//! runs the calls sent to it (`OnThread`). A caller anywhere, async or
//! not, only waits for an answer on a channel, as it would wait for a
//! SQLite read.
//!
//! One hub per database, for now: the writer holds a session advisory lock
//! for as long as its connection lives (PostgreSQL drops it when a dead
//! hub's connection goes), and a second hub is refused with
//! `DatabaseInUse`.

mod schema;

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::{Client, NoTls};

use super::backend::{ConnectWriter, Reader, Writer};
use super::{CommitRecord, Job, OperatorEvent, PostgresUrl, Recovered, StoreError};
use crate::graph::{ContentHash, Function, FunctionId, Revision};

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a new owner waits for the database's owner lock before it
/// says the database is in use.
const OWNER_WAIT: Duration = Duration::from_secs(3);

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        StoreError::Postgres(describe(&e))
    }
}

/// A client error in words: a server error's severity, code and message
/// (and detail), else the error and its causes.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn connect(url: &PostgresUrl) -> Result<Client, StoreError> {
    let mut config = url.config()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let mut client = config.connect(NoTls).map_err(|e| StoreError::Location {
        location: url.to_string(),
        reason: format!("cannot connect: {}", describe(&e)),
    })?;
    schema::enter(&mut client)?;
    Ok(client)
}

/// The owner's two sides: a function that connects the writer (run on the
/// writer thread), and a reader.
pub(super) fn open(url: &PostgresUrl) -> Result<(ConnectWriter, Box<dyn Reader>), StoreError> {
    let reader = OnThread::connect(url.clone())?;
    let url = url.clone();
    let connect_writer: ConnectWriter = Box::new(move || {
        let mut client = connect(&url)?;
        // A hub that just closed or died may still hold the lock for a
        // moment, until the server has seen its connection go.
        let deadline = std::time::Instant::now() + OWNER_WAIT;
        while !schema::try_own(&mut client)? {
            if std::time::Instant::now() >= deadline {
                return Err(StoreError::DatabaseInUse {
                    location: url.to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        schema::migrate(&mut client)?;
        let statements = schema::Statements::prepare(&mut client)?;
        Ok(Box::new(PgWriter { client, statements }) as Box<dyn Writer>)
    });
    Ok((connect_writer, Box::new(reader)))
}

/// A reader of a store some hub may own, refused if the database holds no
/// store this build reads.
pub(super) fn open_reader(url: &PostgresUrl) -> Result<Box<dyn Reader>, StoreError> {
    let mut reader = OnThread::connect(url.clone())?;
    let shown = url.to_string();
    reader.call(move |c| schema::check_readable(c, &shown))?;
    Ok(Box::new(reader))
}

struct PgWriter {
    client: Client,
    statements: schema::Statements,
}

impl Drop for PgWriter {
    /// Gives up the owner lock at once (it would go with the connection,
    /// but only once the server has seen the connection close), so that a
    /// store reopened right after closing finds it free.
    fn drop(&mut self) {
        let _ = schema::disown(&mut self.client);
    }
}

impl Writer for PgWriter {
    fn bump_epoch(&mut self) -> Result<u64, StoreError> {
        schema::bump_epoch(&mut self.client)
    }

    fn write_batch(
        &mut self,
        jobs: &[Job],
        injected: Option<StoreError>,
    ) -> Result<Vec<u64>, StoreError> {
        schema::write_batch(&mut self.client, &self.statements, jobs, injected)
    }
}

type Call = Box<dyn FnOnce(&mut Client) + Send>;

/// A client on a thread of its own, running the calls sent to it in turn,
/// connected again when the server has closed it.
struct OnThread {
    calls: Option<mpsc::Sender<Call>>,
    thread: Option<JoinHandle<()>>,
}

impl OnThread {
    fn connect(url: PostgresUrl) -> Result<OnThread, StoreError> {
        let (calls, inbox) = mpsc::channel::<Call>();
        let (ready_tx, ready) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("cograph-store-reader".into())
            .spawn(move || match connect(&url) {
                Ok(mut client) => {
                    let _ = ready_tx.send(Ok(()));
                    while let Ok(call) = inbox.recv() {
                        // Reads are safe to repeat: a connection the server
                        // closed (a restart, an operator) is made again
                        // before the next one.
                        if client.is_closed() {
                            match connect(&url) {
                                Ok(fresh) => client = fresh,
                                Err(e) => {
                                    tracing::warn!(error = %e, "cannot reconnect a store reader");
                                }
                            }
                        }
                        call(&mut client);
                    }
                }
                Err(e) => drop(ready_tx.send(Err(e))),
            })
            .map_err(|e| StoreError::Postgres(format!("cannot start a reader thread: {e}")))?;
        let connected = ready
            .recv()
            .unwrap_or_else(|_| Err(StoreError::Postgres("the reader thread stopped".into())));
        let mut on_thread = OnThread {
            calls: Some(calls),
            thread: Some(thread),
        };
        match connected {
            Ok(()) => Ok(on_thread),
            Err(e) => {
                on_thread.stop();
                Err(e)
            }
        }
    }

    fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = mpsc::channel();
        let call: Call = Box::new(move |client| drop(answer.send(f(client))));
        let stopped = || StoreError::Postgres("the reader thread stopped".into());
        self.calls
            .as_ref()
            .ok_or_else(stopped)?
            .send(call)
            .map_err(|_| stopped())?;
        answered.recv().map_err(|_| stopped())?
    }

    fn stop(&mut self) {
        self.calls.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for OnThread {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Reader for OnThread {
    fn version(&mut self, hash: &ContentHash) -> Result<Option<Function>, StoreError> {
        let hash = *hash;
        self.call(move |c| schema::version(c, &hash))
    }

    fn history(
        &mut self,
        function: Option<FunctionId>,
        before: Option<Revision>,
        limit: usize,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        self.call(move |c| schema::history(c, function, before, limit))
    }

    fn commits_between(
        &mut self,
        function: FunctionId,
        after: Revision,
        upto: Revision,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        self.call(move |c| schema::commits_between(c, function, after, upto))
    }

    fn revision_of_version(
        &mut self,
        function: FunctionId,
        hash: &ContentHash,
    ) -> Result<Option<Revision>, StoreError> {
        let hash = *hash;
        self.call(move |c| schema::revision_of_version(c, function, &hash))
    }

    fn version_at(
        &mut self,
        function: FunctionId,
        revision: Revision,
    ) -> Result<Option<ContentHash>, StoreError> {
        self.call(move |c| schema::version_at(c, function, revision))
    }

    fn all_commits(&mut self) -> Result<Vec<CommitRecord>, StoreError> {
        self.call(schema::all_commits)
    }

    fn commit_for_request(
        &mut self,
        agent_name: &str,
        request_id: &str,
    ) -> Result<Option<CommitRecord>, StoreError> {
        let (agent_name, request_id) = (agent_name.to_string(), request_id.to_string());
        self.call(move |c| schema::commit_for_request(c, &agent_name, &request_id))
    }

    fn events(
        &mut self,
        function: Option<FunctionId>,
        limit: usize,
    ) -> Result<Vec<OperatorEvent>, StoreError> {
        self.call(move |c| schema::events(c, function, limit))
    }

    fn recover(&mut self, epoch: u64) -> Result<Recovered, StoreError> {
        self.call(move |c| schema::recover(c, epoch))
    }
}
