//! The AWS SDK configuration: one `SdkConfig` from the standard credential chain (env,
//! profiles, SSO, web identity for CI OIDC, instance roles), with `--region`, `--profile` and
//! `--endpoint-url` applied, and the clients built from it. Nothing here sends a request.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::AwsTarget;

/// The tag on every resource skiff provisions: `skiff:site=<bucket>`.
pub const TAG: &str = "skiff:site";

/// A name for skiff's CloudFront resources (functions, stores and OACs take
/// `[A-Za-z0-9-_]{1,64}`): `skiff-<bucket>`, shortened with a hash when too long.
pub fn resource_name(bucket: &str) -> String {
    let clean: String = bucket.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    let name = format!("skiff-{clean}");
    if name.len() <= 64 {
        return name;
    }
    format!("{}-{}", &name[..55], &crate::object::Digest::of(bucket.as_bytes()).to_hex()[..8])
}

/// The SDK's configuration and clients under skiff's names: commands hold and pass them on
/// without naming an SDK crate; only the edge modules call them.
pub type Shared = SdkConfig;
/// S3.
pub type S3 = aws_sdk_s3::Client;
/// CloudFront (control plane).
pub type CloudFront = aws_sdk_cloudfront::Client;
/// The CloudFront KeyValueStore data plane.
pub type KeyValueStore = aws_sdk_cloudfrontkeyvaluestore::Client;
/// ACM.
pub type Acm = aws_sdk_acm::Client;
/// Route 53.
pub type Route53 = aws_sdk_route53::Client;

/// The region used when nothing sets one (and the one CloudFront, ACM for CloudFront and
/// Route 53 always use).
pub const GLOBAL_REGION: &str = "us-east-1";

/// Load the shared SDK configuration.
///
/// `--profile` wins over credentials in the environment (`AWS_ACCESS_KEY_ID`), as it does
/// for the AWS CLI; a profile that no config or credentials file defines is an error that
/// names it.
pub async fn sdk_config(target: &AwsTarget) -> anyhow::Result<SdkConfig> {
    // The profile's own `region` counts too: the default chain must know the profile name.
    let mut default_chain = aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(profile) = &target.profile {
        default_chain = default_chain.profile_name(profile);
    }
    let region = RegionProviderChain::first_try(target.region.clone().map(Region::new))
        .or_else(default_chain.build())
        .or_else(Region::from_static(GLOBAL_REGION));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region).timeout_config(
        TimeoutConfig::builder().connect_timeout(Duration::from_secs(10)).read_timeout(Duration::from_mins(2)).build(),
    );
    // Standard retries with jitter, a few more attempts than the default 3 (a publish makes
    // many requests; S3 answers 503 SlowDown while it scales a prefix). AWS_MAX_ATTEMPTS and
    // AWS_RETRY_MODE still win when set, as the SDK documents.
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() && std::env::var_os("AWS_RETRY_MODE").is_none() {
        loader = loader.retry_config(RetryConfig::standard().with_max_attempts(5));
    }
    if let Some(profile) = &target.profile {
        ensure_profile(profile).await?;
        // The default chain reads the environment before profiles; an explicit profile is
        // what the user asked for, so it alone provides the credentials.
        loader = loader.profile_name(profile).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder().profile_name(profile).build(),
        );
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Ok(loader.load().await)
}

