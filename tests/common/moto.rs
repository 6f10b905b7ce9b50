//! A moto server (S3, Secrets Manager and IAM on one port) of the test's
//! (or benchmark's) own, and the AWS calls they make to it.

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
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

/// Access key and secret.
#[derive(Clone, Debug)]
pub struct Keys {
    pub id: String,
    pub secret: String,
}

impl Keys {
    /// What moto accepts while it checks nothing.
    pub fn any() -> Keys {
        Keys {
            id: "testing".into(),
            secret: "testing".into(),
        }
    }

    /// The environment that makes the AWS default chain use these keys.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ]
    }
}

impl Moto {
    /// Starts `moto_server` with `env` and waits until it answers HTTP.
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = super::db::free_port();
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

    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn credentials(keys: &Keys) -> Credentials {
        Credentials::new(keys.id.clone(), keys.secret.clone(), None, None, "test")
    }

    pub fn secrets(&self, keys: &Keys) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(self.endpoint())
                .credentials_provider(Moto::credentials(keys))
                .build(),
        )
    }

    pub fn s3(&self, keys: &Keys) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(self.endpoint())
                .force_path_style(true)
                .credentials_provider(Moto::credentials(keys))
                .build(),
        )
    }

    pub fn iam(&self, keys: &Keys) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(self.endpoint())
                .credentials_provider(Moto::credentials(keys))
                .build(),
        )
    }

    /// Creates a secret holding `value`; returns its version.
    pub fn create_secret(&self, keys: &Keys, name: &str, value: &str) -> String {
        let out = self
            .rt
            .block_on(
                self.secrets(keys)
                    .create_secret()
                    .name(name)
                    .secret_string(value)
                    .send(),
            )
            .unwrap();
        out.version_id().unwrap().to_owned()
    }

    /// Rotates `name` to `value` the way AWS's rotation steps do: the new
    /// version is put as AWSPENDING (createSecret), `between` runs (setSecret:
    /// the credential changes where it is checked), then AWSCURRENT moves to
    /// it (finishSecret). Returns the new version.
    pub fn rotate(&self, keys: &Keys, name: &str, value: &str, between: impl FnOnce()) -> String {
        let client = self.secrets(keys);
        let old = self
            .rt
            .block_on(client.describe_secret().secret_id(name).send())
            .unwrap()
            .version_ids_to_stages()
            .unwrap()
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .map(|(v, _)| v.clone())
            .unwrap();
        let new = self
            .rt
            .block_on(
                client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value)
                    .version_stages("AWSPENDING")
                    .send(),
            )
            .unwrap()
            .version_id()
            .unwrap()
            .to_owned();
        between();
        self.rt
            .block_on(
                client
                    .update_secret_version_stage()
                    .secret_id(name)
                    .version_stage("AWSCURRENT")
                    .move_to_version_id(&new)
                    .remove_from_version_id(&old)
                    .send(),
            )
            .unwrap();
        new
    }

    /// An S3 client that signs with keys moto accepts while it checks
    /// nothing.
    pub fn client(&self) -> aws_sdk_s3::Client {
        self.s3(&Keys::any())
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
                    .body(aws_sdk_s3::primitives::ByteStream::from(data))
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
