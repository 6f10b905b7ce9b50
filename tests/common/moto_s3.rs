//! An S3-compatible server (moto) for the S3 tests and benchmark: its own
//! port, a client for it, stopped when dropped.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server on its own port, stopped when dropped.
pub struct Moto {
    pub port: u16,
    pub child: Child,
    pub rt: tokio::runtime::Runtime,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// Starts `moto_server` with `env` and waits until it answers HTTP.
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run moto_server; scripts/test installs it (pip install 'moto[server]>=5.2.5')");
        let start = Instant::now();
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if std::io::Read::read(&mut s, &mut buf).unwrap_or(0) >= 12 {
                    break;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Moto { port, child, rt }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        Client::from_conf(config)
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.rt
            .block_on(self.client().create_bucket().bucket(bucket).send())
            .unwrap();
    }

    pub fn put(&self, bucket: &str, key: &str, data: Vec<u8>) {
        self.rt
            .block_on(
                self.client()
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(data))
                    .send(),
            )
            .unwrap();
    }

    /// Every key under `prefix` with its ETag, in key order.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .rt
                .block_on(
                    self.client()
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(prefix)
                        .set_continuation_token(token)
                        .send(),
                )
                .unwrap();
            for o in page.contents() {
                out.push((
                    o.key().unwrap().to_owned(),
                    o.e_tag().unwrap_or("").to_owned(),
                ));
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return out;
            }
        }
    }

    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let o = self
                .client()
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            o.body.collect().await.unwrap().into_bytes().to_vec()
        })
    }

    /// The store keys of a connector config for `bucket` on this server.
    pub fn store_keys(&self, bucket: &str) -> String {
        format!(
            "  store.bucket: {bucket}\n  store.endpoint: {}\n  store.path.style: true\n  store.region: us-east-1\n  store.access.key.id: testing\n  store.secret.access.key: testing\n",
            self.endpoint()
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