/// Fail, naming the profile and the files read, when no config or credentials file
/// defines `profile`.
async fn ensure_profile(profile: &str) -> anyhow::Result<()> {
    use aws_runtime::env_config::file::EnvConfigFiles;
    use aws_types::os_shim_internal::{Env, Fs};
    let files = EnvConfigFiles::default();
    let set = aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
        .await
        .map_err(|e| anyhow::anyhow!("could not read the AWS config files for profile `{profile}`: {}", causes(&e)))?;
    if set.get_profile(profile).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = set.profiles().collect();
    known.sort_unstable();
    let config = std::env::var("AWS_CONFIG_FILE").unwrap_or_else(|_| "~/.aws/config".into());
    let credentials = std::env::var("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|_| "~/.aws/credentials".into());
    anyhow::bail!(
        "AWS profile `{profile}` is not defined in {config} or {credentials}\nhint: {}",
        if known.is_empty() {
            "run `aws configure --profile NAME` or `aws configure sso`, or drop `--profile`".to_string()
        } else {
            format!("the profiles there are: {}", known.join(", "))
        }
    )
}

/// Whether S3 requests go somewhere other than AWS: an emulator or an S3-compatible store.
pub fn custom_s3_endpoint(shared: &SdkConfig) -> bool {
    shared.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
}

/// The S3 client: path-style addressing when an endpoint is configured (emulators and
/// S3-compatible stores rarely resolve `<bucket>.<host>`).
///
/// With a custom endpoint the SDK adds checksums only where the API requires them
/// (`WhenRequired`): since early 2025 it sends a CRC32 header or aws-chunked trailer on
/// every upload and asks for checksums on every download by default, which some
/// S3-compatible stores refuse. `AWS_REQUEST_CHECKSUM_CALCULATION` and
/// `AWS_RESPONSE_CHECKSUM_VALIDATION` still win.
/// <https://docs.aws.amazon.com/sdkref/latest/guide/feature-dataintegrity.html>
pub fn s3_client(shared: &SdkConfig) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
    let custom_endpoint = custom_s3_endpoint(shared);
    let mut config = aws_sdk_s3::config::Builder::from(shared).force_path_style(custom_endpoint);
    if custom_endpoint {
        // The loaded config always holds a value (the default, `WhenSupported`), so only
        // the environment tells whether the user chose one.
        if std::env::var_os("AWS_REQUEST_CHECKSUM_CALCULATION").is_none() {
            config = config.request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        }
        if std::env::var_os("AWS_RESPONSE_CHECKSUM_VALIDATION").is_none() {
            config = config.response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

/// The same client, talking to another region (S3 does not redirect across regions for us).
pub fn s3_in_region(client: &aws_sdk_s3::Client, region: &str) -> aws_sdk_s3::Client {
    let config = client.config().to_builder().region(Region::new(region.to_string())).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The CloudFront client (a global service, signed for us-east-1).
pub fn cloudfront_client(shared: &SdkConfig) -> aws_sdk_cloudfront::Client {
    let config = aws_sdk_cloudfront::config::Builder::from(shared).region(Region::from_static(GLOBAL_REGION)).build();
    aws_sdk_cloudfront::Client::from_conf(config)
}

/// The ACM client, pinned to us-east-1: CloudFront only takes certificates from there.
pub fn acm_client(shared: &SdkConfig) -> aws_sdk_acm::Client {
    let config = aws_sdk_acm::config::Builder::from(shared).region(Region::from_static(GLOBAL_REGION)).build();
    aws_sdk_acm::Client::from_conf(config)
}

/// The Route 53 client (a global service, signed for us-east-1).
pub fn route53_client(shared: &SdkConfig) -> aws_sdk_route53::Client {
    let config = aws_sdk_route53::config::Builder::from(shared).region(Region::from_static(GLOBAL_REGION)).build();
    aws_sdk_route53::Client::from_conf(config)
}

/// The CloudFront KeyValueStore data-plane client (global, SigV4a). Its endpoint rules put
/// the account id in front of the host even for an explicit endpoint
/// (`http://123456789012.127.0.0.1:…`); an explicit endpoint is used exactly as given.
pub fn kvs_client(shared: &SdkConfig) -> aws_sdk_cloudfrontkeyvaluestore::Client {
    let mut config = aws_sdk_cloudfrontkeyvaluestore::config::Builder::from(shared);
    let url = std::env::var("AWS_ENDPOINT_URL_CLOUDFRONT_KEYVALUESTORE")
        .ok()
        .or_else(|| shared.endpoint_url().map(str::to_string));
    if let Some(url) = url {
        config = config.endpoint_resolver(ExactEndpoint {
            url,
            rules: aws_sdk_cloudfrontkeyvaluestore::config::endpoint::DefaultResolver::new(),
        });
    }
    aws_sdk_cloudfrontkeyvaluestore::Client::from_conf(config.build())
}

/// The KVS endpoint rules' answer (its SigV4a auth scheme) with the URL replaced.
#[derive(Debug)]
struct ExactEndpoint {
    url: String,
    rules: aws_sdk_cloudfrontkeyvaluestore::config::endpoint::DefaultResolver,
}

impl aws_sdk_cloudfrontkeyvaluestore::config::endpoint::ResolveEndpoint for ExactEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        params: &'a aws_sdk_cloudfrontkeyvaluestore::config::endpoint::Params,
    ) -> aws_sdk_cloudfrontkeyvaluestore::config::endpoint::EndpointFuture<'a> {
        let resolved = self.rules.resolve_endpoint(params);
        aws_sdk_cloudfrontkeyvaluestore::config::endpoint::EndpointFuture::new(async move {
            Ok(resolved.await?.into_builder().url(self.url.clone()).build())
        })
    }
}

/// An SDK error taken apart, for the service modules to turn into their own error types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No usable credentials (the message never contains them).
    Credentials(String),
    /// The request never got an answer: connection refused, DNS, timeout.
    Connection(String),
    /// The service answered with an error.
    Service {
        /// The error code (`NoSuchBucket`), when there is one.
        code: Option<String>,
        /// The service's message.
        message: String,
        /// The HTTP status.
        status: Option<u16>,
        /// `x-amz-bucket-region`, when S3 said where a bucket is.
        bucket_region: Option<String>,
    },
}

