//! The AWS SDK configuration: one `SdkConfig` from the standard credential chain (env,
//! profiles, SSO, web identity for CI OIDC, instance roles), with `--region`, `--profile` and
//! `--endpoint-url` applied, and the clients built from it. Nothing here sends a request.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where requests go and as whom.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `--profile`; `None` uses the standard chain (`AWS_PROFILE`, then `default`).
    pub profile: Option<String>,
    /// `--region` or `[site] region`; `None` uses the standard chain, then us-east-1.
    pub region: Option<String>,
    /// `--endpoint-url`; `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_S3` are honoured by the SDK.
    pub endpoint_url: Option<String>,
}

/// The region used when nothing sets one (and the one CloudFront, ACM for CloudFront and
/// Route 53 always use).
pub const GLOBAL_REGION: &str = "us-east-1";

/// Load the shared SDK configuration.
pub async fn sdk_config(target: &Target) -> SdkConfig {
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
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The S3 client: path-style addressing when an endpoint is configured (emulators and
/// S3-compatible stores rarely resolve `<bucket>.<host>`).
pub fn s3_client(shared: &SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = shared.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let config = aws_sdk_s3::config::Builder::from(shared).force_path_style(custom_endpoint).build();
    aws_sdk_s3::Client::from_conf(config)
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
    use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata as _, SdkError};
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            let text = DisplayErrorContext(err).to_string();
            let cause = last_cause(&text);
            if text.contains("credential") { Failure::Credentials(cause) } else { Failure::Connection(cause) }
        }
        SdkError::ResponseError(_) | SdkError::ConstructionFailure(_) => Failure::Service {
            code: None,
            message: last_cause(&DisplayErrorContext(err).to_string()),
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

/// The last cause of an error chain printed as `a: b: c` (the useful part), first line only.
fn last_cause(text: &str) -> String {
    text.split(": ").last().unwrap_or(text).lines().next().unwrap_or(text).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_lines_keep_the_cause() {
        assert_eq!(
            super::last_cause("dispatch failure: io error: tcp connect error: Connection refused"),
            "Connection refused"
        );
    }
}
