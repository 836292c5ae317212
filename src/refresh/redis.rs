//! The Redis store (feature `redis`): records shared by replicas and Lambda instances.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, RedisError};
use tokio::sync::OnceCell;

use super::store::{RecordStore, StoreError, StoreFuture};

/// A [`RecordStore`] in Redis, or any service speaking its protocol (Valkey, ElastiCache,
/// MemoryDB, Upstash): what replicas behind a load balancer and Lambda instances share.
///
/// Built from a URL, `redis://[[USER]:PASSWORD@]HOST:PORT[/DB]` or `rediss://...` for TLS
/// (rustls, webpki roots). It connects on first use, not at construction, so a bridge starts
/// while its store is down; then the [`redis`] crate's tokio connection manager keeps one
/// multiplexed connection and reconnects after a fault. Each command is bounded (connect and
/// answer, [`RedisStore::DEFAULT_TIMEOUT`]): a store that hangs costs an exchange at most that,
/// and the exchange then goes on as it would without records.
///
/// Values are written with `SET .. PX` (and `NX` for [`RecordStore::set_if_absent`]), so Redis
/// expires every record by itself; the keys are keyed hashes and the values ciphertexts, so a
/// dump of the database shows no token.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    manager: Arc<OnceCell<ConnectionManager>>,
    timeout: Duration,
    description: String,
}

impl RedisStore {
    /// The default bound on connecting and on each command: 300 ms.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(300);

    /// A store at `url` (`redis://` or `rediss://`); nothing is connected yet.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::new(format!("invalid Redis URL: {}", e.kind_name())))?;
        let info = client.get_connection_info();
        let address = match &info.addr {
            ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
            ConnectionAddr::Unix(path) => format!("redis+unix://{}", path.display()),
        };
        let description = format!("{address}/{}", info.redis.db);
        Ok(RedisStore {
            client,
            manager: Arc::new(OnceCell::new()),
            timeout: Self::DEFAULT_TIMEOUT,
            description,
        })
    }

    /// Sets the bound on connecting and on each command.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1);
        let connect = self
            .manager
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config));
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(manager)) => Ok(manager.clone()),
            Ok(Err(error)) => Err(fault(error)),
            Err(_) => Err(StoreError::new("connecting to Redis timed out")),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(self.timeout, command.query_async(&mut connection)).await {
            Ok(result) => result.map_err(fault),
            Err(_) => Err(StoreError::new("Redis did not answer in time")),
        }
    }
}

/// A Redis error as a store fault: its kind and class only (a reply could quote a value).
fn fault(error: RedisError) -> StoreError {
    let class = if error.is_timeout() {
        "timed out"
    } else if error.is_connection_refusal() {
        "connection refused"
    } else if error.is_connection_dropped() || error.is_io_error() {
        "connection lost"
    } else {
        "command failed"
    };
    StoreError::new(format!("Redis {class} ({})", error.kind_name()))
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for RedisError {
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.description)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl RecordStore for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        let mut command = redis::cmd("GET");
        command.arg(key);
        Box::pin(self.query(command))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        let mut command = redis::cmd("SET");
        command.arg(key).arg(value).arg("PX").arg(millis(ttl));
        Box::pin(self.query(command))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let mut command = redis::cmd("SET");
        command
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl));
        Box::pin(async move {
            // `OK` when set, nil when the key was there.
            let reply: Option<String> = self.query(command).await?;
            Ok(reply.is_some())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let mut command = redis::cmd("DEL");
        command.arg(key);
        Box::pin(async move {
            let _removed: i64 = self.query(command).await?;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