impl Failure {
    /// The HTTP status of a service error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Service { status, .. } => *status,
            _ => None,
        }
    }
}

/// Classify an SDK error.
pub fn failure<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Failure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_s3::error::{ProvideErrorMetadata as _, SdkError};
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            let cause = last_cause(err);
            if causes(err).to_ascii_lowercase().contains("credential") {
                Failure::Credentials(cause)
            } else {
                Failure::Connection(cause)
            }
        }
        SdkError::ResponseError(_) | SdkError::ConstructionFailure(_) => Failure::Service {
            code: None,
            message: last_cause(err),
            status: err.raw_response().map(|r| r.status().as_u16()),
            bucket_region: None,
        },
        _ => Failure::Service {
            code: err.code().map(str::to_string),
            message: err.message().unwrap_or_default().to_string(),
            status: err.raw_response().map(|r| r.status().as_u16()),
            bucket_region: err.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")).map(str::to_string),
        },
    }
}

/// An AWS call that failed, as a message naming the IAM action and the resource, with what
/// to do about it.
pub fn call_error<E>(
    action: &str,
    resource: &str,
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> anyhow::Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match failure(err) {
        Failure::Credentials(message) => anyhow::anyhow!(
            "AWS credentials were missing or refused ({action} on {resource}): {message}\nhint: set AWS_PROFILE (or `--profile`), run `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
        Failure::Connection(message) => anyhow::anyhow!(
            "could not reach AWS for {action} on {resource}: {message}\nhint: check the network, `--endpoint-url` and AWS_ENDPOINT_URL"
        ),
        Failure::Service { code, message, status, .. } => {
            let code = code.unwrap_or_else(|| status.map_or_else(|| "error".to_string(), |s| format!("HTTP {s}")));
            if code.starts_with("AccessDenied") || status == Some(403) {
                anyhow::anyhow!(
                    "access denied: {action} on {resource}{}\nhint: allow `{action}` for the credentials in use",
                    if message.is_empty() { String::new() } else { format!(" ({message})") }
                )
            } else {
                anyhow::anyhow!(
                    "{action} on {resource} failed: {code}{}",
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                )
            }
        }
    }
}

/// The error code of an SDK error, when the service gave one.
pub fn code<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<String>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match failure(err) {
        Failure::Service { code, .. } => code,
        _ => None,
    }
}

/// The innermost cause of an error (`Connection refused (os error 111)`, `no providers in
/// chain provided credentials`), first line only: what a person can act on, where the outer
/// layers only say "dispatch failure".
pub fn last_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = err;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let text = innermost.to_string();
    let line = text.lines().next().unwrap_or_default().trim();
    if line.is_empty() { err.to_string() } else { line.to_string() }
}

/// An error and its causes, `a: b: c`, each only once.
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

    use super::{Failure, failure};

    fn client(
        endpoint: &str,
        credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
    ) -> aws_sdk_s3::Client {
        let mut config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
        if let Some(credentials) = credentials {
            config = config.credentials_provider(credentials);
        }
        aws_sdk_s3::Client::from_conf(config.build())
    }

    fn head_bucket_error(client: &aws_sdk_s3::Client) -> Failure {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let err = runtime.block_on(client.head_bucket().bucket("b").send()).unwrap_err();
        failure(&err)
    }

    /// A port that was just free: nothing listens there.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    #[test]
    fn a_refused_connection_is_named_by_its_innermost_cause() {
        let credentials = Credentials::new("AKIDTEST", "secret", None, None, "test");
        let endpoint = format!("http://127.0.0.1:{}", closed_port());
        let got = head_bucket_error(&client(
            &endpoint,
            Some(aws_sdk_s3::config::SharedCredentialsProvider::new(credentials)),
        ));
        let Failure::Connection(message) = got else { panic!("not a connection failure: {got:?}") };
        assert!(message.contains("Connection refused"), "{message}");
        assert!(!message.contains('}'), "{message}");
    }

    #[test]
    fn missing_credentials_are_named_as_such() {
        use aws_runtime::env_config::file::{EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles};
        // The profile provider with files that do not exist: what a machine without any
        // credentials gets from the chain.
        let files = ProfileFiles::builder()
            .with_file(ProfileFileKind::Config, "/nonexistent/skiff-test/config")
            .with_file(ProfileFileKind::Credentials, "/nonexistent/skiff-test/credentials")
            .build();
        let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_files(files)
            .profile_name("ci")
            .build();
        let endpoint = format!("http://127.0.0.1:{}", closed_port());
        let got =
            head_bucket_error(&client(&endpoint, Some(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))));
        let Failure::Credentials(message) = got else { panic!("not a credentials failure: {got:?}") };
        assert!(!message.is_empty() && !message.contains('}'), "{message}");
    }
}
